"""A cohort's fingerprint: what `glioscope auto` plans from, and the refusals that come before any plan.

    frame, notes = labelled(cohort.load(path), "label", dims=None)   # refuses no labels, one class, 2D+3D mixed
    found = fingerprint(frame, "label")                              # patients and items per class, sizes, sites
    check_folds(found, folds=3, inner_folds=3)                       # refuses too few patients per class

The fingerprint is plain data (written as OUT/fingerprint.json): patients and items per class, 2D or 3D,
sequences, planes, the share of patients with a tumour mask, image sizes and spacings, and the
patients per site when patient ids tell a site (TCGA's TCGA_<site>_<n>).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from glioscope.errors import InputError
from glioscope.sites import site_of

DIMS = {"image": "2d", "volume": "3d", "series": "3d"}


def labelled(frame: pd.DataFrame, label: str, dims: str | None, source=None) -> tuple[pd.DataFrame, list[str]]:
    """The rows auto plans for: labelled by `label`, of one dimensionality; refusals name the cohort."""
    if label not in frame:
        raise InputError(source, f"the cohort has no column {label!r} to learn (--task); columns: label, grade, mgmt")
    values = frame[label].fillna("").astype(str)
    notes = []
    if (values == "").all():
        raise InputError(source, f"no row has a {label!r}: there is nothing to learn (join labels at ingest: --labels)")
    if (values == "").any():
        notes.append(f"{int((values == '').sum())} row(s) without a {label!r} are left out")
    frame = frame[values != ""].reset_index(drop=True)
    found = frame["kind"].map(DIMS).fillna("2d")
    if dims is None and found.nunique() > 1:
        counts = found.value_counts()
        raise InputError(
            source,
            f"mixes 2D images ({counts.get('2d', 0)} rows) and 3D volumes ({counts.get('3d', 0)} rows): "
            "choose one with --dims 2d or --dims 3d",
        )
    if dims is not None:
        kept = found == dims
        if not kept.any():
            raise InputError(source, f"has no {dims.upper()} items (--dims {dims})")
        if not kept.all():
            notes.append(f"{int((~kept).sum())} row(s) that are not {dims.upper()} are left out (--dims {dims})")
        frame = frame[kept].reset_index(drop=True)
    classes = sorted(frame[label].astype(str).unique())
    if len(classes) < 2:
        raise InputError(source, f"every labelled row is of one class ({classes[0]!r}): there is nothing to tell apart")
    return frame, notes


def _spread(values) -> dict | None:
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if not len(values):
        return None
    return {"min": float(values.min()), "median": float(np.median(values)), "max": float(values.max())}


def _spacing(text) -> float | None:
    try:
        parts = [float(p) for p in str(text).split(",") if p.strip()]
    except ValueError:
        return None
    return min(parts) if parts else None


def fingerprint(frame: pd.DataFrame, label: str) -> dict:
    """Plain data about the cohort rows (see the module docstring)."""
    labels = frame[label].astype(str)
    patients = frame.assign(_label=labels).drop_duplicates("patient_id")
    per_class = {
        c: {"patients": int((patients["_label"] == c).sum()), "items": int((labels == c).sum())}
        for c in sorted(labels.unique())
    }
    clash = frame.assign(_label=labels).groupby("patient_id")["_label"].nunique()
    masked = frame[frame["mask_path"].fillna("").astype(str) != ""]["patient_id"].nunique()
    sequences = frame["sequence"].astype(str)
    singles = sorted({s for seq in sequences for s in seq.split("+")})
    sites = pd.Series([site_of(p) for p in patients["patient_id"]], index=patients.index)
    by_site = None
    if sites.notna().all() and sites.nunique() > 1:
        by_site = {
            s: {c: int(((sites == s) & (patients["_label"] == c)).sum()) for c in per_class}
            for s in sorted(sites.unique())
        }
    dims = sorted(set(frame["kind"].map(DIMS).fillna("2d")))
    return {
        "label": label,
        "patients": int(frame["patient_id"].nunique()),
        "items": int(len(frame)),
        "classes": per_class,
        "patients_with_two_labels": int((clash > 1).sum()),
        "dims": dims[0] if len(dims) == 1 else "mixed",
        "kinds": {str(k): int(v) for k, v in frame["kind"].value_counts().items()},
        "sequences": {str(k): int(v) for k, v in sequences.value_counts().items()},
        "channels": singles,
        "planes": {str(k): int(v) for k, v in frame["plane"].astype(str).value_counts().items()},
        "mask_share": round(masked / max(frame["patient_id"].nunique(), 1), 3),
        "rows": _spread(pd.to_numeric(frame["rows"], errors="coerce")),
        "cols": _spread(pd.to_numeric(frame["cols"], errors="coerce")),
        "slices": _spread(pd.to_numeric(frame["n_slices"], errors="coerce")),
        "spacing_mm": _spread([_spacing(s) for s in frame["spacing"]]),
        "items_per_patient": _spread(frame.groupby("patient_id").size().to_numpy()),
        "sites": by_site,
        "formats": {str(k): int(v) for k, v in frame["source_format"].astype(str).value_counts().items()},
    }


def check_folds(found: dict, folds: int, inner_folds: int, source=None) -> None:
    """Refuse a cohort whose smallest class cannot fill `folds` outer folds and `inner_folds` inner ones."""
    if found["patients_with_two_labels"]:
        raise InputError(
            source, f"{found['patients_with_two_labels']} patient(s) have rows of two classes: a patient has one label"
        )
    need = max(folds, math.ceil(inner_folds * folds / (folds - 1)))
    small = {c: v["patients"] for c, v in found["classes"].items() if v["patients"] < need}
    if small:
        listing = ", ".join(f"{c}: {n}" for c, n in small.items())
        raise InputError(
            source,
            f"too few patients per class for {folds} outer folds with {inner_folds} inner folds each (at least {need} "
            f"per class; {listing}); use fewer folds (--folds 2 --inner-folds 2) or more patients",
        )
