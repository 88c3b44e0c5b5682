"""Calibration: whether a model's probabilities mean what they say.

- Brier score: the mean over cases of the squared distance between the probability
  vector and the one-hot truth, summed over classes (0 perfect; a binary task's usual
  Brier score is half of it).
- Expected calibration error (ECE): cases binned by confidence (`BINS` equal-width bins
  of the probability of the predicted class; in a binary task, of the positive class),
  the mean gap between a bin's mean probability and its observed frequency, weighted by
  the bin's share of the cases.
- `reliability`: the bins themselves, for the reliability diagram.
"""

from __future__ import annotations

import numpy as np

BINS = 10


def brier(y_true: np.ndarray, proba: np.ndarray) -> float:
    onehot = np.eye(proba.shape[1])[np.asarray(y_true, int)]
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1))) if len(proba) else float("nan")


def _scored(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probability, outcome) per case: of the positive class (binary), else of the predicted class."""
    y_true = np.asarray(y_true, int)
    if proba.shape[1] == 2:
        return proba[:, 1], (y_true == 1).astype(float)
    predicted = proba.argmax(axis=1)
    return proba[np.arange(len(proba)), predicted], (predicted == y_true).astype(float)


def reliability(y_true: np.ndarray, proba: np.ndarray, bins: int = BINS) -> dict[str, list]:
    """Per non-empty bin: its mean probability, its observed frequency and its count."""
    confidence, outcome = _scored(y_true, proba)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(index, minlength=bins)
    mean_p = np.bincount(index, confidence, minlength=bins)
    observed = np.bincount(index, outcome, minlength=bins)
    kept = count > 0
    return {
        "mean_probability": (mean_p[kept] / count[kept]).tolist(),
        "observed": (observed[kept] / count[kept]).tolist(),
        "count": count[kept].tolist(),
        "bins": bins,
    }


def ece(y_true: np.ndarray, proba: np.ndarray, bins: int = BINS) -> float:
    if not len(proba):
        return float("nan")
    table = reliability(y_true, proba, bins)
    gaps = np.abs(np.array(table["mean_probability"]) - np.array(table["observed"]))
    return float(np.sum(gaps * np.array(table["count"])) / len(proba))
