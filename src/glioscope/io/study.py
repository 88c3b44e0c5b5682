"""One new study as cohort rows: what `predict`, batch prediction and the web app read from a path a user gives.

    study = read_study(path, mask=None)
    study.frame      # cohort rows (glioscope.cohort's columns), unlabelled
    study.skipped    # files of the study that could not be used, with the reason

A path is a NIfTI file, a 2D image, a folder of one study's NIfTI files (a BraTS case: its
tumour segmentation, when it has one, becomes every row's mask), or a DICOM series or study
(one file or a folder: every series). The patient id is the DICOM PatientID, else the file
(or folder) name, as `glioscope ingest` names it. How the rows become a model's samples is the
recipe's business (glioscope.samples.samples_of_study).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from glioscope import cohort
from glioscope.errors import InputError
from glioscope.io import dicom, images, nifti
from glioscope.io.files import SPECIAL, is_special, walk_files
from glioscope.io.sequences import classify_file_name, patient_from_file_name
from glioscope.io.series import group_series

EXPECTED = "a DICOM series or study, a NIfTI file, a folder of one study's NIfTI files, or a 2D image"


@dataclass
class Study:
    """The cohort rows of one study given by path, and the files skipped while reading it."""

    path: Path
    frame: pd.DataFrame
    skipped: list[cohort.Skip] = field(default_factory=list)


def read_study(path: str | Path, mask: str | Path | None = None) -> Study:
    """The rows of the study at `path`; `mask` (a NIfTI or image tumour mask) becomes every row's mask_path."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(path, "does not exist")
    if is_special(path):
        raise InputError(path, f"is {SPECIAL}")
    skipped: list[cohort.Skip] = []
    if path.is_file() and nifti.is_nifti(path):
        rows = [nifti_row(path, patient_from_file_name(path.name))]
    elif path.is_file() and images.is_image(path):
        rows = [_image_row(path)]
    else:
        rows = _nifti_folder(path) if path.is_dir() else []
        if not rows:
            rows, skipped = dicom_rows(path)
    if mask is not None:
        for row in rows:
            row["mask_path"] = str(Path(mask).expanduser())
    return Study(path, cohort.to_frame(rows), skipped)


def nifti_row(path: Path, patient: str) -> dict:
    """The cohort row of one NIfTI volume of `patient` (its sequence from the file name; header read, no voxels)."""
    info = nifti.check_volume(path, check_data=False)
    if isinstance(info, cohort.Skip):
        raise InputError(path, info.reason)
    role, sequence, _ = classify_file_name(path.name)
    x, y, z = info["shape"]
    return {
        "patient_id": patient,
        "study_id": patient,
        "kind": "volume",
        "path": str(path),
        "sequence": sequence if role == "image" else "unknown",
        "plane": info["plane"],
        "n_slices": z,
        "rows": y,
        "cols": x,
        "source_format": "nifti",
    }


def _nifti_folder(path: Path) -> list[dict]:
    """A folder of one study's NIfTI volumes (not its masks), the tumour segmentation as their mask when there is one."""
    files = [p for p in walk_files(path) if nifti.is_nifti(p)]
    volumes = [p for p in files if classify_file_name(p.name)[0] in ("image", "unknown")]
    masks = [p for p in files if classify_file_name(p.name)[0] == "mask"]
    rows = [nifti_row(p, path.name) for p in volumes]
    if len(masks) == 1:
        for row in rows:
            row["mask_path"] = str(masks[0])
    return rows


def _image_row(path: Path) -> dict:
    header = images.read_image_header(path)
    if isinstance(header, cohort.Skip):
        raise InputError(path, header.reason)
    return {
        "patient_id": path.stem,
        "kind": "image",
        "path": str(path),
        "rows": header["rows"],
        "cols": header["cols"],
        "source_format": "image",
    }


def dicom_rows(path: Path) -> tuple[list[dict], list[cohort.Skip]]:
    """Cohort rows of the DICOM series under `path` (one file or a folder), with the files skipped."""
    headers, skipped, _ = dicom.scan_headers(walk_files(path), workers=1, progress=False)
    for header in headers:
        header["patient_id"] = header["patient_id"] or (path.stem if path.is_file() else path.name)
    rows, series_skips, _ = group_series(headers)
    skipped += series_skips
    if not rows:
        hint = f"; e.g. {skipped[0].path}: {skipped[0].reason}" if skipped else ""
        raise InputError(path, f"expected {EXPECTED}; found no DICOM series{hint}")
    for row in rows:
        row["source_format"] = "dicom"
    return rows, skipped
