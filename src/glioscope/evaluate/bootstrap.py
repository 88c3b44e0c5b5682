"""Uncertainty: mean +- SD over folds, and 95% bootstrap intervals over patients."""

from __future__ import annotations

import numpy as np
import pandas as pd

from glioscope.evaluate.aggregate import arrays, class_names
from glioscope.evaluate.metrics import classification_metrics, flat_metrics


def bootstrap_intervals(
    frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of every flat metric, resampling patients with replacement.

    Works on image-level tables too: a patient's images are drawn together (cluster
    bootstrap), so the interval reflects the number of patients, not of slices.
    """
    names = class_names(frame)
    rng = np.random.default_rng(seed)
    patients = frame["patient_id"].to_numpy()
    unique, inverse = np.unique(patients, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == k) for k in range(len(unique))]
    targets, proba = arrays(frame)
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        chosen = rng.integers(0, len(unique), len(unique))
        index = np.concatenate([rows_of[k] for k in chosen])
        flat = flat_metrics(classification_metrics(targets[index], proba[index], names))
        for key, value in flat.items():
            draws.setdefault(key, []).append(value)
    alpha = (1 - level) / 2
    intervals = {}
    for key, values in draws.items():
        values = np.asarray(values, dtype=float)
        values = values[~np.isnan(values)]
        if len(values) >= max(10, n_boot // 10):
            intervals[key] = (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha)))
        else:
            intervals[key] = (float("nan"), float("nan"))
    return intervals


def fold_summary(per_fold: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and sample SD over folds of every flat metric (NaN folds ignored)."""
    frame = pd.DataFrame(per_fold)
    return {
        c: (float(frame[c].mean()), float(frame[c].std(ddof=1)) if frame[c].count() > 1 else 0.0) for c in frame.columns
    }
