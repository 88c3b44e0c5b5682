"""Tiny DICOM, NIfTI, PNG and TIFF writers for tests: valid files whose tags the test chooses.

The PNG and TIFF writers make images of one colour on any canvas in little time and space (a
100000 x 100000 canvas is a file of about 10 MB), and `write_nifti_header` a NIfTI whose header
promises any volume: the inputs the limits of glioscope.io.limits exist for.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def dicom_slice(
    patient_id: str,
    study_uid: str,
    series_uid: str,
    description: str,
    index: int,
    rows: int = 8,
    cols: int = 8,
    orientation=AXIAL,
    spacing: float = 5.0,
    contrast_agent: str = "",
    pixels: bool = True,
    **tags,
) -> Dataset:
    """One MR slice `index` of a stack, positioned `spacing` mm apart along its normal."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = patient_id, study_uid, series_uid
    ds.SeriesDescription = description
    ds.InstanceNumber = index + 1
    ds.ImageOrientationPatient = list(orientation)
    normal = np.cross(orientation[:3], orientation[3:])
    ds.ImagePositionPatient = [float(v) for v in normal * spacing * index]
    ds.PixelSpacing = [0.9, 0.8]
    ds.SliceThickness = spacing
    if contrast_agent:
        ds.ContrastBolusAgent = contrast_agent
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = 2, -10
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    if pixels:
        ds.PixelData = (np.arange(rows * cols, dtype=np.uint16).reshape(rows, cols) + index).tobytes()
    return ds


def write_dicom_series(
    folder: Path,
    patient_id: str = "P001",
    description: str = "AX T1",
    n_slices: int = 4,
    study_uid: str | None = None,
    order=None,
    suffix: str = ".dcm",
    names: str = "1-{:02d}",
    **slice_options,
) -> list[Path]:
    """Write a series as `folder/1-NN.dcm` (`names` formats the number); `order` permutes slices over names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study_uid, series_uid = study_uid or generate_uid(), generate_uid()
    order = list(order) if order is not None else list(range(n_slices))
    paths = []
    for file_number, index in enumerate(order):
        ds = dicom_slice(patient_id, study_uid, series_uid, description, index, **slice_options)
        path = folder / (names.format(file_number + 1) + suffix)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_study(root: Path, patient_id: str = "P001", n_slices: int = 4) -> dict[str, Path]:
    """A REMBRANDT-like study: SAG T1, AX T1 POST GD (with ContrastBolusAgent), AX FLAIR, AX T2 FSE."""
    study_uid = generate_uid()
    study = Path(root) / patient_id / "01-01-2000-MR BRAIN-12345"
    specs = {
        "SAG T1": {"orientation": SAGITTAL},
        "AX T1 POST GD": {"contrast_agent": "MAGNEVIST"},
        "AX FLAIR": {},
        "AX T2 FSE": {},
    }
    folders = {}
    for number, (description, options) in enumerate(specs.items(), start=1):
        folder = study / f"{number}.000000-{description}-{number:04d}"
        write_dicom_series(folder, patient_id, description, n_slices, study_uid=study_uid, **options)
        folders[description] = folder
    return folders


def write_nifti(path: Path, shape=(8, 9, 10), dtype=np.int16, first_voxel=None, spacing=(1.0, 1.0, 2.0)) -> Path:
    """A NIfTI volume of `shape` holding a ramp; `first_voxel` overrides one value (e.g. NaN)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (np.arange(int(np.prod(shape))).reshape(shape) % 100).astype(dtype)
    if first_voxel is not None:
        data.flat[0] = first_voxel
    nib.save(nib.Nifti1Image(data, np.diag([*spacing, 1.0])), path)
    return path


def write_nifti_header(path: Path, shape, dtype=np.float32, data_bytes: int = 4096) -> Path:
    """A NIfTI (.nii.gz: gzipped) whose header promises `shape` of `dtype` but which holds `data_bytes` of zeros."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_qform(np.eye(4), code=1)
    header["vox_offset"] = 352
    content = header.binaryblock + bytes(4) + bytes(data_bytes)  # 4 bytes: no extensions
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if path.name.endswith(".gz") else content)
    return path


def zeros_zlib(n: int, chunk: int = 1 << 20) -> bytes:
    """A zlib stream of `n` zero bytes, made without compressing them all.

    After a full flush DEFLATE starts afresh, so the compressed form of one chunk of zeros can be
    repeated; an empty final block and the Adler-32 of n zeros (A = 1, B = n mod 65521) end it.
    """
    compressor = zlib.compressobj(9)
    first = compressor.compress(bytes(n % chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)  # with the zlib header
    block = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + block * (n // chunk) + b"\x03\x00" + (((n % 65521) << 16) | 1).to_bytes(4, "big")


def write_png(path: Path, width: int, height: int, channels: int = 1, bits: int = 8) -> Path:
    """A black PNG of `width` x `height` (grey or RGB, 1 to 16 bits): about 1 KB of file per MB of pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = 1 + (width * channels * bits + 7) // 8  # a filter byte, then the pixels
    header = struct.pack(">IIBBBBB", width, height, bits, {1: 0, 3: 2}[channels], 0, 0, 0)
    data = chunk(b"IHDR", header) + chunk(b"IDAT", zeros_zlib(row * height)) + chunk(b"IEND", b"")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return Path(path)


def write_tiff(path: Path, width: int, height: int, channels: int = 3) -> Path:
    """A black 8-bit TIFF of `width` x `height` (grey or RGB, as kaggle_3m's) in one deflated strip."""
    strip = zeros_zlib(width * height * channels)
    entries = [  # tag, type (3 SHORT, 4 LONG), count, value
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, channels, 8),  # BitsPerSample: with 3 channels, the offset of the three values
        (259, 3, 1, 8),  # deflate
        (262, 3, 1, 2 if channels == 3 else 1),
        (273, 4, 1, 0),  # StripOffsets, set below
        (277, 3, 1, channels),
        (278, 4, 1, height),
        (279, 4, 1, len(strip)),
        (284, 3, 1, 1),
    ]
    bits_at = 8 + 2 + 12 * len(entries) + 4
    out = b"II" + struct.pack("<HIH", 42, 8, len(entries))
    for tag, kind, count, value in entries:
        value = {258: bits_at if channels > 1 else 8, 273: bits_at + 2 * channels}.get(tag, value)
        packed = struct.pack("<I", value) if kind == 4 else struct.pack("<HH", value, 0)  # left-justified in 4 bytes
        out += struct.pack("<HHI", tag, kind, count) + packed
    out += struct.pack("<I", 0) + struct.pack("<H", 8) * channels + strip
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(out)
    return Path(path)


def write_enhanced_mr(
    path: Path, positions_z, patient_id: str = "P009", stacks=None, times=None, rows: int = 8, cols: int = 8
) -> Path:
    """An Enhanced MR file: one axial frame per z position (in the order given), geometry in functional groups.

    Frame k's pixels are all 10 * its rank along z (so a reader's order shows); `stacks`/`times` give each
    frame a StackID / TemporalPositionIndex.
    """
    from pydicom.sequence import Sequence

    ranks = np.argsort(np.argsort(positions_z))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"  # Enhanced MR Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.SeriesDescription = "MR", patient_id, "AX T1 ENHANCED"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, len(positions_z)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    measures.PixelSpacing, measures.SliceThickness = [0.9, 0.8], 2.0
    shared = Dataset()
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([orientation]), Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for k, z in enumerate(positions_z):
        position, content, frame = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [0.0, 0.0, float(z)]
        content.StackID = str(stacks[k]) if stacks is not None else "1"
        content.TemporalPositionIndex = int(times[k]) if times is not None else 1
        frame.PlanePositionSequence, frame.FrameContentSequence = Sequence([position]), Sequence([content])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    pixels = np.stack([np.full((rows, cols), 10 * int(r), np.uint16) for r in ranks])
    ds.PixelData = pixels.tobytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return Path(path)
