"""Predictions tables: per image, and aggregated to one row per patient (mean probability).

A predictions table has columns item_id, patient_id, target (class index) and one
`prob_<class>` column per class, plus any grouping columns (fold, model, member).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glioscope.errors import GlioscopeError


def prob_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("prob_")]


def class_names(frame: pd.DataFrame) -> list[str]:
    return [c[len("prob_"):] for c in prob_columns(frame)]


def to_patients(frame: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """Mean class probability per patient (within each group of `by`); one target per patient."""
    keys = [*by, "patient_id"]
    probs = prob_columns(frame)
    targets = frame.groupby(keys)["target"].nunique()
    if (targets > 1).any():
        example = targets[targets > 1].index[0]
        raise GlioscopeError(f"patient {example} has images of different classes; cannot aggregate")
    grouped = frame.groupby(keys, sort=True)
    patients = grouped[probs].mean()
    patients["target"] = grouped["target"].first()
    patients["n_items"] = grouped.size()
    return patients.reset_index()


def arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(targets, probabilities) of a predictions table."""
    return frame["target"].to_numpy(dtype=int), frame[prob_columns(frame)].to_numpy(dtype=float)
