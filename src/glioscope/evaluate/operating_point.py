"""A binary model's operating point: the threshold on the positive class's probability, and what it gives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from glioscope.evaluate.aggregate import to_patients
from glioscope.rundir import PREDICTIONS, RunFolder


def youden_threshold(y_true: np.ndarray, positive: np.ndarray) -> float:
    """The threshold that maximises sensitivity + specificity - 1 (Youden's J); ties: the lowest such threshold."""
    y_true = np.asarray(y_true, int)
    candidates = np.unique(positive)
    best, best_j = 0.5, -np.inf
    for threshold in candidates:
        called = positive >= threshold
        sensitivity = called[y_true == 1].mean() if (y_true == 1).any() else 0.0
        specificity = (~called[y_true == 0]).mean() if (y_true == 0).any() else 0.0
        if sensitivity + specificity - 1 > best_j:
            best, best_j = float(threshold), sensitivity + specificity - 1
    return best


def at_threshold(y_true: np.ndarray, positive: np.ndarray, threshold: float) -> dict:
    """Confusion matrix ([[TN, FP], [FN, TP]]), sensitivity, specificity and accuracy when p >= threshold is called positive."""
    y_true = np.asarray(y_true, int)
    called = np.asarray(positive) >= threshold
    tp, fn = int((called & (y_true == 1)).sum()), int((~called & (y_true == 1)).sum())
    tn, fp = int((~called & (y_true == 0)).sum()), int((called & (y_true == 0)).sum())
    return {
        "threshold": float(threshold),
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "sensitivity": tp / (tp + fn) if tp + fn else None,
        "specificity": tn / (tn + fp) if tn + fp else None,
        "accuracy": (tp + tn) / len(y_true) if len(y_true) else None,
    }


def cv_patients(folder: RunFolder, names: list[str], headline: str) -> pd.DataFrame | None:
    """The headline model's cross-validation predictions per patient (each patient's mean within its fold, all folds
    pooled), what a run's operating point and conformal calibration are chosen on; None without them (a package)."""
    if not (folder / PREDICTIONS).is_file():
        return None
    cv = folder.predictions(names)
    cv = cv[(cv["set"] == "cv") & (cv["model"] == headline)]
    return None if cv.empty else to_patients(cv, by=("fold",))


def cv_operating_point(folder: RunFolder, names: list[str], headline: str) -> dict | None:
    """A binary run's threshold, chosen on its own cross-validation predictions (patient level, pooled) by Youden's
    J; None for more than two classes, or a folder without cross-validation predictions (a model package)."""
    patients = cv_patients(folder, names, headline) if len(names) == 2 else None
    if patients is None:
        return None
    threshold = youden_threshold(patients["target"].to_numpy(), patients[f"prob_{names[1]}"].to_numpy())
    return {
        "threshold": threshold,
        "positive_class": names[1],
        "chosen_on": f"the run's cross-validation predictions of {headline} (patient level, all folds pooled, "
        f"{len(patients)} patients), maximising Youden's J (sensitivity + specificity - 1)",
    }
