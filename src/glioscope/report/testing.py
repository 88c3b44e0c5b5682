"""A fake run folder that follows the training side's contract, for tests and report demos.

Predictions carry a known signal: each model's probabilities are a softmax of
noise plus `signal` on the true class, so metrics are good but not perfect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from glioscope.rundir import CONFIG, COHORT, HISTORY, PREDICTIONS, SPLITS, RunFolder, RunRecord
from glioscope.split import LEAKY_WARNING
from glioscope.util import atomic

SDL_MODELS = ("sdl/net1", "sdl/net2", "sdl/mean")


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fake_splits(
    n_patients: int = 30,
    class_names: Sequence[str] = ("II", "III", "IV"),
    folds: int = 3,
    test_patients: int = 0,
    slices: tuple[int, int] = (2, 5),
    seed: int = 0,
    leaky: bool = False,
    patient_ids: bool = True,
) -> pd.DataFrame:
    """splits.csv rows, one per slice here (item_id = slice): folds stratified by label, round robin."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_patients) % len(class_names)
    rng.shuffle(labels)
    rows = []
    counters = np.zeros(len(class_names), dtype=int)
    for p, label in enumerate(labels):
        patient = f"P{p:03d}"
        if p < test_patients:
            partition, fold = "test", -1
        else:
            partition, fold = "cv", int(counters[label] % folds)
            counters[label] += 1
        for s in range(int(rng.integers(slices[0], slices[1] + 1))):
            item = f"{patient}-s{s:02d}"
            rows.append(
                {
                    "item_id": item,
                    "patient_id": patient if patient_ids else item,
                    "label": class_names[label],
                    "partition": partition,
                    "fold": fold,
                    "leaky": leaky,
                }
            )
    return pd.DataFrame(rows)


def fake_run(
    run_dir: str | Path,
    models: Sequence[str] = SDL_MODELS,
    class_names: Sequence[str] = ("II", "III", "IV"),
    n_patients: int = 30,
    folds: int = 3,
    test_patients: int = 0,
    seed: int = 0,
    signal: float = 1.5,
    leaky: bool = False,
    patient_ids: bool = True,
    splits: pd.DataFrame | None = None,
    prob_by_index: bool = False,
    epochs: int = 5,
    label: str | None = None,
) -> Path:
    """Write config.yaml, run.json, cohort.csv, splits.csv, fold<k>/metrics.csv and predictions.csv."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    class_names = list(class_names)
    if splits is None:
        splits = fake_splits(
            n_patients, class_names, folds, test_patients, seed=seed, leaky=leaky, patient_ids=patient_ids
        )
    atomic.write_csv(run_dir / SPLITS, splits)
    atomic.write_csv(run_dir / COHORT, splits[["item_id", "patient_id", "label"]])
    sdl = any(m.startswith("sdl/") for m in models)
    fold_ids = sorted(int(f) for f in splits.loc[splits["partition"] == "cv", "fold"].unique())
    recipe = "sdl" if sdl else models[0]
    (run_dir / CONFIG).write_text(f"name: {recipe}\nmodel:\n  name: {recipe}\n", encoding="utf-8")
    info = {
        "recipe": recipe,
        "class_names": class_names,
        "models": list(models),
        "folds": fold_ids,
        "leaky": leaky,
        "split_statement": LEAKY_WARNING if leaky else "Split by patient: no patient has items in two partitions.",
        "patient_ids": patient_ids,
        "notes": ["fake run written by glioscope.report.testing"],
        "label": "label",
        "run_name": label or recipe,
        "task": "grade",
        "created": "2024-01-01T00:00:00+00:00",
        "glioscope_version": "0.1.0",
        "cohort": "fake",
    }
    RunFolder(run_dir).write_record(RunRecord.from_json(info))

    targets = splits["label"].map({c: k for k, c in enumerate(class_names)}).to_numpy()
    patient_effect = {p: rng.normal(0, 0.8, len(class_names)) for p in splits["patient_id"].unique()}
    base = np.stack([patient_effect[p] for p in splits["patient_id"]])
    onehot = np.eye(len(class_names))[targets] * signal
    members = [m for m in models if not m.endswith("/mean")]
    proba = {m: _softmax(onehot + base + rng.normal(0, 1.0, base.shape)) for m in members}
    for m in models:
        if m.endswith("/mean"):
            prefix = m[: -len("mean")]
            proba[m] = np.mean([proba[n] for n in members if n.startswith(prefix)], axis=0)
    frames = []
    for m in models:
        frame = pd.DataFrame(
            {
                "fold": splits["fold"].map(lambda f: "test" if f == -1 else str(f)).to_numpy(),
                "model": m,
                "slice_id": splits["item_id"].to_numpy(),
                "item_id": splits["item_id"].to_numpy(),
                "patient_id": splits["patient_id"].to_numpy(),
                "target": targets,
            }
        )
        for k, c in enumerate(class_names):
            frame[f"prob_{k if prob_by_index else c}"] = proba[m][:, k]
        frames.append(frame)
    atomic.write_csv(run_dir / PREDICTIONS, pd.concat(frames, ignore_index=True))

    for fold in fold_ids:
        (run_dir / f"fold{fold}").mkdir(exist_ok=True)
        _history(epochs, members if sdl else [], rng).to_csv(run_dir / f"fold{fold}" / HISTORY, index=False)
    return run_dir


def _history(epochs: int, members: Sequence[str], rng) -> pd.DataFrame:
    epoch = np.arange(1, epochs + 1)

    def loss(scale):
        return scale * np.exp(-epoch / 3) + 0.2 + rng.normal(0, 0.02, epochs)

    def accuracy(top):
        return np.clip(top - 0.5 * np.exp(-epoch / 2) + rng.normal(0, 0.02, epochs), 0, 1)

    history = {
        "epoch": epoch,
        "lr": 1e-4 / (1 + 1e-4 * epoch),
        "train_loss": loss(2.0),
        "train_accuracy": accuracy(0.95),
        "val_loss": loss(1.8) + 0.1,
        "val_accuracy": accuracy(0.85),
        "images_per_s": 100.0,
        "seconds": 1.0,
    }
    for m in members:
        name = m.split("/")[-1]
        history.update(
            {
                f"train_loss/{name}": loss(1.0),
                f"train_accuracy/{name}": accuracy(0.95),
                f"val_loss/{name}": loss(0.9) + 0.1,
                f"val_accuracy/{name}": accuracy(0.85),
            }
        )
    if members:
        history.update({"synergic_loss": loss(0.7), "synergic_accuracy": accuracy(0.9)})
    return pd.DataFrame(history)
