"""Generic DICOM trees (TCIA, PACS exports): one row per series, labels from a clinical CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from glioscope.cohort import ReaderResult
from glioscope.errors import InputError
from glioscope.io import dicom, labels
from glioscope.io.files import walk_files
from glioscope.io.formats.common import Census, find_nearby
from glioscope.io.options import ReadOptions
from glioscope.io.series import group_series

NAME = "dicom"
CLINICAL_CSV = "clinical.csv"


def detect(source: Path, found: Census) -> str | None:
    """A reason when the tree holds DICOM files (and nothing else that is an image)."""
    hits = found.dicom
    if hits and not found.nifti and not found.images:
        return f"DICOM files (e.g. {hits[0].relative_to(source)})"
    return None


def read(source: Path, options: ReadOptions) -> ReaderResult:
    """Scan every file under `source`, group DICOM slices by SeriesInstanceUID."""
    headers, skipped, sidecars = dicom.scan_headers(walk_files(source), options.workers, options.progress)
    rows, series_skips, notes = group_series(
        headers, modalities=options.modalities, workers=options.workers, progress=options.progress
    )
    for row in rows:
        row["source_format"] = NAME
    result = ReaderResult(rows=rows, skipped=skipped + series_skips, notes=notes)
    if sidecars:
        suffixes = sorted({p.suffix.lower() or p.name for p in sidecars})
        result.notes.append(f"ignored {len(sidecars)} non-image file(s) beside the DICOM ({', '.join(suffixes[:8])})")
    if options.labels is None and rows:
        _join_clinical_csv(source, result, options)
    return result


def _join_clinical_csv(source: Path, result: ReaderResult, options: ReadOptions) -> None:
    """Use a clinical.csv beside the tree (or one folder up) when no --labels was given."""
    csv = find_nearby(source, CLINICAL_CSV, up=1)
    if csv is None:
        return
    options.say(f"labels: using {csv} (found beside the DICOM tree; pass --labels to choose another)")
    frame = pd.DataFrame(result.rows)
    try:
        frame, notes = labels.join_labels(frame, csv, options.id_column, options.label_column, required=False)
    except InputError as exc:  # a file we found ourselves must not stop the ingest
        result.notes.append(f"{exc}; labels not used")
        return
    result.rows = frame.to_dict("records")
    result.notes.extend(notes)
