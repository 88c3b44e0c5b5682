"""The ingest stage: several sources, label joins, selection, and an atomic cohort folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glioscope import cohort
from glioscope.errors import InputError
from glioscope.ingest import ingest
from glioscope.io.testing import write_nifti, write_study


def quiet(**kwargs):
    return {"progress": False, "echo": None, **kwargs}


@pytest.fixture
def brats_and_ixi(tmp_path) -> tuple[Path, Path]:
    brats = tmp_path / "brats" / "HGG"
    for case in ("BraTS20_Training_001", "BraTS20_Training_002"):
        for token in ("t1ce", "seg"):
            write_nifti(brats / case / f"{case}_{token}.nii.gz", dtype=np.uint8)
    ixi = tmp_path / "ixi"
    for name in ("IXI002-Guys-0828-T1", "IXI012-HH-1211-T1"):
        write_nifti(ixi / f"{name}.nii.gz")
    return brats.parent, ixi


def test_two_sources_make_one_cohort(brats_and_ixi, tmp_path):
    messages = []
    out = tmp_path / "cohort"
    frame, summary = ingest(list(brats_and_ixi), out, progress=False, echo=messages.append)
    assert summary["classes"] == {"HGG": {"items": 2, "patients": 2}, "healthy": {"items": 2, "patients": 2}}
    assert summary["formats"] == {"brats": 2, "ixi": 2}
    assert frame["item_id"].is_unique and list(frame.columns[: len(cohort.COLUMNS)]) == cohort.COLUMNS
    assert any("detected format: brats" in m for m in messages) and any("detected format: ixi" in m for m in messages)
    saved = cohort.load(out)
    pd.testing.assert_frame_equal(saved[cohort.COLUMNS], frame[cohort.COLUMNS])
    assert sorted(p.name for p in out.iterdir()) == ["cohort.csv", "skipped.csv", "summary.json", "summary.txt"]
    assert not list(tmp_path.glob(".*partial*"))


def test_same_patient_with_conflicting_labels_in_two_sources(tmp_path):
    for grade in ("HGG", "LGG"):
        write_nifti(tmp_path / grade / "src" / grade / "BraTS20_Training_001" / "BraTS20_Training_001_t1.nii.gz")
    with pytest.raises(InputError, match="BraTS20_Training_001.*different labels"):
        ingest([tmp_path / "HGG" / "src", tmp_path / "LGG" / "src"], tmp_path / "out", **quiet())
    assert not (tmp_path / "out").exists()


def test_labels_csv_overrides_and_notes_unmatched(brats_and_ixi, tmp_path):
    csv = tmp_path / "mgmt.csv"
    csv.write_text("Sample,MGMT_value\nBraTS20-Training-001,1\nSOMEONE_ELSE,0\n")  # '-' and '_' match
    frame, summary = ingest([brats_and_ixi[0]], None, labels=csv, **quiet())
    labels = dict(zip(frame["patient_id"], frame["label"]))
    assert labels == {"BraTS20_Training_001": "1", "BraTS20_Training_002": "HGG"}
    assert dict(zip(frame["patient_id"], frame["mgmt"]))["BraTS20_Training_001"] == "1"
    assert any("1 patient(s) have no row in mgmt.csv" in n for n in summary["notes"])
    assert any("1 row(s) of mgmt.csv match no patient" in n for n in summary["notes"])


def test_labels_csv_with_explicit_columns(brats_and_ixi, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("who,what\nIXI002,control\n")
    frame, _ = ingest([brats_and_ixi[1]], None, labels=csv, id_column="who", label_column="what", **quiet())
    assert dict(zip(frame["patient_id"], frame["label"])) == {"IXI002": "control", "IXI012": "healthy"}
    with pytest.raises(InputError, match="no column 'nope'"):
        ingest([brats_and_ixi[1]], None, labels=csv, id_column="nope", **quiet())


def test_selection_and_empty_selection(tmp_path):
    write_study(tmp_path / "dicom", "P1", n_slices=2)
    frame, _ = ingest([tmp_path / "dicom"], None, select=cohort.parse_selection("sequence=T1c|FLAIR"), **quiet())
    assert sorted(frame["sequence"]) == ["FLAIR", "T1c"]
    with pytest.raises(InputError, match="keeps no rows.*sagittal"):
        ingest([tmp_path / "dicom"], tmp_path / "out", select={"plane": ["coronal"]}, **quiet())
    assert not (tmp_path / "out").exists()


def test_existing_output_needs_overwrite(brats_and_ixi, tmp_path):
    out = tmp_path / "cohort"
    ingest([brats_and_ixi[1]], out, **quiet())
    with pytest.raises(InputError, match="already exists"):
        ingest([brats_and_ixi[0]], out, **quiet())
    assert set(cohort.load(out)["source_format"]) == {"ixi"}
    ingest([brats_and_ixi[0]], out, overwrite=True, **quiet())
    assert set(cohort.load(out)["source_format"]) == {"brats"}


def test_explicit_format_and_unknown_format(brats_and_ixi):
    frame, _ = ingest([brats_and_ixi[1]], None, format="brats", **quiet())
    assert set(frame["label"]) == {""}  # read as tumour cases: IXI names carry no grade
    with pytest.raises(InputError, match="unknown format 'nifti'"):
        ingest([brats_and_ixi[1]], None, format="nifti", **quiet())
