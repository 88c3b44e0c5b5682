"""The predictions tables of a run folder: their columns, how they are made and read back.

A predictions table has columns fold, model, slice_id, item_id, patient_id, target (class
index) and one prob_<class> column per class; slice_id is the sample (a slice, a volume in
3D runs, the patient in patient-level runs). A `vote_weight` column, when present, weights
a sample in its patient's probability.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from glioscope.errors import InputError
from glioscope.util import csvfiles

KEYS = ("fold", "model", "patient_id", "target")
TYPES = {"fold": str, "model": str, "patient_id": str, "item_id": str, "slice_id": str}


def prob_columns(frame: pd.DataFrame) -> list[str]:
    """The probability columns (prob_<class>) of a predictions table, in its order."""
    return [c for c in frame.columns if c.startswith("prob_")]


def joined(frames: list[pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """A fold's prediction tables as one; a fold with nothing held out (the final model of `train --all`) gets an
    empty table with the columns, so that the fold reads as finished."""
    if frames:
        return pd.concat(frames, ignore_index=True)
    columns = ["fold", "model", "slice_id", "item_id", "patient_id", "target", *(f"prob_{n}" for n in names)]
    return pd.DataFrame(columns=columns)


def prediction_table(
    probs: dict[str, np.ndarray], keys: pd.DataFrame, targets: np.ndarray, fold: str, names: list[str]
) -> pd.DataFrame:
    """A predictions table of each model's probabilities of the samples `keys` names."""
    frames = []
    for model_name, p in probs.items():
        frame = keys.copy()
        frame.insert(0, "model", model_name)
        frame.insert(0, "fold", fold)
        frame["target"] = targets
        for k, name in enumerate(names):
            frame[f"prob_{name}"] = p[:, k]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def read_predictions(path: Path) -> pd.DataFrame:
    """A predictions table as written: its ids as text ("NA" is an id), its targets, probabilities and weights
    as numbers."""
    frame = csvfiles.read(path)
    numeric = [c for c in frame.columns if c not in TYPES]  # target, prob_*, vote_weight, n_inputs, ...
    return csvfiles.numbers(frame, numeric, path)


def read_table(path: Path, class_names: list[str] | None) -> pd.DataFrame | None:
    """A predictions table with prob_<class> columns in class order; None when it has no rows."""
    frame = read_predictions(path)
    missing = [c for c in KEYS if c not in frame.columns]
    probs = prob_columns(frame)
    if missing or not probs:
        raise InputError(path, f"expected columns {', '.join(KEYS)} and prob_<class>; missing {missing or 'prob_*'}")
    if frame.empty:
        return None
    frame = frame.rename(columns=_prob_names(path, probs, class_names))
    names = class_names or [c[len("prob_") :] for c in probs]
    ordered = [f"prob_{c}" for c in names]
    if frame[ordered].isna().any().any() or frame["target"].isna().any():
        raise InputError(path, "contains empty probabilities or targets")
    frame["target"] = frame["target"].astype(int)
    return frame[[c for c in frame.columns if c not in ordered] + ordered]


def _prob_names(path: Path, probs: list[str], class_names: list[str] | None) -> dict[str, str]:
    if not class_names:
        return {}
    suffixes = [c[len("prob_") :] for c in probs]
    if sorted(suffixes) == sorted(class_names):
        return {}
    if len(probs) != len(class_names):
        raise InputError(path, f"{len(probs)} probability columns for {len(class_names)} classes {class_names}")
    if all(s.isdigit() for s in suffixes):
        return {f"prob_{s}": f"prob_{class_names[int(s)]}" for s in suffixes}
    return {p: f"prob_{name}" for p, name in zip(probs, class_names)}
