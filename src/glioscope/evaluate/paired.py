"""Paired tests of two models scored on the same patients: AUC difference, DeLong's test, McNemar's test.

Both models' patient-level probabilities come from the same patients, so their errors are correlated and two
overlapping intervals say little; these tests use the pairing:

- the difference of AUC (binary: AUC of the second class; more classes: macro one-vs-rest AUC) with a paired
  bootstrap interval: each resample draws patients once and scores both models on them;
- binary: DeLong's test for two correlated ROC curves, in the fast form of Sun & Xu (2014, IEEE Signal Processing
  Letters 21:1389), which needs midranks only. DeLong's variance is that of one AUC; the macro average of
  one-vs-rest AUCs has no such closed form in the paper, so with more than two classes the p-value comes from the
  bootstrap (twice the share of resamples on the far side of zero, as (k + 1) / (B + 1));
- the difference of accuracy (argmax class) with McNemar's exact test: a binomial test of the discordant patients,
  those one model gets right and the other wrong (scipy.stats.binomtest).

`holm` adjusts the p-values of several pairs (Holm 1979), which keeps the chance of any false claim at 5%.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest, norm, rankdata

LEVEL = 0.95


def _auc_binary(positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC of each row of `scores` (k, n) for the boolean `positive` (n,), ties counting half; NaN with one class."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if not n_pos or not n_neg:
        return np.full(scores.shape[0], np.nan)
    ranks = rankdata(scores, axis=1)
    return (ranks[:, positive].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc(targets: np.ndarray, proba: np.ndarray) -> float:
    """Binary: AUC of the second class; more classes: mean one-vs-rest AUC over the classes present (with a rest)."""
    targets = np.asarray(targets, dtype=int)
    proba = np.asarray(proba, dtype=float)
    if proba.shape[1] == 2:
        return float(_auc_binary(targets == 1, proba[None, :, 1])[0])
    values = [_auc_binary(targets == k, proba[None, :, k])[0] for k in range(proba.shape[1])]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def delong(targets: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> dict:
    """DeLong's test of AUC(a) = AUC(b) on the same patients (binary `targets` 0/1; scores of class 1).

    Returns auc_a, auc_b, the difference a - b, its standard error, z and the two-sided p. Scores that rank every
    pair of patients alike (identical, or one a monotone function of the other) give a difference of 0, p = 1.
    """
    targets = np.asarray(targets, dtype=int)
    scores = np.vstack([np.asarray(score_a, dtype=float), np.asarray(score_b, dtype=float)])
    positive = targets == 1
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's test needs at least two patients of each class, got {m} and {n}")
    x, y = scores[:, positive], scores[:, ~positive]
    # Sun & Xu: midranks within the positives, within the negatives and over all give the structural components.
    tx, ty, tz = rankdata(x, axis=1), rankdata(y, axis=1), rankdata(np.hstack([x, y]), axis=1)
    aucs = tz[:, :m].sum(axis=1) / (m * n) - (m + 1) / (2 * n)
    v10 = (tz[:, :m] - tx) / n  # per positive: the share of negatives it outranks
    v01 = 1 - (tz[:, m:] - ty) / m  # per negative: the share of positives that outrank it
    covariance = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    difference = float(aucs[0] - aucs[1])
    if variance <= 1e-15 or abs(difference) < 1e-12:
        z, p = 0.0, 1.0
    else:
        z = difference / np.sqrt(variance)
        p = float(2 * norm.sf(abs(z)))
    return {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "difference": difference,
        "se": float(np.sqrt(max(variance, 0.0))),
        "z": float(z),
        "p": p,
    }


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """McNemar's exact test of equal accuracy: only_a and only_b (patients one model gets right and the other wrong),
    the accuracy difference a - b and the two-sided p (1 without discordant patients)."""
    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum())
    p = float(binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0
    return {"only_a": only_a, "only_b": only_b, "difference": (only_a - only_b) / max(len(correct_a), 1), "p": p}


def paired_bootstrap(
    targets: np.ndarray, proba_a: np.ndarray, proba_b: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> dict:
    """Percentile intervals of the AUC and accuracy differences a - b, resampling patients once for both models;
    with the share of resamples on each side of zero (the bootstrap p of the AUC difference)."""
    targets = np.asarray(targets, dtype=int)
    rng = np.random.default_rng(seed)
    right_a = np.asarray(proba_a).argmax(axis=1) == targets
    right_b = np.asarray(proba_b).argmax(axis=1) == targets
    auc_draws, accuracy_draws = [], []
    for _ in range(n_boot):
        chosen = rng.integers(0, len(targets), len(targets))
        auc_draws.append(auc(targets[chosen], proba_a[chosen]) - auc(targets[chosen], proba_b[chosen]))
        accuracy_draws.append(float(right_a[chosen].mean() - right_b[chosen].mean()))
    auc_draws = np.asarray(auc_draws, dtype=float)
    auc_draws = auc_draws[~np.isnan(auc_draws)]  # a resample with one class has no AUC
    alpha = (1 - LEVEL) / 2
    result = {"n_boot": n_boot, "auc_ci": (float("nan"), float("nan")), "auc_p": float("nan")}
    if len(auc_draws) >= max(10, n_boot // 10):
        result["auc_ci"] = (float(np.quantile(auc_draws, alpha)), float(np.quantile(auc_draws, 1 - alpha)))
        # (k + 1) / (B + 1): a p of a finite number of resamples is never 0
        side = min(int((auc_draws <= 0).sum()), int((auc_draws >= 0).sum()))
        result["auc_p"] = float(min(1.0, 2 * (side + 1) / (len(auc_draws) + 1)))
    result["accuracy_ci"] = (float(np.quantile(accuracy_draws, alpha)), float(np.quantile(accuracy_draws, 1 - alpha)))
    return result


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of p-values (NaN stays NaN and takes no part)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def compare_pair(targets, proba_a, proba_b, n_boot: int = 1000, seed: int = 0) -> dict:
    """Every paired statistic of two models' probabilities (N x C, the same patients in the same order)."""
    targets = np.asarray(targets, dtype=int)
    proba_a, proba_b = np.asarray(proba_a, dtype=float), np.asarray(proba_b, dtype=float)
    binary = proba_a.shape[1] == 2
    result = {
        "n_patients": int(len(targets)),
        "auc_a": auc(targets, proba_a),
        "auc_b": auc(targets, proba_b),
        "accuracy_a": float((proba_a.argmax(axis=1) == targets).mean()),
        "accuracy_b": float((proba_b.argmax(axis=1) == targets).mean()),
    }
    result["auc_difference"] = result["auc_a"] - result["auc_b"]
    boot = paired_bootstrap(targets, proba_a, proba_b, n_boot=n_boot, seed=seed)
    result["auc_ci_low"], result["auc_ci_high"] = boot["auc_ci"]
    if binary and min(np.bincount(targets, minlength=2)) >= 2:
        result["auc_test"], result["auc_p"] = "DeLong", delong(targets, proba_a[:, 1], proba_b[:, 1])["p"]
    else:
        result["auc_test"], result["auc_p"] = "bootstrap", boot["auc_p"]
    test = mcnemar(proba_a.argmax(axis=1) == targets, proba_b.argmax(axis=1) == targets)
    result["accuracy_difference"] = test["difference"]
    result["accuracy_ci_low"], result["accuracy_ci_high"] = boot["accuracy_ci"]
    result["only_a_right"], result["only_b_right"] = test["only_a"], test["only_b"]
    result["accuracy_p"] = test["p"]
    return result
