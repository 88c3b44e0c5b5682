"""Tiny DICOM and NIfTI writers for tests: valid files whose tags the test chooses."""

from __future__ import annotations

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
