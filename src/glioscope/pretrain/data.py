"""The pretraining data: the slices of one or more cohorts under a recipe's data settings, and what they are."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope import cohort
from glioscope.errors import GlioscopeError, InputError
from glioscope.plan import select_rows, unlabelled_words


@dataclass
class PretrainData:
    """The cohorts' rows, their slices (one SliceSet), class names (supervised) and notes."""

    frames: list[tuple[Path, pd.DataFrame]]
    samples: object  # a SliceSet of every cohort's slices (column pretrain_cohort: which cohort)
    classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def patient_ids(self) -> set[str]:
        """The cohorts' patient ids as the cohorts give them (for the leak checks)."""
        return set().union(*(set(frame["patient_id"].astype(str)) for _, frame in self.frames))

    def targets(self) -> np.ndarray:
        if not self.classes:
            return np.zeros(len(self.samples.table), dtype=np.int64)
        return self.samples.targets(self.classes)

    def sources(self) -> list[dict]:
        """Per cohort: its folder's name, the data folders it was read from, patients, items and slices."""
        found = []
        table = self.samples.table
        for k, (path, frame) in enumerate(self.frames):
            summary = _summary(path)
            found.append(
                {
                    "cohort": path.name,
                    "sources": [Path(s).name for s in summary.get("sources", [])],
                    "formats": sorted(summary.get("formats", {})),
                    "patients": int(frame["patient_id"].nunique()),
                    "items": int(len(frame)),
                    "images": int((table["pretrain_cohort"] == k).sum()),
                    "patient_ids": cohort.has_patient_ids(path),
                }
            )
        return found


def cohort_patients(cohorts: list[Path], data) -> set[str]:
    """The patient ids of the cohorts' rows that data.select keeps."""
    ids = set()
    for path in cohorts:
        frame = cohort.load(path)
        frame = cohort.select(frame, data.selection()) if data.select else frame
        ids |= set(frame["patient_id"].astype(str))
    return ids


def load_data(cohorts: list[Path], data, label: str | None, progress: bool = True) -> PretrainData:
    """The slices of `cohorts` under `data` (DataSettings); `label`: the class column (supervised), None for SimCLR.

    Supervised pretraining leaves out rows without a label (with a note); SimCLR takes every row.
    """
    from glioscope.samples import build_samples

    if data.kind != "slices":
        raise GlioscopeError("glioscope pretrain trains 2D backbones on slices (data.kind: slices)")
    if not cohorts:
        raise GlioscopeError("give at least one --cohort to pretrain on")
    frames, sets, notes = [], [], []
    for k, path in enumerate(cohorts):
        path = Path(path)
        frame = select_rows(cohort.load(path), data, path)  # a recipe's selection that empties it is named
        if label is not None:
            if label not in frame:
                raise InputError(path, f"cohort has no column {label!r} (task.label) to pretrain on")
            unlabelled = frame[label].astype(str) == ""
            if unlabelled.all():
                raise InputError(path, f"{unlabelled_words(len(frame), label, data)} (task.label) to pretrain on")
            if unlabelled.any():
                notes.append(f"{path.name}: {int(unlabelled.sum())} row(s) without {label!r} left out")
            frame = frame[~unlabelled].reset_index(drop=True)
            frame["label"] = frame[label]
        samples = build_samples(frame, data, data.cache_dir(), progress)
        notes += [f"{path.name}: {n}" for n in samples.notes]
        if samples.skipped:
            notes.append(
                f"{path.name}: {len(samples.skipped)} item(s) could not be decoded and were left out "
                f"(e.g. {samples.skipped[0].path}: {samples.skipped[0].reason})"
            )
        table = samples.table.copy()
        table["pretrain_cohort"] = k
        if len(cohorts) > 1:  # sample ids stay unique; patient ids stay as given, for the leak checks
            for column in ("item_id", "slice_id"):
                table[column] = f"{path.name}:" + table[column].astype(str)
        frames.append((path, frame))
        sets.append(dataclasses.replace(samples, table=table))
    samples = _join(sets)
    classes = sorted({str(v) for v in samples.table["label"]}) if label is not None else []
    if label is not None and len(classes) < 2:
        raise GlioscopeError(f"supervised pretraining needs at least two classes; the cohorts have {classes}")
    return PretrainData(frames, samples, classes, notes)


def _join(sets: list):
    if len(sets) == 1:
        return sets[0]
    shapes = {s.images.shape[1:] for s in sets}
    if len(shapes) > 1:
        raise GlioscopeError(
            f"the cohorts' slices differ in shape {sorted(shapes)}: give data.slices settings "
            "(size, channels) that make them alike"
        )
    return dataclasses.replace(
        sets[0],
        images=np.concatenate([s.images for s in sets]),
        table=pd.concat([s.table for s in sets], ignore_index=True),
        skipped=[x for s in sets for x in s.skipped],
        notes=[n for s in sets for n in s.notes],
    )


def _summary(path: Path) -> dict:
    import json

    file = Path(path) / "summary.json"
    try:
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    except (OSError, ValueError):
        return {}
