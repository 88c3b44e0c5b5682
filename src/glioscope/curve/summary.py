"""A learning curve's figures: per fraction, the pooled held-out patient AUC and accuracy with bootstrap intervals,
the per-fold mean and SD, the training patients; and whether the curve still rises, by a paired bootstrap of the
AUC difference between two fractions on the same held-out patients."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from glioscope.evaluate.aggregate import arrays
from glioscope.evaluate.metrics import classification_metrics
from glioscope.evaluate.run import evaluate_level

COLUMNS = [
    "fraction",
    "train_patients_mean",
    "train_patients_min",
    "train_patients_max",
    "held_out_patients",
    "folds",
    "auc",
    "auc_low",
    "auc_high",
    "auc_fold_mean",
    "auc_fold_sd",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "accuracy_fold_mean",
    "accuracy_fold_sd",
    "seconds",
]


def fraction_row(
    patients: pd.DataFrame, names: list[str], fraction: float, runs: pd.DataFrame, n_boot: int, seed: int
) -> dict:
    """One fraction's row of curve.csv: `patients` its held-out predictions of every fold (fold, patient_id, target,
    prob_*), `runs` its runs (fold, train_patients, seconds)."""
    level = evaluate_level(patients, names, n_boot=n_boot, seed=seed)
    pooled, ci, summary = level["pooled"], level["ci"], level["summary"]
    nan2 = [math.nan, math.nan]
    row = {
        "fraction": fraction,
        "train_patients_mean": float(runs["train_patients"].mean()),
        "train_patients_min": int(runs["train_patients"].min()),
        "train_patients_max": int(runs["train_patients"].max()),
        "held_out_patients": int(level["n_patients"]),
        "folds": int(level["n_folds"]),
        "seconds": round(float(runs["seconds"].sum()), 1),
    }
    for metric in ("auc", "accuracy"):
        row[metric] = pooled[metric]
        row[f"{metric}_low"], row[f"{metric}_high"] = ci.get(metric, nan2)
        row[f"{metric}_fold_mean"], row[f"{metric}_fold_sd"] = summary.get(metric, nan2)
    return {c: row[c] for c in COLUMNS}


def per_fold(patients: pd.DataFrame, names: list[str]) -> dict[int, float]:
    """Each fold's held-out patient AUC (NaN where a fold's held-out patients are of one class)."""
    return {int(k): _auc(*arrays(rows), names) for k, rows in patients.groupby("fold")}


def _auc(targets: np.ndarray, proba: np.ndarray, names: list[str]) -> float:
    return float(classification_metrics(targets, proba, names)["auc"])


def paired_difference(
    before: pd.DataFrame, after: pd.DataFrame, names: list[str], n_boot: int = 1000, seed: int = 0
) -> dict:
    """AUC(after) - AUC(before) on the patients both predicted, and its 95% interval: the same resampled patients
    scored by both (a paired bootstrap), so that what the patients share does not widen the interval."""
    keys = ["fold", "patient_id"]
    joined = before.merge(after, on=[*keys, "target"], suffixes=("_a", "_b"))
    targets = joined["target"].to_numpy(dtype=int)
    first = joined[[f"prob_{c}_a" for c in names]].to_numpy(dtype=float)
    second = joined[[f"prob_{c}_b" for c in names]].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        index = rng.integers(0, len(targets), len(targets))
        draws.append(_auc(targets[index], second[index], names) - _auc(targets[index], first[index], names))
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    low, high = np.quantile(draws, [0.025, 0.975]) if len(draws) >= max(10, n_boot // 10) else (math.nan, math.nan)
    return {
        "difference": _auc(targets, second, names) - _auc(targets, first, names),
        "low": float(low),
        "high": float(high),
        "patients": int(len(targets)),
    }


def steps(by_fraction: dict[float, pd.DataFrame], names: list[str], n_boot: int, seed: int) -> dict[str, dict]:
    """The paired AUC differences of the last step (the two largest fractions) and of the whole curve."""
    fractions = sorted(by_fraction)
    if len(fractions) < 2:
        return {}
    found = {}
    for name, (a, b) in {"last": fractions[-2:], "whole": (fractions[0], fractions[-1])}.items():
        found[name] = {"from": a, "to": b, **paired_difference(by_fraction[a], by_fraction[b], names, n_boot, seed)}
    return found


def _step_words(step: dict, rows: dict[float, dict]) -> str:
    a, b = rows[step["from"]], rows[step["to"]]
    return (
        f"{a['train_patients_mean']:.0f} to {b['train_patients_mean']:.0f} training patients changed the AUC by "
        f"{step['difference']:+.3f} [95% CI {step['low']:+.3f}, {step['high']:+.3f}]"
    )


def verdict(curve: pd.DataFrame, found: dict[str, dict]) -> str:
    """A plain sentence: does the curve still rise, as far as its held-out patients can tell?"""
    if not found:
        return "One fraction only: there is no curve to read; give several --fractions."
    rows = {r["fraction"]: r for r in curve.to_dict("records")}
    last, whole = found["last"], found["whole"]
    held_out = int(curve["held_out_patients"].max())
    if not (math.isfinite(last["low"]) and math.isfinite(last["high"])):
        return f"The AUC differences could not be bootstrapped on these {held_out} held-out patients."
    same = whole["from"] == last["from"]
    if last["low"] > 0 and (same or whole["low"] > 0):
        return (
            f"The curve still rises: {_step_words(last, rows)} (paired bootstrap over the same {held_out} held-out "
            "patients), so more patients would likely help."
        )
    if (last["low"] > 0 or last["high"] < 0) and not same and whole["low"] <= 0 <= whole["high"]:
        moved = "rose" if last["low"] > 0 else "fell"
        return (
            f"The curve is noisy: its last step {moved} ({_step_words(last, rows)}), but the whole curve did not "
            f"move beyond noise ({_step_words(whole, rows)}) with {held_out} held-out patients; it cannot tell "
            "whether more patients would help."
        )
    if last["high"] < 0:
        return (
            f"The curve falls at its last step: {_step_words(last, rows)} (paired bootstrap over the same "
            f"{held_out} held-out patients); more patients of this kind did not help this recipe here."
        )
    if whole["low"] > 0:
        return (
            f"The curve rose overall ({_step_words(whole, rows)}), but its last step is within noise "
            f"({_step_words(last, rows)}): the gain from more patients is slowing, or too small for {held_out} "
            "held-out patients to show."
        )
    steps_words = (
        _step_words(last, rows)
        if whole["from"] == last["from"]
        else f"the last step: {_step_words(last, rows)}; the whole curve: {_step_words(whole, rows)}"
    )
    return (
        f"The curve is flat within noise ({steps_words}): no change is established at 95% with {held_out} held-out "
        "patients, so this cohort cannot tell whether more patients would help."
    )
