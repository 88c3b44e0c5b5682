"""Predictions tables: per image, and aggregated to one row per patient (mean probability).

A predictions table has columns item_id, patient_id, target (class index) and one
`prob_<class>` column per class, plus any grouping columns (fold, model, member). With a
`vote_weight` column (a 2D recipe's `vote: tumour_area`), a patient's probability is the
weighted mean of its images'; a patient whose weights are all zero gets the plain mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glioscope.errors import GlioscopeError
from glioscope.rundir.tables import prob_columns

__all__ = ["arrays", "class_names", "patient_mean", "prob_columns", "to_patients"]


def class_names(frame: pd.DataFrame) -> list[str]:
    return [c[len("prob_") :] for c in prob_columns(frame)]


def to_patients(frame: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """Mean class probability per patient (within each group of `by`); one target per patient."""
    keys = [*by, "patient_id"]
    probs = prob_columns(frame)
    targets = frame.groupby(keys)["target"].nunique()
    if (targets > 1).any():
        example = targets[targets > 1].index[0]
        raise GlioscopeError(f"patient {example} has images of different classes; cannot aggregate")
    if "vote_weight" in frame.columns:
        weights = frame["vote_weight"].fillna(1.0).astype(float)
        totals = weights.groupby([frame[k] for k in keys]).transform("sum")
        weights = weights.where(totals > 0, 1.0)  # no weight anywhere: every image counts the same
        weighted = frame[probs].mul(weights, axis=0).assign(_weight=weights)
        sums = weighted.groupby([frame[k] for k in keys], sort=True).sum()
        patients = sums[probs].div(sums["_weight"], axis=0)
    else:
        patients = frame.groupby(keys, sort=True)[probs].mean()
    grouped = frame.groupby(keys, sort=True)
    patients["target"] = grouped["target"].first()
    patients["n_items"] = grouped.size()
    return patients.reset_index()


def patient_mean(probabilities: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """One patient's probability from its samples' (rows): their mean, or weighted mean (see the module)."""
    if weights is None or not np.sum(weights) > 0:
        return probabilities.mean(axis=0)
    return np.average(probabilities, axis=0, weights=weights)


def arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(targets, probabilities) of a predictions table."""
    return frame["target"].to_numpy(dtype=int), frame[prob_columns(frame)].to_numpy(dtype=float)
