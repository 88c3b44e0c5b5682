"""RSNA-MICCAI 2021: train/<5-digit id>/{FLAIR,T1w,T1wCE,T2w}/Image-<n>.dcm and train_labels.csv."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

from glioscope.cohort import ReaderResult, Skip
from glioscope.io import dicom, labels
from glioscope.io.files import walk_files
from glioscope.io.formats.common import Census, find_nearby
from glioscope.io.options import ReadOptions
from glioscope.io.series import group_series

NAME = "rsna-miccai"
LABELS_CSV = "train_labels.csv"
SEQUENCE_FOLDERS = {"FLAIR": "FLAIR", "T1w": "T1", "T1wCE": "T1c", "T2w": "T2"}
_PATIENT = re.compile(r"^\d{5}$")


def detect(source: Path, found: Census) -> str | None:
    """A reason when `source` is an RSNA-MICCAI folder (or its train/ folder)."""
    if _patient_folders(source):
        return "<5-digit id>/{FLAIR,T1w,T1wCE,T2w}/ folders"
    has_labels = (source / LABELS_CSV).is_file()
    splits = [name for name in ("train", "test") if _patient_folders(source / name)]
    if splits:
        what = f"{LABELS_CSV} and " if has_labels else ""
        return f"{what}{'/'.join(splits)}/<5-digit id>/ folders"
    return None


def _patient_folders(folder: Path, sample: int = 5) -> list[Path]:
    """Up to `sample` child folders that look like RSNA patients (5 digits, holding a sequence folder)."""
    if not folder.is_dir():
        return []
    hits = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and _PATIENT.match(child.name) and any((child / s).is_dir() for s in SEQUENCE_FOLDERS):
            hits.append(child)
            if len(hits) >= sample:
                break
    return hits


def read(source: Path, options: ReadOptions) -> ReaderResult:
    """One row per <patient>/<sequence> folder; label and mgmt from train_labels.csv."""
    roots = _roots(source)
    headers, skipped, sidecars = [], [], []
    for root, split in roots:
        found, skips, ignored = dicom.scan_headers(walk_files(root), options.workers, options.progress)
        for header in found:
            parts = Path(header["path"]).relative_to(root).parts
            if len(parts) != 3 or not _PATIENT.match(parts[0]):
                skips.append(Skip(header["path"], "not in the <5-digit id>/<sequence>/ layout of RSNA-MICCAI"))
                continue
            header["patient_id"], header["split"] = parts[0], split
            headers.append(header)
        skipped += skips
        sidecars += ignored
    rows, series_skips, notes = group_series(
        headers,
        key=lambda h: os.path.dirname(h["path"]),
        modalities=options.modalities,
        workers=options.workers,
        progress=options.progress,
    )
    split_by_folder = {os.path.dirname(h["path"]): h["split"] for h in headers}
    for row in rows:
        folder = Path(row["path"])
        row["sequence"] = SEQUENCE_FOLDERS.get(folder.name, row["sequence"])
        row["source_format"], row["source_split"] = NAME, split_by_folder.get(row["path"], "")
    result = ReaderResult(rows=rows, skipped=skipped + series_skips, notes=notes)
    result.notes += _missing_sequences(rows)
    if options.labels is None:
        _join_train_labels(source, result, options)
    return result


def _roots(source: Path) -> list[tuple[Path, str]]:
    """(folder of patient folders, split) pairs: source itself, or its train/ and test/."""
    if _patient_folders(source):
        return [(source, source.name if source.name.lower() in ("train", "test") else "")]
    return [(source / name, name) for name in ("train", "test") if _patient_folders(source / name)]


def _join_train_labels(source: Path, result: ReaderResult, options: ReadOptions) -> None:
    csv = find_nearby(source, LABELS_CSV, up=1)
    if csv is None:
        result.notes.append(f"no {LABELS_CSV} found beside the data: rows are unlabelled (pass --labels)")
        return
    table = labels.read_table(csv)
    id_col = labels.find_column(table, options.id_column or "BraTS21ID", (), csv, "patient id")
    label_col = labels.find_column(table, options.label_column or "MGMT_value", (), csv, "label")
    values = {labels.match_key(i): labels.normalise_value(v) for i, v in zip(table[id_col], table[label_col])}
    unlabelled = set()
    for row in result.rows:
        value = values.get(labels.match_key(row["patient_id"]), "")
        row["label"] = value
        row["mgmt"] = value if label_col == "MGMT_value" else ""
        if not value and row["source_split"] != "test":
            unlabelled.add(row["patient_id"])
    result.notes.append(f"labels from {csv} (column {label_col!r})")
    if unlabelled:
        result.notes.append(f"{len(unlabelled)} patient(s) not in {csv.name}: {', '.join(sorted(unlabelled)[:10])}")


def _missing_sequences(rows: list[dict]) -> list[str]:
    present: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        present[row["patient_id"]].add(Path(row["path"]).name)
    missing = {p: sorted(set(SEQUENCE_FOLDERS) - s) for p, s in present.items() if set(SEQUENCE_FOLDERS) - s}
    if not missing:
        return []
    listing = "; ".join(f"{p}: {', '.join(m)}" for p, m in sorted(missing.items())[:20])
    more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
    return [f"{len(missing)} patient(s) lack sequences ({listing}{more})"]
