"""Selective prediction: the accuracy of the patients a model is most confident of, against the share kept.

    curve = risk_coverage(probabilities, target)      # every confidence threshold: coverage, accuracy
    table = at_coverages(probabilities, target)       # accuracy at 100, 90, 75 and 50% of patients kept

Confidence is the probability of the predicted class. Setting aside the least confident patients
first, a model whose confidence means something gains accuracy as it keeps fewer; one whose
confidence means nothing stays flat. Patients of the same confidence are kept or set aside
together, so a share kept can be a little above the one asked for.
"""

from __future__ import annotations

import math

import numpy as np

from glioscope.evaluate.conformal import clopper_pearson

SHARES = (1.0, 0.9, 0.75, 0.5)


def _confidence(probabilities: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, float)
    return probabilities.max(axis=1), probabilities.argmax(axis=1) == np.asarray(target, int)


def risk_coverage(probabilities: np.ndarray, target: np.ndarray) -> dict:
    """At each distinct confidence, from the highest: the share of patients kept and their accuracy."""
    confidence, correct = _confidence(probabilities, target)
    thresholds = np.unique(confidence)[::-1]
    kept = [confidence >= t for t in thresholds]
    return {
        "n": int(len(confidence)),
        "threshold": [float(t) for t in thresholds],
        "coverage": [float(k.mean()) for k in kept],
        "accuracy": [float(correct[k].mean()) for k in kept],
    }


def at_coverages(probabilities: np.ndarray, target: np.ndarray, shares=SHARES) -> list[dict]:
    """For each share asked for: the most confident ceil(share * n) patients (and any tied with the last), their
    number, accuracy with its 95% Clopper-Pearson interval, and the confidence they were kept from."""
    confidence, correct = _confidence(probabilities, target)
    ranked = np.sort(confidence)[::-1]
    rows = []
    for share in shares:
        if not len(ranked):
            break
        threshold = ranked[max(1, math.ceil(share * len(ranked))) - 1]
        kept = confidence >= threshold
        rows.append(
            {
                "share": float(share),
                "kept": int(kept.sum()),
                "coverage": float(kept.mean()),
                "accuracy": float(correct[kept].mean()),
                "ci": clopper_pearson(correct[kept].sum(), kept.sum()),
                "threshold": float(threshold),
            }
        )
    return rows
