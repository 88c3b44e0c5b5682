"""Classification metrics per class, macro and weighted, from class probabilities.

Computed with numpy from the confusion matrix and ranks (the AUC is the
Mann-Whitney statistic), because the bootstrap calls this thousands of times;
tests check every value against scikit-learn. Calibration (Brier score, expected
calibration error) comes from `calibration`.

A class without cases in the evaluated set (a recipe's class absent from a cohort, or
from a bootstrap resample) has no sensitivity, F1 or AUC: they are NaN, and macro and
weighted averages are taken over the classes present, for point estimates and bootstrap
intervals alike (scikit-learn would count such a class as 0 in a macro average).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from glioscope.evaluate import calibration

PER_CLASS = ("precision", "sensitivity", "specificity", "f1", "accuracy_ovr", "auc")


def classification_metrics(y_true, proba, class_names: list[str]) -> dict:
    """All metrics for labels `y_true` (ints) and probabilities `proba` (N x C)."""
    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    n_classes = len(class_names)
    y_pred = proba.argmax(axis=1)
    cm = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    total = cm.sum()
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    fp = predicted - tp
    fn = support - tp
    tn = total - tp - fp - fn
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    absent = support == 0
    recall[absent], f1[absent] = np.nan, np.nan
    specificity = _ratio(tn, tn + fp)
    accuracy_ovr = (tp + tn) / max(total, 1)
    auc = _auc_per_class(y_true, proba, n_classes)
    per_class = {
        name: {
            "precision": float(precision[k]),
            "sensitivity": float(recall[k]),
            "specificity": float(specificity[k]),
            "f1": float(f1[k]),
            "accuracy_ovr": float(accuracy_ovr[k]),
            "auc": float(auc[k]),
            "support": int(support[k]),
        }
        for k, name in enumerate(class_names)
    }
    result = {
        "n": int(total),
        "accuracy": float(tp.sum() / max(total, 1)),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "class_names": list(class_names),
    }
    weights = support / max(support.sum(), 1)
    for metric in PER_CLASS:
        values = np.array([per_class[c][metric] for c in class_names])
        present = ~np.isnan(values) & ~absent
        result[f"macro_{metric}"] = float(values[present].mean()) if present.any() else float("nan")
        w = weights[present]
        result[f"weighted_{metric}"] = float((values[present] * w).sum() / w.sum()) if w.sum() > 0 else float("nan")
    if n_classes == 2:
        result["auc"] = per_class[class_names[1]]["auc"]
    else:
        result["auc"] = result["macro_auc"]
    result["brier"], result["ece"] = calibration.brier(y_true, proba), calibration.ece(y_true, proba)
    return result


def _ratio(num, den) -> np.ndarray:
    """num / den, with 0 where den is 0 (scikit-learn's zero_division=0)."""
    num = np.asarray(num, dtype=float)
    return np.divide(num, den, out=np.zeros_like(num), where=np.asarray(den) > 0)


def _auc_per_class(y_true, proba, n_classes) -> np.ndarray:
    """One-vs-rest ROC AUC per class (ties count half); NaN where a class is absent or alone."""
    auc = np.full(n_classes, np.nan)
    for k in range(n_classes):
        positive = y_true == k
        n_pos = int(positive.sum())
        n_neg = len(y_true) - n_pos
        if n_pos and n_neg:
            ranks = rankdata(proba[:, k])
            auc[k] = (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return auc


HEADLINE = ("accuracy", "auc", "macro_f1", "weighted_f1", "macro_sensitivity", "macro_specificity", "macro_precision")


def flat_metrics(result: dict) -> dict[str, float]:
    """One flat dict: headline metrics plus '<metric>/<class>' entries, for tables and CSV."""
    flat = {k: result[k] for k in result if isinstance(result[k], float)}
    for name, values in result["per_class"].items():
        for metric in PER_CLASS:
            flat[f"{metric}/{name}"] = values[metric]
    return flat
