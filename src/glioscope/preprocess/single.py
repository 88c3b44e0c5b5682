"""slices_from_file: the slices of one new study (DICOM folder or file, NIfTI file, image) for `predict`."""

from __future__ import annotations

from pathlib import Path

from glioscope import cohort
from glioscope.errors import InputError
from glioscope.io import dicom, images, nifti
from glioscope.io.files import walk_files
from glioscope.io.sequences import classify_file_name, patient_from_file_name
from glioscope.io.series import group_series
from glioscope.preprocess.build import build_slices
from glioscope.preprocess.settings import SliceSettings
from glioscope.preprocess.slice_set import SliceSet


def slices_from_file(
    path: Path,
    settings: SliceSettings,
    mask_path: Path | None = None,
    select: dict[str, list[str]] | None = None,
) -> SliceSet:
    """Slices of a DICOM series folder (or study: every series), a NIfTI volume or a 2D image.

    The patient id is the DICOM PatientID, else the file (or folder) name without suffix.
    `mask_path` gives a tumour mask (NIfTI or image) for roi_crop and "representative";
    `select` keeps rows as `glioscope.cohort.select` does, e.g. {"plane": ["sagittal"]}.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(path, "does not exist")
    if path.is_file() and nifti.is_nifti(path):
        rows, skipped = _nifti_row(path), []
    elif path.is_file() and images.is_image(path):
        rows, skipped = _image_row(path), []
    else:
        rows, skipped = dicom_rows(path)
    if mask_path is not None:
        for row in rows:
            row["mask_path"] = str(Path(mask_path).expanduser())
    frame = cohort.to_frame(rows)
    if select:
        frame = cohort.select(frame, select)
        if frame.empty:
            raise InputError(path, f"no series matches {select}")
    result = build_slices(frame, settings, cache_dir=None, workers=1, progress=False)
    result.skipped[:0] = skipped
    return result


def _nifti_row(path: Path) -> list[dict]:
    info = nifti.check_volume(path, check_data=False)
    if isinstance(info, cohort.Skip):
        raise InputError(path, info.reason)
    _, sequence, _ = classify_file_name(path.name)
    x, y, z = info["shape"]
    stem = patient_from_file_name(path.name)  # as ingest names the patient: IXI<nnn>, a BraTS case id ...
    return [
        {
            **{"patient_id": stem, "study_id": stem, "kind": "volume", "sequence": sequence, "path": str(path)},
            **{"plane": info["plane"], "n_slices": z, "rows": y, "cols": x, "source_format": "nifti"},
        }
    ]


def _image_row(path: Path) -> list[dict]:
    header = images.read_image_header(path)
    if isinstance(header, cohort.Skip):
        raise InputError(path, header.reason)
    size = {"rows": header["rows"], "cols": header["cols"]}
    return [{"patient_id": path.stem, "kind": "image", "path": str(path), **size, "source_format": "image"}]


def dicom_rows(path: Path, expected: str = "a DICOM series folder, a NIfTI file or an image",
               ) -> tuple[list[dict], list[cohort.Skip]]:
    """Cohort rows of the DICOM series under `path` (one file or a folder), with the files skipped."""
    headers, skipped, _ = dicom.scan_headers(walk_files(path), workers=1, progress=False)
    for header in headers:
        header["patient_id"] = header["patient_id"] or (path.stem if path.is_file() else path.name)
    rows, series_skips, _ = group_series(headers)
    skipped += series_skips
    if not rows:
        hint = f"; e.g. {skipped[0].path}: {skipped[0].reason}" if skipped else ""
        raise InputError(path, f"expected {expected}; found no DICOM series{hint}")
    for row in rows:
        row["source_format"] = "dicom"
    return rows, skipped
