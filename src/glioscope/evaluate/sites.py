"""Is the site talking? Per-site metrics of a run's patient predictions, and what the site alone predicts.

When the run's cohort tells two or more sites apart (glioscope.sites), metrics.json gets a `sites` block:

    source, column      where the sites were read (a column, the DICOM headers, the TCGA ids)
    named_column        the column named by --site-column or the split (a re-evaluation reads it again), or null
    names               the sites
    patients            {site: {class: patients}} of the run's cohort
    per_site            {set: {model: {site: {n_patients, classes: {class: n}, auc, accuracy}}}}
    site_alone          {auc, ci, n_patients, n_folds}: the out-of-fold AUC of a predictor that scores each held-out
                        patient by the class rates among that fold's training patients of its site (the overall
                        rates for a site no training patient is from), with its bootstrap interval; null without
                        two cross-validation folds
    entangled, rule     whether sites and labels are entangled by RULE: a model can then learn the scanner
    caution             not entangled by RULE, but the site-alone AUC is CAUTION or more from 0.5: too few to tell
    by_site_folds       true when the folds keep sites whole (the site alone cannot predict a held-out site)

With fewer than two sites the block says only how many sites, and from where (`source` null: none known).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from glioscope.evaluate.aggregate import arrays
from glioscope.evaluate.bootstrap import bootstrap_intervals
from glioscope.evaluate.metrics import classification_metrics
from glioscope.rundir import COHORT, METRICS, SPLIT_META, SPLITS, RunFolder
from glioscope.sites import Sites, patient_sites
from glioscope.util import csvfiles

# Entangled: a warning. Below 0.5 happens with folds of whole sites, where a held-out site is scored by the rates of
# the sites trained on: its class shares then run against theirs.
RULE = "the site-alone AUC's 95% bootstrap interval excludes 0.5"
CAUTION = 0.1  # a site-alone AUC this far from 0.5 or more, its interval holding 0.5: possibly, too few to tell


def run_sites(folder: RunFolder, site_column: str | None = None) -> tuple[Sites | None, dict, str | None]:
    """The sites of a run's cohort (the column named here, else the one its last evaluation or its split named,
    else found), the split's metadata and the column named."""
    meta_path = folder / SPLIT_META
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    before = json.loads((folder / METRICS).read_text(encoding="utf-8")) if (folder / METRICS).is_file() else {}
    named = site_column or (before.get("sites") or {}).get("named_column") or meta.get("site_column")
    if not (folder / COHORT).is_file():
        return None, meta, named
    return patient_sites(folder.cohort(), named, folder / COHORT), meta, named


def site_checks(
    folder: RunFolder,
    patients: pd.DataFrame,
    names: list[str],
    models: list[str],
    site_column: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """The `sites` block of metrics.json (see the module docstring); `patients`: one row per set, fold, model and
    patient (glioscope.evaluate.aggregate.to_patients)."""
    found, meta, named = run_sites(folder, site_column)
    if found is None or len(found.names) < 2:
        return {"source": found.source if found else None, "names": found.names if found else [], "named_column": named}
    splits = csvfiles.read(folder / SPLITS) if (folder / SPLITS).is_file() else None
    result = {
        "source": found.source,
        "column": found.column,
        "named_column": named,  # a re-evaluation reads the same column
        "names": found.names,
        "patients": _class_counts(splits, found, names) if splits is not None else None,
        "per_site": {},
        "site_alone": site_alone(splits, found, names, n_boot, seed) if splits is not None else None,
        "rule": RULE,
        "by_site_folds": meta.get("mode") == "by-site",
    }
    alone = result["site_alone"]
    result["entangled"] = bool(alone and (alone["ci"][0] > 0.5 or alone["ci"][1] < 0.5))  # NaN (no interval): False
    result["caution"] = bool(alone and not result["entangled"] and abs(alone["auc"] - 0.5) >= CAUTION)
    for set_name, rows in patients.groupby("set", sort=False):
        result["per_site"][str(set_name)] = {
            model: per_site(rows[rows["model"] == model], found, names)
            for model in models
            if (rows["model"] == model).any()
        }
    return result


def _class_counts(splits: pd.DataFrame, found: Sites, names: list[str]) -> dict:
    """Patients per class of each site, among the run's patients."""
    patients = splits.drop_duplicates("patient_id")
    site = found.of(patients["patient_id"].astype(str)).to_numpy()
    labels = patients["label"].astype(str).to_numpy()
    return {s: {c: int(((site == s) & (labels == c)).sum()) for c in names} for s in found.names}


def per_site(rows: pd.DataFrame, found: Sites, names: list[str]) -> dict:
    """Patients, their classes, AUC and accuracy among each site's patients of one model's predictions."""
    site = found.of(rows["patient_id"].astype(str)).fillna("unknown").to_numpy()
    result = {}
    for name in sorted(set(site)):
        sub = rows[site == name]
        metrics = classification_metrics(*arrays(sub), names)
        counts = np.bincount(sub["target"].to_numpy(dtype=int), minlength=len(names))
        result[name] = {
            "n_patients": int(sub["patient_id"].nunique()),
            "classes": {c: int(n) for c, n in zip(names, counts)},
            "auc": metrics["auc"],
            "accuracy": metrics["accuracy"],
        }
    return result


def site_alone_scores(splits: pd.DataFrame, found: Sites, names: list[str]) -> pd.DataFrame | None:
    """Each cross-validation patient scored by its site's class rates among its fold's training patients (patient_id,
    fold, target, prob_<class>); None without two folds."""
    table = splits[splits["partition"].astype(str) == "cv"].drop_duplicates("patient_id")
    table = table[table["label"].astype(str).isin(names)]
    folds = sorted(table["fold"].astype(int).unique())
    if len(folds) < 2:
        return None
    patient = table["patient_id"].astype(str).to_numpy()
    site = found.of(patient).fillna("unknown").to_numpy()
    target = table["label"].astype(str).map(names.index).to_numpy()
    fold = table["fold"].astype(int).to_numpy()
    probs = np.zeros((len(table), len(names)))
    for k in folds:
        train, held = fold != k, fold == k
        overall = np.bincount(target[train], minlength=len(names)) / train.sum()
        for name in set(site[held]):
            mine = train & (site == name)
            rates = np.bincount(target[mine], minlength=len(names)) / mine.sum() if mine.any() else overall
            probs[held & (site == name)] = rates
    frame = pd.DataFrame({"patient_id": patient, "fold": fold, "target": target})
    return frame.join(pd.DataFrame(probs, columns=[f"prob_{c}" for c in names]))


def site_alone(splits: pd.DataFrame, found: Sites, names: list[str], n_boot: int = 1000, seed: int = 0) -> dict | None:
    """The out-of-fold AUC of the site's class rates, with its bootstrap interval (see the module docstring)."""
    scores = site_alone_scores(splits, found, names)
    if scores is None:
        return None
    auc = classification_metrics(*arrays(scores), names)["auc"]
    low, high = bootstrap_intervals(scores, n_boot=n_boot, seed=seed).get("auc", (float("nan"),) * 2)
    return {
        "auc": auc,
        "ci": [low, high],
        "n_patients": int(len(scores)),
        "n_folds": int(scores["fold"].nunique()),
    }
