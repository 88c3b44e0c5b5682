"""Turn DICOM headers into cohort rows: one row per series, slices sorted along the normal.

A series whose files together would decode to more than the input limits (glioscope.io.limits) is
skipped with the reason, as each file over them already is by `dicom.read_header`.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable

import numpy as np

from glioscope.cohort import Skip
from glioscope.io import dicom, geometry
from glioscope.io.limits import REFUSED, InputLimits, current
from glioscope.io.sequences import dicom_sequence

# ImageOrientationPatient values that differ by less than this are the same orientation.
_ORIENTATION_TOLERANCE = 1e-3
_NO_GEOMETRY = "no slice geometry (ImagePositionPatient/ImageOrientationPatient); slices sorted by InstanceNumber"


def by_series_uid(header: dict) -> str:
    """Group key of the generic reader: the SeriesInstanceUID."""
    return header["series_uid"]


def group_series(
    headers: list[dict],
    key: Callable[[dict], str] = by_series_uid,
    modalities: tuple[str, ...] | None = dicom.MR,
    workers: int | None = 1,
    progress: bool = False,
) -> tuple[list[dict], list[Skip], list[str]]:
    """Rows of kind 'series' from file headers: (rows, skipped, notes).

    A series is kept when its modality is one of `modalities` (None: any) and one of its
    slices decodes (its middle one, read in full: a missing decoder or damaged frames skip
    the series here, with the reason, rather than later in training).
    """
    groups: dict[str, list[dict]] = defaultdict(list)
    skips = []
    for header in _without_copies(headers, skips):
        groups[key(header)].append(header)
    rows = []
    issues: dict[str, list[str]] = defaultdict(list)
    limits = current()
    for group_key in sorted(groups):
        problem = dicom.modality_problem(groups[group_key][0], modalities)
        if problem:
            uid = groups[group_key][0]["series_uid"] or _common_folder(groups[group_key])
            skips.append(Skip(_common_folder(groups[group_key]), f"series {uid}: {problem}"))
            continue
        row = _series_row(groups[group_key], skips, issues, limits)
        if row is not None:
            rows.append(row)
    kept = []
    for row, problem in zip(rows, dicom.undecodable(rows, workers, progress)):
        if problem:
            skips.append(Skip(row["path"], f"series {row['series_id'] or row['path']}: {problem}"))
        else:
            kept.append(row)
    kept.sort(key=lambda r: (r["patient_id"], r["study_id"], r["path"]))
    return kept, skips, _notes(issues)


def _without_copies(headers: list[dict], skips: list[Skip]) -> list[dict]:
    """Drop files whose SOPInstanceUID an earlier file (by path) already has: copies would double slices."""
    first: dict[str, str] = {}
    kept = []
    for header in sorted(headers, key=lambda h: h["path"]):
        uid = header["instance_uid"]
        if uid and uid in first:
            skips.append(Skip(header["path"], f"same SOPInstanceUID as {first[uid]} (a copy)"))
            continue
        if uid:
            first[uid] = header["path"]
        kept.append(header)
    return kept


def _series_row(headers: list[dict], skips: list[Skip], issues: dict, limits: InputLimits) -> dict | None:
    folder = _common_folder(headers)
    uid = headers[0]["series_uid"] or folder
    headers = _usable_slices(headers, folder, uid, skips)
    if not headers:
        return None
    what = f"{len(headers)} files of {headers[0]['rows']} x {headers[0]['cols']} pixels"
    too_large = limits.problem(what, sum(h["values"] for h in headers), max(h["value_bytes"] for h in headers))
    if too_large:
        skips.append(Skip(folder, f"series {uid}: {REFUSED}: {too_large}"))
        return None
    ordered, positions = _sort_slices(headers, uid, issues)
    first = ordered[0]
    description = " ".join(s for s in (first["series_description"], first["protocol_name"]) if s)
    plane = geometry.plane_from_orientation(first["orientation"])
    if plane == "unknown":
        plane = geometry.plane_from_text(description)
    spacing_z = geometry.slice_spacing(positions) if positions is not None else None
    spacing_z = spacing_z or first["spacing_between_slices"] or first["slice_thickness"]
    dy, dx = first["pixel_spacing"] or (None, None)
    files = [os.path.relpath(h["path"], folder) for h in ordered]
    timing = (first["inversion_time"], first["repetition_time"], first["echo_time"])
    return {
        "patient_id": first["patient_id"],
        "study_id": first["study_uid"],
        "series_id": first["series_uid"],
        "kind": "series",
        "sequence": dicom_sequence(description, first["contrast_agent"], *timing),
        "plane": plane,
        "path": folder,
        "files": json.dumps(files),
        "n_slices": first["frames"] if len(files) == 1 else len(files),
        "rows": first["rows"],
        "cols": first["cols"],
        "spacing": geometry.format_spacing(dx, dy, spacing_z),
        "modality": first["modality"],
        "transfer_syntax": first["transfer_syntax"],
        "institution": first.get("institution", ""),
        "scanner": first.get("scanner", ""),
        "series_description": first["series_description"],
    }


def _usable_slices(headers: list[dict], folder: str, uid: str, skips: list[Skip]) -> list[dict]:
    """The slices that can form one stack; [] (with a skip saying why) when none can."""
    if not headers[0]["patient_id"]:
        skips.append(Skip(folder, f"series {uid}: no PatientID in its DICOM headers; name the patient in a manifest"))
        return []
    headers = _majority_size(headers, uid, skips)
    orientations = [h["orientation"] for h in headers]
    if headers and all(o is not None for o in orientations) and _differ(orientations):
        # Localizers hold three planes in one series; there is no single stack to sort.
        skips.append(Skip(folder, f"series {uid}: slices have different orientations (a localizer or merged series)"))
        return []
    return headers


def _common_folder(headers: list[dict]) -> str:
    return os.path.commonpath([os.path.dirname(h["path"]) for h in headers])


def _majority_size(headers: list[dict], uid: str, skips: list[Skip]) -> list[dict]:
    """Keep the slices of the size most of the series has; skip the odd ones (or all, without a majority)."""
    sizes = Counter((h["rows"], h["cols"]) for h in headers)
    if len(sizes) == 1:
        return headers
    (size, count), *_ = sizes.most_common()
    listing = ", ".join(f"{n} of {r}x{c}" for (r, c), n in sizes.most_common())
    if count * 2 <= len(headers):
        skips.append(Skip(_common_folder(headers), f"series {uid}: slices differ in size ({listing}) with no majority"))
        return []
    for header in headers:
        if (header["rows"], header["cols"]) != size:
            odd = f"{header['rows']}x{header['cols']}"
            skips.append(
                Skip(header["path"], f"slice is {odd} but series {uid} is mostly {size[0]}x{size[1]} ({listing})")
            )
    return [h for h in headers if (h["rows"], h["cols"]) == size]


def _differ(orientations: list[list[float]]) -> bool:
    values = np.asarray(orientations, float)
    return bool(np.abs(values - values[0]).max() > _ORIENTATION_TOLERANCE)


def _sort_slices(headers: list[dict], uid: str, issues: dict) -> tuple[list[dict], np.ndarray | None]:
    """Slices along the normal (InstanceNumber breaks ties); by InstanceNumber without geometry."""

    def instance(h):
        return h["instance_number"] if h["instance_number"] is not None else float("inf")

    if len(headers) > 1 and all(h["orientation"] and h["position"] for h in headers):
        try:
            along = geometry.slice_positions(headers[0]["orientation"], [h["position"] for h in headers])
        except ValueError:
            along = None
        if along is not None:
            order = sorted(range(len(headers)), key=lambda i: (along[i], instance(headers[i]), headers[i]["path"]))
            if len(set(np.round(along, 3))) < len(headers):
                issues["several slices at the same position (echoes or time points in one series?)"].append(uid)
            return [headers[i] for i in order], along[order]
    if len(headers) > 1:
        issues[_NO_GEOMETRY].append(uid)
    return sorted(headers, key=lambda h: (instance(h), h["path"])), None


def _notes(issues: dict[str, list[str]]) -> list[str]:
    notes = []
    for issue, uids in issues.items():
        examples = ", ".join(uids[:3]) + (" ..." if len(uids) > 3 else "")
        notes.append(f"{len(uids)} DICOM series with {issue}: {examples}")
    return notes
