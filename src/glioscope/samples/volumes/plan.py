"""Cohort rows to volume tasks: one per patient and study, its channels chosen among the study's rows."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from glioscope.cohort import Skip
from glioscope.samples.volumes.settings import VolumeSettings
from glioscope.samples.volumes.volume import ChannelSource, VolumeTask

_VOLUME_KINDS = ("volume", "series")
# Rough costs on one core, for the pool decision: per source voxel (gzip, resampling) and per registration.
_SECONDS_PER_VOXEL = 4e-8
_SECONDS_PER_REGISTRATION = 4.0


@dataclass
class Planned:
    """A volume task and the facts its table row carries."""

    task: VolumeTask
    meta: dict


def plan_volumes(frame: pd.DataFrame, settings: VolumeSettings) -> tuple[list[Planned], list[Skip], list[str]]:
    """(planned volumes, skipped studies, notes) for the rows of a cohort table, in table order."""
    rows = frame.to_dict("records")
    usable = [r for r in rows if r["kind"] in _VOLUME_KINDS]
    notes = []
    if len(usable) < len(rows):
        notes.append(
            f"{len(rows) - len(usable)} 2D image row(s) not used: 3D volumes come from NIfTI volumes or DICOM series"
        )
    studies: dict[tuple[str, str], list[dict]] = {}
    for row in usable:
        studies.setdefault((str(row["patient_id"]), str(row.get("study_id", "") or "")), []).append(row)
    per_patient = pd.Series([patient for patient, _ in studies]).value_counts().to_dict() if studies else {}
    planned, skipped, several, unknown = [], [], [], []
    for (patient, study), group in studies.items():
        chosen, problem = _channels(group, settings, several, unknown)
        if problem:
            where = f"patient {patient}" + (f", study {study}" if study else "")
            skipped.append(Skip(str(group[0]["path"]), f"{where} {problem}"))
            continue
        volume_id = f"{patient}/{study}" if per_patient[patient] > 1 and study else patient
        planned.append(_planned(volume_id, chosen, settings))
    if several:
        notes.append(
            f"{len(several)} study(ies) with several rows of a channel's sequence: the largest was used ({', '.join(several[:5])})"
        )
    if unknown:
        notes.append(
            f"{len(unknown)} volume(s) of unknown sequence used as {settings.channels[0]}: {', '.join(unknown[:5])}"
        )
    return planned, skipped, notes


def _channels(group: list[dict], settings: VolumeSettings, several: list, unknown: list) -> tuple[list, str]:
    """[(row, wanted sequence)] per channel, or a problem saying which sequence is missing."""
    by_sequence: dict[str, list[dict]] = {}
    for row in group:
        by_sequence.setdefault(str(row.get("sequence", "")), []).append(row)
    chosen = []
    for wanted in settings.channels:
        candidates = next((by_sequence[s] for s in [wanted, *settings.substitutes(wanted)] if s in by_sequence), None)
        if candidates is None and len(settings.channels) == 1 and len(group) == 1 and by_sequence.get("unknown"):
            candidates = by_sequence["unknown"]  # e.g. a manifest's NIfTI: the one volume there is
            unknown.append(str(group[0]["patient_id"]))
        if candidates is None:
            substitutes = settings.substitutes(wanted)
            alternative = f" (nor {' or '.join(substitutes)})" if substitutes else ""
            present = ", ".join(sorted(by_sequence)) or "nothing"
            return [], f"has no {wanted}{alternative} for channel {len(chosen) + 1}; it has {present}"
        if len(candidates) > 1:
            several.append(str(group[0]["patient_id"]))
        chosen.append((max(candidates, key=_voxels), wanted))
    return chosen, ""


def _voxels(row: dict) -> int:
    return int(row.get("n_slices", 0) or 0) * int(row.get("rows", 0) or 0) * int(row.get("cols", 0) or 0)


def _planned(volume_id: str, chosen: list[tuple[dict, str]], settings: VolumeSettings) -> Planned:
    rows = [row for row, _ in chosen]
    first = rows[0]
    sources = tuple(
        ChannelSource(str(r["kind"]), str(r["path"]), str(r.get("files", "") or ""), str(r.get("sequence", "")))
        for r in rows
    )
    source_format = str(first.get("source_format", "") or "")
    substituted = [f"{wanted}<-{row['sequence']}" for row, wanted in chosen if row["sequence"] != wanted]
    meta = {
        "volume_id": volume_id,
        **{k: str(first.get(k, "") or "") for k in ("patient_id", "study_id", "label", "grade", "mgmt")},
        "item_ids": "+".join(str(r["item_id"]) for r in rows),
        "sequences": "+".join(str(r["sequence"]) for r in rows),
        "fallback": ",".join(substituted),
        "source_paths": " + ".join(str(r["path"]) for r in rows),
        "source_format": source_format,
        "source_split": str(first.get("source_split", "") or ""),
        "mask_path": next((str(r["mask_path"]) for r in rows if r.get("mask_path")), ""),
    }
    registers = settings.skull_strip not in ("auto", "none") or (
        settings.skull_strip == "auto" and source_format != "brats"
    )
    seconds = sum(_voxels(r) for r in rows) * _SECONDS_PER_VOXEL + 0.3 + _SECONDS_PER_REGISTRATION * registers
    return Planned(VolumeTask(volume_id, sources, settings, source_format, seconds=seconds), meta)
