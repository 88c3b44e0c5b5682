"""A CSV manifest (path, patient_id, label[, mask_path, sequence, plane, ...]): the way in for anything else."""

from __future__ import annotations

from pathlib import Path

from glioscope.cohort import ReaderResult, Skip
from glioscope.errors import InputError
from glioscope.io import dicom, labels
from glioscope.io.files import SPECIAL, is_special, walk_files
from glioscope.io.formats.common import Census
from glioscope.io.images import is_image, read_image_headers
from glioscope.io.nifti import check_volumes, is_nifti
from glioscope.io.options import ReadOptions
from glioscope.io.sequences import classify_file_name, normalise_sequence
from glioscope.io.series import group_series

NAME = "manifest"
REQUIRED = ("path", "patient_id", "label")
_ALIASES = {"mask": "mask_path"}
_KNOWN = {*REQUIRED, "mask_path", "sequence", "plane", "grade", "mgmt", "study_id", "series_id", "item_id"}
# Columns a reader fills from the file itself; a manifest value would be overwritten or meaningless.
_FROM_FILE = {"item_id", "kind", "files", "n_slices", "rows", "cols", "spacing", "source_format"}


def detect(source: Path, found: Census) -> str | None:
    """A reason when the source is a CSV file."""
    return "a CSV file: a manifest of images" if source.is_file() and source.suffix.lower() == ".csv" else None


def read(source: Path, options: ReadOptions) -> ReaderResult:
    """One row per manifest line (a DICOM folder may give several series); missing files are skipped."""
    table = labels.read_table(source).rename(columns=_column_name)
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise InputError(
            source,
            f"manifest lacks column(s) {', '.join(missing)}; it needs {', '.join(REQUIRED)} "
            f"and may have mask_path, sequence, plane (columns are {', '.join(table.columns)})",
        )
    result = ReaderResult()
    entries = []
    for number, record in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        entry = _entry(source, number, record, result)
        if entry is not None:
            entries.append(entry)
    volumes, skips = check_volumes(
        [e["path"] for e in entries if e["kind"] == "volume"], options.check_data, options.workers, options.progress
    )
    images, image_skips = read_image_headers(
        [e["path"] for e in entries if e["kind"] == "image"], options.workers, options.progress
    )
    result.skipped += skips + image_skips
    for entry in entries:
        result.rows += _rows(entry, volumes, images, options, result)
    return result


def _column_name(name: str) -> str:
    """Known columns in any case ('Path', 'MASK'); others as written."""
    lower = name.lower()
    return _ALIASES.get(lower) or (lower if lower in _KNOWN else name)


def _entry(csv: Path, number: int, record: dict, result: ReaderResult) -> dict | None:
    if not record["path"]:
        result.skipped.append(Skip(f"{csv}:{number}", "manifest line has an empty path"))
        return None
    path = _resolve(csv, record["path"])
    if not path.exists():
        result.skipped.append(Skip(str(path), f"listed on line {number} of {csv.name} but not found"))
        return None
    if is_special(path):
        result.skipped.append(Skip(str(path), f"listed on line {number} of {csv.name}: {SPECIAL}"))
        return None
    if not record["patient_id"]:
        result.skipped.append(Skip(str(path), f"line {number} of {csv.name} has no patient_id"))
        return None
    kind = _kind(path)
    if kind is None:
        result.skipped.append(
            Skip(str(path), "unknown file type (expected NIfTI, PNG/JPEG/TIFF/BMP or a DICOM folder)")
        )
        return None
    mask = record.get("mask_path", "")
    if mask:
        mask_path = _resolve(csv, mask)
        if not mask_path.is_file():
            result.skipped.append(
                Skip(str(mask_path), f"mask on line {number} of {csv.name} not found; image kept without it")
            )
        mask = str(mask_path) if mask_path.is_file() else ""
    extra = {k: v for k, v in record.items() if k not in _FROM_FILE}
    return {**extra, "path": path, "kind": kind, "mask_path": mask}


def _resolve(csv: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return (path if path.is_absolute() else csv.parent / path).resolve()


def _kind(path: Path) -> str | None:
    if path.is_dir() or path.suffix.lower() in (".dcm", ".ima") or (path.is_file() and dicom.has_dicom_magic(path)):
        return "series"
    if is_nifti(path):
        return "volume"
    if is_image(path):
        return "image"
    return None


def _rows(entry: dict, volumes: dict, images: dict, options: ReadOptions, result: ReaderResult) -> list[dict]:
    base = {k: v for k, v in entry.items() if k != "kind"}
    base["source_format"] = NAME
    base["label"] = labels.normalise_value(base["label"])
    if base.get("grade"):
        base["grade"] = labels.normalise_grade(base["grade"])
    if entry["kind"] == "series":
        return _series_rows(entry, base, options, result)
    info = (volumes if entry["kind"] == "volume" else images).get(str(entry["path"]))
    if info is None:
        return []  # the header check skipped it, with the reason
    row = {**base, "kind": entry["kind"], "path": info["path"]}
    if entry["kind"] == "volume":
        x, y, z = info["shape"]
        row.update(n_slices=z, rows=y, cols=x, spacing=",".join(f"{s:.6g}" for s in info["spacing"]))
        plane, sequence = info["plane"], classify_file_name(Path(info["path"]).name)[1]
    else:
        row.update(rows=info["rows"], cols=info["cols"])
        plane, sequence = "unknown", "unknown"
    row["plane"] = (row.get("plane") or plane).lower()
    row["sequence"] = normalise_sequence(row.get("sequence") or sequence)
    return [row]


def _series_rows(entry: dict, base: dict, options: ReadOptions, result: ReaderResult) -> list[dict]:
    headers, skips, _ = dicom.scan_headers(walk_files(entry["path"]), options.workers, progress=False)
    result.skipped += skips
    for header in headers:
        header["patient_id"] = base["patient_id"]  # the manifest names the patient, whatever the tags say
    rows, series_skips, notes = group_series(headers, modalities=options.modalities)
    result.skipped += series_skips
    result.notes += notes
    if not rows and not skips and not series_skips:
        result.skipped.append(Skip(str(entry["path"]), "no DICOM files in this folder"))
    out = []
    for row in rows:
        merged = dict(row)
        for key, value in base.items():
            if key not in ("path", "sequence", "plane") and (value != "" or key not in merged):
                merged[key] = value
        merged["sequence"] = normalise_sequence(base.get("sequence") or row["sequence"])
        merged["plane"] = (base.get("plane") or row["plane"]).lower()
        out.append(merged)
    return out
