"""The two DICOM layouts: a TCIA REMBRANDT-style tree and the RSNA-MICCAI 2021 training folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from glioscope.synth import dicom_writer
from glioscope.synth.geometry import slice_stack
from glioscope.synth.plan import RSNA_SEQUENCES, Record
from glioscope.synth.presets import Preset
from glioscope.synth.subject import Subject, rng_for

STREAM_DICOM, STREAM_RSNA = 10, 11
ORDERS = {"ascending": 0.5, "descending": 0.3, "shuffled": 0.2}  # how InstanceNumber runs along space
# REMBRANDT-like protocol: SeriesNumber, SeriesDescription, phantom image, plane.
REMBRANDT_SERIES = (
    (2, "SAG T1", "T1", "sagittal"),
    (3, "AX T2 FSE", "T2", "axial"),
    (4, "AX FLAIR", "FLAIR", "axial"),
    (7, "AX T1 POST GD", "T1c", "axial"),
)
STUDY_DESCRIPTION = "MRI BRAIN WWO CONTRAST"
DISEASES = {
    "II": ("OLIGODENDROGLIOMA", "ASTROCYTOMA"),
    "III": ("ASTROCYTOMA", "ASTROCYTOMA", "OLIGODENDROGLIOMA"),
    "IV": ("GBM",),
}
RSNA_IMAGE = {"FLAIR": "FLAIR", "T1w": "T1", "T1wCE": "T1c", "T2w": "T2"}


def _order(rng: np.random.Generator) -> str:
    return str(rng.choice(list(ORDERS), p=list(ORDERS.values())))


def _study(record: Record, patient_id: str, rng: np.random.Generator, years: tuple[int, int], description: str):
    """Patient and study identity with a plausible date, all drawn from the subject's stream."""
    year, month, day = int(rng.integers(*years)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    study = dicom_writer.Study(
        patient_id=patient_id,
        patient_name=patient_id,
        study_uid=dicom_writer.uid(record.spec.seed, patient_id, "study"),
        frame_uid=dicom_writer.uid(record.spec.seed, patient_id, "frame"),
        study_date=f"{year:04d}{month:02d}{day:02d}",
        study_description=description,
        patient_sex=str(rng.choice(["M", "F"])),
        patient_age=f"{int(rng.integers(25, 80)):03d}Y",
        institution=f"glioscope phantom site {record.site}",
    )
    return study, f"{month:02d}-{day:02d}-{year:04d}"


class RembrandtWriter:
    """`dicom/REMBRANDT/<PatientID>/<date>-<study>-<n>/<number>.000000-<series>-<n>/1-NN.dcm` + clinical.csv."""

    layout = "dicom"

    def __init__(self, root: Path, preset: Preset):
        self.root, self.preset = root / "dicom", preset

    def write(self, subject: Subject, record: Record) -> dict | None:
        """Write the subject's study; return its clinical row."""
        if record.grade == "healthy":
            return None  # REMBRANDT holds gliomas only
        patient = record.ids["dicom"]
        rng = rng_for(record.spec.seed, STREAM_DICOM, record.spec.index)
        study, date = _study(record, patient, rng, (1990, 2006), STUDY_DESCRIPTION)
        study_dir = (
            self.root / "REMBRANDT" / patient / f"{date}-{STUDY_DESCRIPTION}-{int(rng.integers(10000, 100000)):05d}"
        )
        files = 0
        for number, description, image, plane in REMBRANDT_SERIES:
            stack = slice_stack(
                subject.images[image],
                subject.affine,
                plane,
                self.preset.dicom_slab,
                self.preset.dicom_fov_mm,
                subject.head,
            )
            numbers = dicom_writer.instance_numbers(len(stack.pixels), _order(rng), rng)
            width = max(2, len(str(len(numbers))))
            files += dicom_writer.write_series(
                study_dir / f"{number}.000000-{description}-{int(rng.integers(10000, 100000)):05d}",
                stack,
                study,
                dicom_writer.PROTOCOLS[image],
                number,
                description,
                dicom_writer.uid(record.spec.seed, patient, "series", number),
                numbers,
                lambda n, width=width: f"1-{n:0{width}d}.dcm",
            )
        disease = DISEASES[record.grade][int(rng.integers(len(DISEASES[record.grade])))]
        return {"PatientID": patient, "Grade": record.grade, "Disease": disease, "files": files}

    def finish(self, rows: list[dict]) -> dict:
        """Write clinical.csv; return the layout's summary."""
        clinical = pd.DataFrame(rows, columns=["PatientID", "Grade", "Disease"])
        self.root.mkdir(parents=True, exist_ok=True)
        clinical.to_csv(self.root / "clinical.csv", index=False)
        files = sum(row["files"] for row in rows)
        return {"folder": "dicom", "patients": len(rows), "files": files, "clinical": "dicom/clinical.csv"}


class RsnaWriter:
    """`rsna-miccai/train/<id>/{FLAIR,T1w,T1wCE,T2w}/Image-<n>.dcm` + train_labels.csv (grade IV only)."""

    layout = "rsna-miccai"

    def __init__(self, root: Path, preset: Preset):
        self.root, self.preset = root / "rsna-miccai", preset

    def write(self, subject: Subject, record: Record) -> dict | None:
        """Write the subject's sequence folders; return its label row."""
        if record.grade != "IV":
            return None
        patient = record.ids["rsna-miccai"]
        rng = rng_for(record.spec.seed, STREAM_RSNA, record.spec.index)
        study, _ = _study(record, patient, rng, (2005, 2021), "")
        files = 0
        for number, folder in enumerate(RSNA_SEQUENCES, start=1):
            if folder == record.rsna_missing:
                continue
            image = RSNA_IMAGE[folder]
            stack = slice_stack(
                subject.images[image],
                subject.affine,
                record.rsna_planes[folder],
                self.preset.rsna_slab,
                self.preset.dicom_fov_mm,
                subject.head,
            )
            files += dicom_writer.write_series(
                self.root / "train" / patient / folder,
                stack,
                study,
                dicom_writer.PROTOCOLS[image],
                number,
                folder,  # the challenge's anonymised series are described by their folder name
                dicom_writer.uid(record.spec.seed, patient, "rsna-series", folder),
                dicom_writer.instance_numbers(len(stack.pixels), _order(rng), rng),
                lambda n: f"Image-{n}.dcm",
            )
        return {
            "BraTS21ID": patient,
            "MGMT_value": int(bool(record.spec.methylated)),
            "files": files,
            "missing": record.rsna_missing,
        }

    def finish(self, rows: list[dict]) -> dict:
        """Write train_labels.csv; return the layout's summary."""
        labels = pd.DataFrame(rows, columns=["BraTS21ID", "MGMT_value"]).sort_values("BraTS21ID")
        self.root.mkdir(parents=True, exist_ok=True)
        labels.to_csv(self.root / "train_labels.csv", index=False)
        return {
            "folder": "rsna-miccai",
            "patients": len(rows),
            "files": sum(row["files"] for row in rows),
            "missing_sequences": {row["BraTS21ID"]: row["missing"] for row in rows if row["missing"]},
        }
