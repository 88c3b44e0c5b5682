"""The NIfTI layouts: BraTS 2020 training data (skull-stripped, with segmentation) and IXI (healthy, with head)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from glioscope.synth.geometry import reorient
from glioscope.synth.plan import Record
from glioscope.synth.presets import Preset
from glioscope.synth.subject import Subject

BRATS_FOLDER = "brats/MICCAI_BraTS2020_TrainingData"
BRATS_FILES = {"t1": "T1", "t1ce": "T1c", "t2": "T2", "flair": "FLAIR"}
BRATS_AXES = ("L", "P", "S")  # BraTS volumes are stored with x and y flipped (affine diag -1, -1, 1)
NAME_MAPPING_COLUMNS = [
    "Grade",
    "BraTS_2017_subject_ID",
    "BraTS_2018_subject_ID",
    "TCGA_TCIA_subject_ID",
    "BraTS_2019_subject_ID",
    "BraTS_2020_subject_ID",
]
IXI_AXES = {"T1": ("P", "S", "R"), "T2": ("R", "A", "S")}  # IXI T1 is stored as sagittal slices


def save_nifti(path: Path, volume: np.ndarray, affine: np.ndarray, axcodes, dtype) -> None:
    """Write `volume` (RAS affine) stored in the `axcodes` orientation, with scanner-space qform and sform."""
    data, new_affine = reorient(volume, affine, axcodes)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        data = np.clip(np.rint(data), info.min, info.max)
    image = nib.Nifti1Image(data.astype(dtype), new_affine)
    image.set_qform(new_affine, code=1)
    image.set_sform(new_affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, str(path))


class BratsWriter:
    """`brats/MICCAI_BraTS2020_TrainingData/<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz` + name_mapping.csv."""

    layout = "brats"

    def __init__(self, root: Path, preset: Preset):
        self.root = root / BRATS_FOLDER

    def write(self, subject: Subject, record: Record) -> dict | None:
        """Write the case folder; return its name_mapping.csv row."""
        if record.grade == "healthy":
            return None
        case = record.ids["brats"]
        folder = self.root / case
        folder.mkdir(parents=True, exist_ok=True)
        for suffix, image in BRATS_FILES.items():
            stripped = subject.images[image] * subject.brain  # BraTS is skull-stripped, background exactly 0
            save_nifti(folder / f"{case}_{suffix}.nii.gz", stripped, subject.affine, BRATS_AXES, np.int16)
        save_nifti(folder / f"{case}_seg.nii.gz", subject.seg, subject.affine, BRATS_AXES, np.uint8)
        na = "NA"
        return dict(zip(NAME_MAPPING_COLUMNS, ["HGG" if record.grade == "IV" else "LGG", na, na, na, na, case]))

    def finish(self, rows: list[dict]) -> dict:
        """Write name_mapping.csv; return the layout's summary."""
        self.root.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=NAME_MAPPING_COLUMNS).to_csv(self.root / "name_mapping.csv", index=False)
        return {
            "folder": BRATS_FOLDER,
            "patients": len(rows),
            "files": 5 * len(rows),
            "name_mapping": f"{BRATS_FOLDER}/name_mapping.csv",
        }


class IxiWriter:
    """`ixi/IXI<nnn>-<site>-<nnnn>-{T1,T2}.nii.gz` for healthy subjects, with skull and scalp."""

    layout = "ixi"

    def __init__(self, root: Path, preset: Preset):
        self.root = root / "ixi"

    def write(self, subject: Subject, record: Record) -> dict | None:
        """Write the T1 and T2 volumes."""
        if record.grade != "healthy":
            return None
        self.root.mkdir(parents=True, exist_ok=True)
        for image, axes in IXI_AXES.items():
            save_nifti(
                self.root / f"{record.ids['ixi']}-{image}.nii.gz", subject.images[image], subject.affine, axes, np.int16
            )
        return {"id": record.ids["ixi"]}

    def finish(self, rows: list[dict]) -> dict:
        """Return the layout's summary."""
        self.root.mkdir(parents=True, exist_ok=True)
        return {"folder": "ixi", "patients": len(rows), "files": 2 * len(rows)}
