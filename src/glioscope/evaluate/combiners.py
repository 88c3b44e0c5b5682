"""Combiners of late fusion: per patient, the probabilities of several runs into one.

A `Stack` holds one fold's patients with every run's probabilities (NaN where a run lacks
a patient). `fuse_mean` averages the runs that have a patient; `fit_logistic` fits a
logistic regression on `features` (each run's logit and a missing-input indicator) of
one set of patients and applies it to another (see glioscope.evaluate.fusion).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

LOGISTIC_C = 1.0  # inverse L2 strength of the logistic combiner (scikit-learn's default)
EPS = 1e-6  # probabilities are clipped to [EPS, 1 - EPS] before taking logits


@dataclass
class Stack:
    """Patients of one fold with every run's probabilities: probs[i, r, c], NaN where run r lacks patient i."""

    patients: list[str]
    targets: np.ndarray
    probs: np.ndarray

    @property
    def missing(self) -> np.ndarray:
        return np.isnan(self.probs[:, :, 0])


def fuse_mean(stack: Stack) -> np.ndarray:
    """Mean probability over the runs that have each patient."""
    return np.nanmean(stack.probs, axis=1)


def features(stack: Stack) -> np.ndarray:
    """Per run: the logit of its probability of the last class (more classes: centred log-probabilities), 0 when
    missing; then one missing-input indicator per run."""
    p = np.clip(stack.probs, EPS, 1 - EPS)
    missing = stack.missing
    if p.shape[2] == 2:
        values = np.log(p[:, :, 1]) - np.log1p(-p[:, :, 1])
        values[missing] = 0.0
    else:
        logs = np.log(p)
        centred = logs - logs.mean(axis=2, keepdims=True)
        centred[missing] = 0.0
        values = centred.reshape(len(p), -1)
    return np.hstack([values, missing.astype(float)])


def fit_logistic(fit: Stack, target: Stack, n_classes: int) -> tuple[np.ndarray, LogisticRegression]:
    """Fit the combiner on `fit`'s patients (their labels) and return class probabilities of `target`'s patients."""
    model = LogisticRegression(C=LOGISTIC_C, max_iter=2000)
    model.fit(features(fit), fit.targets)
    proba = np.zeros((len(target.patients), n_classes))
    proba[:, model.classes_.astype(int)] = model.predict_proba(features(target))
    return proba, model
