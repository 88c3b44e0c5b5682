"""Apply a trained run to a new study: the mean probability of its fold models, per slice and per patient."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from glioscope import split
from glioscope.errors import InputError, PatientLeakError
from glioscope.models.sdl import SynergicNet
from glioscope.preprocess import slices_from_file
from glioscope.preprocess3d import volume_from_file
from glioscope.runner import MODEL_FILE, batch_prep, build_model, is_3d, slice_settings, volume_settings
from glioscope.train.checkpoint import load_checkpoint


def load_run(run_dir: Path) -> tuple[dict, dict]:
    """(recipe, run.json) of a finished run folder."""
    run_dir = Path(run_dir)
    for name in ("config.yaml", "run.json"):
        if not (run_dir / name).is_file():
            raise InputError(run_dir, f"not a glioscope run folder (no {name})")
    return yaml.safe_load((run_dir / "config.yaml").read_text()), json.loads((run_dir / "run.json").read_text())


def fold_models(run_dir: Path, recipe: dict, names: list[str], in_chans: int) -> list[tuple[str, torch.nn.Module]]:
    """Every trained fold's model, in evaluation mode."""
    models = []
    for path in sorted(Path(run_dir).glob(f"*/{MODEL_FILE}")):
        model = build_model({**recipe, "model": {**recipe["model"], "weights": None}}, len(names), in_chans, [])
        model.load_state_dict(load_checkpoint(path)["model"])
        models.append((path.parent.name, model.eval()))
    if not models:
        raise InputError(run_dir, f"no trained model ({MODEL_FILE}) in any fold folder; has training finished?")
    return models


@torch.no_grad()
def probabilities(model: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    """Class probabilities; for SDL the mean of its members, as reported; one sigmoid unit gives [1 - p, p]."""
    logits = model(images)
    if isinstance(model, SynergicNet):
        return torch.softmax(logits, dim=2).mean(0).numpy()
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[:, 0])
        return torch.stack([1 - p, p], dim=1).numpy()
    return torch.softmax(logits, dim=1).numpy()


def _samples(recipe: dict, input_path: Path, mask: Path | None):
    """The input as the run's samples: slices under its slice settings, or one preprocessed volume."""
    select = {k: (v if isinstance(v, list) else [v]) for k, v in (recipe["data"].get("select") or {}).items()}
    select = {k: v for k, v in select.items() if k in ("plane", "sequence")} or None
    if is_3d(recipe):
        samples = volume_from_file(Path(input_path), volume_settings(recipe))
        return samples, torch.from_numpy(samples.volumes).float()
    settings = slice_settings(recipe)
    try:
        samples = slices_from_file(Path(input_path), settings, mask_path=mask, select=select)
    except InputError:
        if not select:
            raise
        samples = slices_from_file(Path(input_path), settings, mask_path=mask)  # a lone series whatever its tags
    channels = samples.images.shape[1]
    return samples, batch_prep(recipe, channels, train=False)(torch.from_numpy(samples.images))


def predict(run_dir: Path, input_path: Path, mask: Path | None = None) -> dict:
    """JSON-ready result: per-sample and per-patient class probabilities (mean over fold models)."""
    recipe, info = load_run(run_dir)
    names = info["class_names"]
    samples, inputs = _samples(recipe, input_path, mask)
    models = fold_models(run_dir, recipe, names, inputs.shape[1])
    per_sample = np.mean([probabilities(model, inputs) for _, model in models], axis=0)
    table = samples.table.reset_index(drop=True)
    patient_ids = sorted(set(table["patient_id"]))
    seen = _seen_in_training(Path(run_dir), patient_ids)
    patients = []
    for patient in patient_ids:
        rows = table.index[table["patient_id"] == patient]
        mean = per_sample[rows].mean(axis=0)
        patients.append({"patient_id": patient, "n_samples": int(len(rows)), **_scores(mean, names),
                         "seen_in_training": patient in seen})
    if is_3d(recipe):
        key, entries = "volumes", [{"patient_id": str(row.patient_id), "volume_id": str(row.volume_id),
                                    "sequences": str(row.sequences), **_scores(per_sample[i], names)}
                                   for i, row in enumerate(table.itertuples())]
    else:
        key, entries = "slices", [{"patient_id": str(row.patient_id), "item_id": str(row.item_id),
                                   "slice_index": int(row.slice_index), **_scores(per_sample[i], names)}
                                  for i, row in enumerate(table.itertuples())]
    return {
        "run": str(run_dir),
        "recipe": recipe["name"],
        "input": str(input_path),
        "classes": names,
        "models": f"mean probability of {len(models)} fold model(s): {', '.join(n for n, _ in models)}",
        "patients": patients,
        key: entries,
        "notes": list(samples.notes) + (
            [f"patient(s) {', '.join(sorted(seen))} were in this run's cohort: not an independent test"] if seen else []
        ),
    }


def _scores(p: np.ndarray, names: list[str]) -> dict:
    return {"probabilities": {n: round(float(v), 6) for n, v in zip(names, p)}, "prediction": names[int(np.argmax(p))]}


def _seen_in_training(run_dir: Path, patient_ids: list[str]) -> set[str]:
    """The input's patients that the run trained or validated on (the leak check on a new input)."""
    cohort = pd.read_csv(run_dir / "cohort.csv", dtype=str, keep_default_na=False)
    try:
        split.assert_disjoint({"run cohort": cohort, "input": patient_ids})
    except PatientLeakError:
        return set(patient_ids) & set(cohort["patient_id"])
    return set()
