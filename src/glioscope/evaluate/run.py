"""Evaluate a run folder: metrics per fold, mean +- SD, pooled metrics and bootstrap intervals.

Reads RUN/predictions.csv (one row per fold, model and slice) and writes
RUN/metrics.json and RUN/predictions_patients.csv. Everything is computed twice,
patient level first (mean probability per patient within each fold), then image
level. Rows whose fold is "test" (or -1) form a separate evaluation set, "test",
reported after the cross-validation set, "cv".

metrics.json holds, besides the run's metadata:

    sets: ["cv", "test"?]
    <set>: {<model>: {"patient": LEVEL, "image": LEVEL}}
    LEVEL = {"n": rows pooled, "n_patients": int, "n_folds": int,
             "per_fold": [{"fold": k, "n": int, <flat metric>: value, ...}],
             "summary": {<flat metric>: [mean, sd]},          # over folds
             "pooled": classification_metrics(...) of all folds' rows,
             "ci": {<flat metric>: [low, high]}}              # 95%, patients resampled

    degenerate: folds whose model gives every patient one score or one class (glioscope.evaluate.degenerate)
    pooled_vs_folds: per model, the pooled patient AUC beside the fold mean ± SD, and whether they part
    sites: per-site metrics and the site-alone AUC, when the cohort tells sites apart (glioscope.evaluate.sites)

NaN (e.g. an AUC where a fold lacks a class) is written as null.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

import glioscope
from glioscope import references
from glioscope.evaluate.aggregate import arrays, prob_columns, to_patients
from glioscope.evaluate.conformal import evaluated_sets
from glioscope.evaluate.degenerate import degenerate_folds, pooled_vs_folds
from glioscope.evaluate.bootstrap import bootstrap_intervals, fold_summary
from glioscope.evaluate.metrics import classification_metrics, flat_metrics
from glioscope.evaluate.operating_point import at_threshold
from glioscope.evaluate.sites import site_checks
from glioscope.rundir import RunFolder

LEVELS = ("patient", "image")
SETS = ("cv", "test")


def fold_key(fold: str):
    """Sort key of fold labels: CV folds by number, then "test"."""
    return (0, int(fold), "") if str(fold).lstrip("-").isdigit() else (1, 0, str(fold))


def _fold_value(fold: str):
    return int(fold) if str(fold).lstrip("-").isdigit() else fold


def evaluate_level(frame: pd.DataFrame, class_names: list[str], n_boot: int = 1000, seed: int = 0) -> dict:
    """Per-fold, mean +- SD, pooled and bootstrap metrics of one model at one level."""
    per_fold = []
    for fold in sorted(frame["fold"].unique(), key=fold_key):
        rows = frame[frame["fold"] == fold]
        flat = flat_metrics(classification_metrics(*arrays(rows), class_names))
        per_fold.append({"fold": _fold_value(fold), "n": int(len(rows)), **flat})
    summary = fold_summary([{k: v for k, v in f.items() if k not in ("fold", "n")} for f in per_fold])
    return {
        "n": int(len(frame)),
        "n_patients": int(frame["patient_id"].nunique()),
        "n_folds": len(per_fold),
        "per_fold": per_fold,
        "summary": {k: list(v) for k, v in summary.items()},
        "pooled": classification_metrics(*arrays(frame), class_names),
        "ci": {k: list(v) for k, v in bootstrap_intervals(frame, n_boot=n_boot, seed=seed).items()},
    }


def evaluate_run(
    run_dir: str | Path, n_boot: int = 1000, seed: int = 0, name: str | None = None, site_column: str | None = None
) -> dict:
    """Evaluate every model of a run at patient and image level; writes metrics.json and predictions_patients.csv.

    `name` is the run's name in metrics.json (default: its folder's name); `site_column` names the cohort column of
    the patients' sites (default: the one named last, else the split's, else found; glioscope.evaluate.sites).
    """
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    info = folder.info()
    images = folder.predictions(info.get("class_names") or None)
    names = [c[len("prob_") :] for c in prob_columns(images)]
    patients = to_patients(images, by=("set", "fold", "model"))
    models = [m for m in info["models"] if m in set(images["model"])]
    models += sorted(set(images["model"]) - set(models))
    sets = [s for s in SETS if (images["set"] == s).any()]
    result = {
        "run": name or run_dir.name,
        "recipe": info.get("recipe"),
        "label": info.get("label"),
        "task": info.get("task"),
        "class_names": names,
        "models": models,
        "folds": [_fold_value(f) for f in sorted(images.loc[images["set"] == "cv", "fold"].unique(), key=fold_key)],
        "leaky": bool(info.get("leaky")),
        "patient_ids": bool(info.get("patient_ids", True)),
        "split_statement": info.get("split_statement", ""),
        "paper_tables": references.tables_of(info),
        "levels": list(LEVELS),
        "sets": sets,
        "n_boot": int(n_boot),
        "seed": int(seed),
        "evaluated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "glioscope_version": glioscope.__version__,
    }
    for set_name in sets:
        result[set_name] = {}
        for model in models:
            levels = {"patient": patients, "image": images}
            result[set_name][model] = {}
            for level, table in levels.items():
                rows = table[(table["set"] == set_name) & (table["model"] == model)]
                if len(rows):
                    result[set_name][model][level] = evaluate_level(rows, names, n_boot, seed)
    result["degenerate"] = degenerate_folds(patients, names)
    result["pooled_vs_folds"] = pooled_vs_folds(result)
    result["sites"] = site_checks(folder, patients, names, models, site_column, n_boot, seed)
    point = (info.get("external") or {}).get("operating_point")
    if point:  # an external test of a binary run: each model at the threshold the run's CV chose
        result["operating_point"] = {
            **point,
            "test": {
                model: at_threshold(rows["target"].to_numpy(), rows[f"prob_{names[1]}"].to_numpy(), point["threshold"])
                for model, rows in patients[patients["set"] == "test"].groupby("model", sort=False)
            },
        }
    sets = evaluated_sets(folder, info, names, patients)  # a run's calibration; an external test's coverage
    if sets:
        result["conformal"] = sets
    result = _json_safe(result)
    folder.write_metrics(result, _patient_table(patients, names))
    return result


def _patient_table(patients: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """One row per (fold, model, patient): mean probabilities, target and predicted class."""
    table = patients.copy()
    probs = [f"prob_{c}" for c in names]
    predicted = table[probs].to_numpy().argmax(axis=1)
    table["predicted"] = predicted
    table["target_label"] = [names[k] for k in table["target"]]
    table["predicted_label"] = [names[k] for k in predicted]
    table["correct"] = table["predicted"] == table["target"]
    front = [
        "set",
        "fold",
        "model",
        "patient_id",
        "n_items",
        "target",
        "target_label",
        "predicted",
        "predicted_label",
        "correct",
    ]
    table["_order"] = table["fold"].map(fold_key)
    table = table.sort_values(["set", "_order", "model", "patient_id"], kind="stable")
    return table[front + probs].reset_index(drop=True)


def _json_safe(obj):
    """Tuples to lists, numpy scalars to Python, NaN and inf to None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def load_metrics(run_dir: str | Path, evaluate_if_missing: bool = False, **kwargs) -> dict:
    """RUN/metrics.json; evaluates the run first when it is missing or older than predictions.csv and asked to."""
    folder = RunFolder(run_dir)
    if evaluate_if_missing and folder.metrics_stale():
        return evaluate_run(run_dir, **kwargs)
    return folder.metrics()


def value(x) -> float:
    """A metric from metrics.json as float (null -> NaN)."""
    return float("nan") if x is None else float(x)
