"""Models that say one thing to everyone, and pooled figures that disagree with their folds.

A fold model that gives (nearly) every patient the same probabilities has learnt nothing that
ranks them: its AUC is 0.5 by ties alone, and pooled with other folds its constant (often the
training prevalence, which stratified folds move against the held-out fold's) ranks patients
of different folds against their labels. A model that predicts one class for every patient of
a fold that holds several is the milder form. Both are named, never averaged away silently:

    degenerate_folds(patients, names) -> [{"set", "model", "fold", "patients", "finding", "detail"}]
        finding "one score": every class's probability spans less than SCORE_SPREAD over the fold's patients;
        finding "one class": more than one true class, one predicted class.

The pooled patient AUC ranks every fold's held-out patients against each other; the mean of the
per-fold AUCs ranks them only within their fold. `pooled_vs_folds` flags a model whose pooled
value lies further from the fold mean than the folds' SD (and than MIN_GAP): then fold models differ in calibration
(a shifted score scale ranks well within its fold and badly across folds), and the fold mean is
the figure of how well one such model ranks patients (Forman and Scholz, SIGKDD Explorations
2010), while the pooled value shows what miscalibration between folds costs a single threshold.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SCORE_SPREAD = 1e-3  # probabilities that span less than this over a fold's patients are "one score"
MIN_GAP = 0.02  # a pooled AUC within this of the fold mean is not called apart, whatever the folds' SD
METRIC = "macro_auc"
WHY_THEY_DIFFER = (
    "pooling ranks patients of different folds against each other, so fold models whose scores sit on different "
    "scales (per-fold calibration offsets; stratified folds on a weak signal turn them against the labels) pull it "
    "from the fold mean. Quote the fold mean ± SD for how well one model ranks patients; the pooled value is what "
    "one threshold across the fold models would see"
)


def degenerate_folds(patients: pd.DataFrame, names: list[str]) -> list[dict]:
    """Every (set, model, fold) of patient-level rows whose model gives one score or predicts one class."""
    probs = [f"prob_{n}" for n in names]
    found = []
    for (set_name, model, fold), rows in patients.groupby(["set", "model", "fold"], sort=False):
        finding = assess(rows[probs].to_numpy(float), rows["target"].to_numpy(int), names)
        if finding:
            found.append({"set": set_name, "model": model, "fold": _fold(fold), "patients": len(rows), **finding})
    return found


def assess(probabilities: np.ndarray, targets: np.ndarray | None, names: list[str]) -> dict | None:
    """{"finding", "detail"} when these patients' probabilities are one score or one class; None otherwise.

    `targets` None (a prediction without labels): one class is named whenever there are two or more patients.
    """
    if len(probabilities) < 2:
        return None
    spread = float((probabilities.max(axis=0) - probabilities.min(axis=0)).max())
    if spread < SCORE_SPREAD:
        score = ", ".join(f"{n} {p:.3f}" for n, p in zip(names, probabilities.mean(axis=0)))
        return {"finding": "one score", "detail": f"every patient gets the same probabilities ({score})"}
    predicted = np.unique(probabilities.argmax(axis=1))
    several = targets is None or len(np.unique(targets)) > 1
    if len(predicted) == 1 and several:
        return {"finding": "one class", "detail": f"every patient is predicted {names[int(predicted[0])]}"}
    return None


def pooled_vs_folds(metrics: dict, set_name: str = "cv", level: str = "patient") -> list[dict]:
    """Per model: the pooled macro AUC, the fold mean and SD, and whether they differ by more than the SD."""
    rows = []
    for model in metrics.get("models", []):
        entry = (metrics.get(set_name) or {}).get(model, {}).get(level)
        if not entry or entry.get("n_folds", 0) < 2:
            continue
        pooled = _number(entry["pooled"].get(METRIC))
        mean, sd = (_number(v) for v in (entry.get("summary", {}).get(METRIC) or [None, None]))
        differs = all(map(math.isfinite, (pooled, mean, sd))) and abs(pooled - mean) > max(sd, MIN_GAP)
        rows.append({"model": model, "pooled": pooled, "fold_mean": mean, "fold_sd": sd, "differs": bool(differs)})
    return rows


def lines(metrics: dict) -> list[str]:
    """The terminal's and the report's sentences: each degenerate fold, each pooled figure that parts from its folds."""
    out = []
    for item in metrics.get("degenerate") or []:
        where = "held-out test set" if item["set"] == "test" else f"fold {item['fold']}"
        out.append(f"warning: {item['model']}, {where}: {item['detail']} ({item['patients']} patients)")
    for row in metrics.get("pooled_vs_folds") or []:
        if row["differs"]:
            out.append(
                f"note: {row['model']}: pooled patient AUC {row['pooled']:.3f} vs fold mean {row['fold_mean']:.3f} ± "
                f"{row['fold_sd']:.3f}: {WHY_THEY_DIFFER}"
            )
    return out


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _fold(fold):
    return int(fold) if str(fold).lstrip("-").isdigit() else str(fold)
