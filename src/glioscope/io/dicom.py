"""DICOM files: find them, read their headers in parallel, check that a series is MR and decodes, load a series.

A header is a plain dict (picklable, cheap to send back from a worker); a file
that cannot be used becomes a `Skip` with the reason, never an exception. Headers are
read without pixels; `undecodable` then decodes one slice of each series, so that a
series glioscope keeps is one it can read (compressed transfer syntaxes decode with
pylibjpeg's plugins: JPEG baseline, extended and lossless, JPEG-LS, JPEG 2000; RLE and
deflated files with pydicom itself). A file whose Rows x Columns x NumberOfFrames x SamplesPerPixel
promise more than the input limits (glioscope.io.limits) is skipped from its header, before its pixel
data is read or decoded, and `load_series` refuses a series that would add up to more.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from glioscope.cohort import Skip, series_files
from glioscope.errors import InputError
from glioscope.io import enhanced, geometry
from glioscope.io.files import is_sidecar
from glioscope.io.limits import REFUSED, InputLimits, current
from glioscope.io.parallel import map_files

PIXEL_DATA = 0x7FE00010
DEFLATED = "1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian
_HALF_CHROMA = ("YBR_FULL_422", "YBR_PARTIAL_422")
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # a DICOMDIR
_OTHER_PIXEL_TAGS = (0x7FE00008, 0x7FE00009)  # FloatPixelData, DoubleFloatPixelData
# Values larger than this are skipped over, not read: pixel data stays on disk.
_DEFER_SIZE = 4096

MR = ("MR",)  # the modalities glioscope grades
# SOP classes of MR images; an MR "secondary capture" (a screenshot, a report page) is not one.
MR_IMAGE_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.4": "Legacy Converted Enhanced MR Image Storage",
}

# Other formats: listed as skipped without a forced parse, which could wade through a large archive.
NOT_DICOM_SUFFIXES = {".gz", ".nii", ".zip", ".tar", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".mha", ".nrrd"}


def has_dicom_magic(path: Path) -> bool:
    """True when the file has the DICOM preamble ('DICM' at byte 128)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def read_header(path: str | Path, limits: InputLimits | None = None) -> dict | Skip:
    """The attributes the cohort needs from one file, or a Skip saying why it cannot be used (also when its pixels
    would be over `limits`, by default the environment's)."""
    path, limits = Path(path), limits or current()
    magic = has_dicom_magic(path)
    if not magic and path.suffix.lower() in NOT_DICOM_SUFFIXES:
        return Skip(str(path), f"not a DICOM file ({path.suffix.lower()})")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # pydicom warns about odd values; kept only to explain a failure
            dataset = pydicom.dcmread(path, defer_size=_DEFER_SIZE, force=not magic)
    except Exception as exc:  # noqa: BLE001 - any parser failure means this one file is unusable
        return Skip(str(path), _unreadable(magic, f"{type(exc).__name__}: {exc}"))
    if "SeriesInstanceUID" not in dataset and "Rows" not in dataset:
        if not magic:
            return Skip(str(path), "not a DICOM file")
        if "DirectoryRecordSequence" in dataset or _media_class(dataset) == MEDIA_DIRECTORY:
            return Skip(str(path), "a DICOMDIR (an index of other files), not an image")
        # pydicom returns what it parsed before the end of a cut file, sometimes nothing.
        detail = str(caught[-1].message) if caught else f"no image attributes in its {path.stat().st_size} bytes"
        return Skip(str(path), _unreadable(magic, detail))
    try:
        with warnings.catch_warnings(), _quiet_pydicom():
            warnings.simplefilter("ignore")  # odd values are read as they are, or the file is skipped below
            return _header_fields(path, dataset, limits)
    except Exception as exc:  # noqa: BLE001 - malformed values (bad DS/IS strings) in this file
        return Skip(str(path), f"DICOM header has an unreadable value ({type(exc).__name__}: {exc})")


def _media_class(ds) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("MediaStorageSOPClassUID", "") or "") if meta is not None else ""


def _unreadable(magic: bool, detail: str) -> str:
    what = "truncated or damaged DICOM" if magic else "not a DICOM file"
    return f"{what} ({detail[:200]})"


def _header_fields(path: Path, ds, limits: InputLimits) -> dict | Skip:
    pixel_problem = _size_problem(ds, limits) or _pixel_data_problem(path, ds)
    if pixel_problem:
        return Skip(str(path), pixel_problem)
    stack = enhanced.frames_of(ds) if enhanced.is_multiframe(ds) else None
    if isinstance(stack, str):
        return Skip(str(path), stack)
    fields = {
        "path": str(path),
        "modality": str(ds.get("Modality", "") or "").strip().upper(),
        "sop_class": str(ds.get("SOPClassUID", "") or ""),
        "transfer_syntax": _transfer_syntax(ds),
        "patient_id": str(ds.get("PatientID", "") or "").strip(),
        "study_uid": str(ds.get("StudyInstanceUID", "") or ""),
        "series_uid": str(ds.get("SeriesInstanceUID", "") or ""),
        "instance_uid": str(ds.get("SOPInstanceUID", "") or ""),
        "series_description": str(ds.get("SeriesDescription", "") or ""),
        "protocol_name": str(ds.get("ProtocolName", "") or ""),
        "institution": str(ds.get("InstitutionName", "") or "").strip(),  # the site, for glioscope.sites
        "scanner": str(ds.get("ManufacturerModelName", "") or "").strip(),
        "contrast_agent": str(ds.get("ContrastBolusAgent", "") or ""),
        "inversion_time": _number(ds.get("InversionTime")),
        "repetition_time": _number(ds.get("RepetitionTime")),
        "echo_time": _number(ds.get("EchoTime")),
        "rows": int(ds.Rows),
        "cols": int(ds.Columns),
        "frames": int(_number(ds.get("NumberOfFrames")) or 1),
        "values": _values(ds),  # of its decoded pixels, all frames and samples
        "value_bytes": _value_bytes(ds),
        "orientation": _numbers(ds.get("ImageOrientationPatient"), 6),
        "position": _numbers(ds.get("ImagePositionPatient"), 3),
        "instance_number": _number(ds.get("InstanceNumber")),
        "pixel_spacing": _numbers(ds.get("PixelSpacing"), 2),
        "slice_thickness": _number(ds.get("SliceThickness")),
        "spacing_between_slices": _number(ds.get("SpacingBetweenSlices")),
    }
    if stack is not None:  # an Enhanced MR: its geometry is in its functional groups
        first = stack.positions[stack.order[0]]
        fields.update(
            orientation=stack.orientation,
            position=[float(v) for v in first],
            pixel_spacing=stack.pixel_spacing,
            slice_thickness=stack.thickness,
            spacing_between_slices=stack.spacing,
        )
    return fields


def _transfer_syntax(ds) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("TransferSyntaxUID", "") or "") if meta is not None else ""


def _values(ds) -> int:
    frames = int(_number(ds.get("NumberOfFrames")) or 1)
    return (
        int(ds.get("Rows", 0) or 0) * int(ds.get("Columns", 0) or 0) * frames * int(ds.get("SamplesPerPixel", 1) or 1)
    )


def _value_bytes(ds) -> int:
    return (int(ds.get("BitsAllocated", 16) or 16) + 7) // 8


def _size_problem(ds, limits: InputLimits) -> str:
    """Why the pixels the header promises are over the limits, or '' (files without pixel data: '')."""
    if "Rows" not in ds or "Columns" not in ds:
        return ""
    frames = int(_number(ds.get("NumberOfFrames")) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    what = f"{ds.Rows} x {ds.Columns} pixels x {frames} frame(s)" + (f" x {samples} samples" if samples > 1 else "")
    problem = limits.problem(what, _values(ds), _value_bytes(ds))
    return f"{REFUSED}: its header promises {problem}" if problem else ""


def _pixel_data_problem(path: Path, ds) -> str:
    """Why the pixel data is missing or shorter than Rows x Columns x frames says, else ''."""
    if PIXEL_DATA not in ds:
        if any(tag in ds for tag in _OTHER_PIXEL_TAGS):
            return ""
        kind = str(ds.get("Modality", "") or "no modality")
        return f"DICOM without pixel data ({kind}: a report, presentation state or truncated file)"
    if _transfer_syntax(ds) == DEFLATED:
        return ""  # the whole dataset is deflated on disk: its size says nothing of the pixels
    if "Rows" not in ds or "Columns" not in ds:
        return "DICOM pixel data without Rows/Columns"
    element = ds.get_item(PIXEL_DATA, keep_deferred=True)
    length = getattr(element, "length", None)
    value_tell = getattr(element, "value_tell", None)
    if length is None or length == 0xFFFFFFFF or value_tell is None:
        return ""  # encapsulated (compressed) frames: their size is not fixed by the header
    bits = int(ds.get("BitsAllocated", 16) or 16)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples == 3 and str(ds.get("PhotometricInterpretation", "")) in _HALF_CHROMA:
        samples = 2  # 4:2:2 chroma subsampling: two values a pixel
    frames = int(_number(ds.get("NumberOfFrames")) or 1)
    expected = (int(ds.Rows) * int(ds.Columns) * samples * frames * bits + 7) // 8
    on_disk = path.stat().st_size - value_tell
    if on_disk < min(length, expected):
        return (
            f"truncated DICOM: pixel data needs {expected} bytes "
            f"({ds.Rows}x{ds.Columns}x{frames} at {bits} bits) but the file holds {max(on_disk, 0)}"
        )
    if length < expected:
        return (
            f"DICOM pixel data is {length} bytes, expected {expected} ({ds.Rows}x{ds.Columns}x{frames} at {bits} bits)"
        )
    return ""


def _number(value) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0] if len(value) else None
        if value is None:
            return None
    return float(value)


def _numbers(value, count: int) -> list[float] | None:
    if value is None or value == "":
        return None
    try:
        numbers = [float(v) for v in value]
    except TypeError:
        return None
    return numbers if len(numbers) == count else None


def scan_headers(
    files: Iterable[Path], workers: int | None = None, progress: bool = True
) -> tuple[list[dict], list[Skip], list[Path]]:
    """Read the headers of candidate files in parallel: (headers, skips, ignored sidecars)."""
    candidates, sidecars = [], []
    for path in files:
        (sidecars if is_sidecar(path) else candidates).append(path)
    # The limits are read here, not in the workers, whose environment is that of the pool's first start.
    read = functools.partial(read_header, limits=current())
    results = map_files(read, [str(p) for p in candidates], workers, progress, desc="DICOM headers")
    headers = [r for r in results if isinstance(r, dict)]
    skips = [r for r in results if isinstance(r, Skip)]
    return headers, skips, sidecars


def modality_problem(header: dict, modalities: tuple[str, ...] | None = MR) -> str:
    """Why a file's series is not graded (modality CT, a secondary capture ...), or '' (None: any modality)."""
    if modalities is None:
        return ""
    modality = header.get("modality") or "missing"
    if modality not in modalities:
        return f"modality {modality}, not {' or '.join(modalities)}"
    sop = header.get("sop_class", "")
    if modality == "MR" and sop and sop not in MR_IMAGE_CLASSES:
        name = pydicom.uid.UID(sop).name
        return f"SOP class {name}: not an acquired MR image (a screenshot, map or derived object)"
    return ""


def decode_problem(path: str) -> str:
    """Why the pixel data of one file cannot be decoded, or '' (runs in a worker process)."""
    dataset = None
    try:
        with warnings.catch_warnings(), _quiet_pydicom():
            warnings.simplefilter("ignore")
            dataset = read_dataset(path)
            dataset.pixel_array  # noqa: B018 - decoding is the test
    except Exception as exc:  # noqa: BLE001 - a missing decoder, damaged frames, bad attributes
        syntax = _transfer_syntax(dataset) if dataset is not None else ""
        name = pydicom.uid.UID(syntax).name if syntax else "unknown transfer syntax"
        detail = " ".join(str(exc).split())[:200]
        return f"pixel data cannot be decoded ({name}: {type(exc).__name__}: {detail})"
    return ""


@contextlib.contextmanager
def _quiet_pydicom():
    """pydicom logs each failed decoder with its traceback; the reason returned says it in one line."""
    logger = logging.getLogger("pydicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def read_dataset(path: str | Path) -> pydicom.Dataset:
    """A whole DICOM file, also one without the preamble or file meta (PACS exports, older files).

    Without a TransferSyntaxUID, the one the file was read with (implicit or explicit VR,
    little or big endian) is recorded, so that its pixel data can be decoded.
    """
    dataset = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in dataset.file_meta:
        implicit, little = dataset.original_encoding
        dataset.file_meta.TransferSyntaxUID = (
            pydicom.uid.ImplicitVRLittleEndian
            if implicit
            else pydicom.uid.ExplicitVRLittleEndian
            if little
            else pydicom.uid.ExplicitVRBigEndian
        )
    return dataset


def undecodable(rows: list[dict], workers: int | None = None, progress: bool = False) -> list[str]:
    """Per series row, why its middle slice cannot be decoded, or '': a cheap check that what is kept decodes."""
    files = [series_files(row) for row in rows]
    files = [str(series[len(series) // 2]) for series in files]
    return map_files(decode_problem, files, workers, progress, desc="decoding one slice per series")


# --- pixels --------------------------------------------------------------------


@dataclass
class VolumeGeometry:
    """Voxel spacing (x, y, z in mm) and the RAS affine of the volume transposed to (x, y, z)."""

    spacing: tuple[float, float, float]
    affine: np.ndarray


def load_series(row) -> tuple[np.ndarray, VolumeGeometry]:
    """Pixels of a cohort row of kind 'series' as float32 (slice, row, column), in the table's order.

    RescaleSlope/RescaleIntercept are applied. Raises InputError naming the file on failure, and before decoding
    a file whose pixels would take the series over the input limits (glioscope.io.limits).
    """
    slices, datasets, limits, values = [], [], current(), 0
    for path in series_files(row):
        try:
            dataset = read_dataset(path)
            problem = _size_problem(dataset, limits)
            values += _values(dataset)
            if not problem and values > _values(dataset):
                problem = limits.problem(f"{len(datasets) + 1} files of this series", values, _value_bytes(dataset))
                problem = f"{REFUSED}: {problem}" if problem else ""
            if problem:
                raise InputError(path, problem)
            pixels = pydicom.pixels.apply_rescale(dataset.pixel_array, dataset).astype(np.float32)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - decoder and I/O errors of this file
            raise InputError(path, f"cannot read DICOM pixels ({type(exc).__name__}: {exc})") from None
        if pixels.ndim == 3 and int(dataset.get("SamplesPerPixel", 1) or 1) == 1:
            slices.extend(
                pixels[enhanced.frame_order(path, dataset, len(pixels))]
            )  # a multi-frame file: the whole stack
        else:
            slices.append(pixels)
        datasets.append(dataset)
    try:
        volume = np.stack(slices)
    except ValueError:
        raise InputError(row["path"], "the slices of this series differ in size; re-run `glioscope ingest`") from None
    return volume, _geometry(datasets, len(volume))


def _geometry(datasets: list, n_slices: int) -> VolumeGeometry:
    if len(datasets) == 1 and enhanced.is_multiframe(datasets[0]):
        return VolumeGeometry(*enhanced.stack_geometry(enhanced.frames_of(datasets[0])))
    first, last = datasets[0], datasets[-1]
    dy, dx = (_numbers(first.get("PixelSpacing"), 2) or [1.0, 1.0])[:2]
    orientation = _numbers(first.get("ImageOrientationPatient"), 6)
    start = _numbers(first.get("ImagePositionPatient"), 3)
    end = _numbers(last.get("ImagePositionPatient"), 3)
    thickness = _number(first.get("SpacingBetweenSlices")) or _number(first.get("SliceThickness")) or 1.0
    if orientation is None or start is None:
        return VolumeGeometry((dx, dy, thickness), np.diag([dx, dy, thickness, 1.0]))
    row_dir, col_dir = np.array(orientation[:3]), np.array(orientation[3:])
    if end is not None and len(datasets) > 1 and n_slices > 1:
        step = (np.array(end) - np.array(start)) / (n_slices - 1)
    else:
        step = geometry.slice_normal(orientation) * thickness
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2], affine[:3, 3] = row_dir * dx, col_dir * dy, step, start
    lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    return VolumeGeometry((dx, dy, float(np.linalg.norm(step)) or thickness), lps_to_ras @ affine)
