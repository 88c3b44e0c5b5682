"""Apply a trained run to a new study: the mean probability of its fold models, per sample and per patient."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from glioscope.evaluate.aggregate import patient_mean
from glioscope.models.build import build_model, input_normalisation, weightless
from glioscope.models.outputs import probabilities
from glioscope.rundir import RunFolder
from glioscope.samples import samples_from_file
from glioscope.util.progress import progress_bar


def fold_models(folder: RunFolder, spec, names: list[str], in_chans: int) -> list[tuple[str, torch.nn.Module]]:
    """Every trained fold's model (from `spec`, the run's model section), in evaluation mode."""
    models = []
    for fold, path in folder.model_files():
        model = build_model(weightless(spec), len(names), in_chans).model
        model.load_state_dict(folder.model_state(path))
        models.append((fold, model.eval()))
    return models


@torch.no_grad()
def headline_probabilities(model: torch.nn.Module, inputs: torch.Tensor) -> np.ndarray:
    """The class probabilities a run reports first (SDL: its members' mean), as evaluated in training."""
    return probabilities(model(inputs))[-1].numpy()


def fold_probabilities(models: list[tuple[str, torch.nn.Module]], samples, normalisation: str, progress: bool = False,
                       batch: int = 64) -> dict[str, np.ndarray]:
    """Each fold model's headline probabilities of every sample, a batch at a time (memory stays small)."""
    dataset = samples.dataset(np.ones(len(samples), bool), np.zeros(len(samples), np.int64), None, normalisation)
    parts: dict[str, list[np.ndarray]] = {fold: [] for fold, _ in models}
    for start in progress_bar(range(0, len(samples), batch), desc="predicting", unit="batch", disable=not progress):
        inputs = dataset.inputs(range(start, min(start + batch, len(samples))))
        for fold, model in models:
            parts[fold].append(headline_probabilities(model, inputs))
    return {fold: np.concatenate(chunks) for fold, chunks in parts.items()}


def predict(run_dir: Path, input_path: Path, mask: Path | None = None) -> dict:
    """JSON-ready result: per-sample and per-patient class probabilities (mean over fold models)."""
    folder = RunFolder(run_dir)
    recipe, info = folder.recipe(), folder.info()
    names = info["class_names"]
    samples = samples_from_file(input_path, recipe.data, mask)
    models = fold_models(folder, recipe.model, names, samples.channels)
    per_fold = fold_probabilities(models, samples, input_normalisation(recipe.model, recipe.data.normalize))
    per_sample = np.mean(list(per_fold.values()), axis=0)
    table = samples.table.reset_index(drop=True)
    weights = samples.vote_weights()
    patient_ids = sorted(set(table["patient_id"]))
    seen = seen_in_training(folder, patient_ids)
    patients = []
    for patient in patient_ids:
        rows = table.index[table["patient_id"] == patient]
        mean = patient_mean(per_sample[rows], None if weights is None else weights[rows])
        patients.append({"patient_id": patient, "n_samples": int(len(rows)), **_scores(mean, names),
                         "seen_in_training": patient in seen})
    return {
        "run": str(run_dir),
        "recipe": recipe.name,
        "input": str(input_path),
        "classes": names,
        "models": f"mean probability of {len(models)} fold model(s): {', '.join(n for n, _ in models)}",
        "patients": patients,
        "inputs": _inputs(samples, table, per_sample, names),
        samples.kind: [{**samples.describe(i), **_scores(per_sample[i], names)} for i in range(len(samples))],
        "notes": list(samples.notes) + (
            [f"patient(s) {', '.join(sorted(seen))} were in this run's cohort: not an independent test"] if seen else []
        ),
    }


def _inputs(samples, table, per_sample: np.ndarray, names: list[str]) -> list[dict]:
    """Every input found: each series, volume or image with its prediction, or the reason it was not used."""
    entries = []
    weights = samples.vote_weights()
    for _, group in table.groupby(samples.item_column, sort=False):
        first, rows = group.iloc[0], group.index.to_numpy()
        entries.append({"path": str(first[samples.path_column]), "patient_id": str(first["patient_id"]),
                        "series_id": str(first.get("series_id", "")), "status": "predicted", "n_samples": int(len(group)),
                        **_scores(patient_mean(per_sample[rows], None if weights is None else weights[rows]),
                                  names)})
    return entries + [{"path": s.path, "status": "skipped", "reason": s.reason} for s in samples.skipped]


def _scores(p: np.ndarray, names: list[str]) -> dict:
    return {"probabilities": {n: round(float(v), 6) for n, v in zip(names, p)}, "prediction": names[int(np.argmax(p))]}


def seen_in_training(folder: RunFolder, patient_ids: list[str]) -> set[str]:
    """The input's patients that the run (or model package) trained or validated on: the leak check on new input."""
    return folder.seen_patients(patient_ids)
