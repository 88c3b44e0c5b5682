"""Real MRI samples beside the project (skipped when absent): each reader on the real thing."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from glioscope.ingest import ingest
from glioscope.io.formats import ReadOptions, detect_format, read_source
from glioscope.io.testing import write_dicom_series, write_nifti

OPTIONS = ReadOptions(progress=False)


def sample(shared_data: Path, *parts: str) -> Path:
    path = shared_data.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"sample {'/'.join(parts)} not present")
    return path


def rows_by(rows, *keys):
    return {tuple(r[k] for k in keys): r for r in rows}


def test_brats2015_deepmedic_cases(shared_data):
    source = sample(shared_data, "nifti", "brats2015-deepmedic-6cases")
    assert detect_format(source)[0] == "brats"
    result = read_source(source, "brats", OPTIONS)
    assert len(result.rows) == 12 and result.skipped == []
    assert Counter(r["sequence"] for r in result.rows) == {"FLAIR": 6, "T1c": 6}
    assert Counter(r["source_split"] for r in result.rows) == {"train": 4, "validation": 4, "test": 4}
    assert {r["patient_id"] for r in result.rows} == {f"brats_2013_pat000{i}_1" for i in range(1, 7)}
    for row in result.rows:
        assert Path(row["mask_path"]).name == "OTMultiClass.nii.gz"
        assert Path(row["mask_path"]).parent == Path(row["path"]).parent
        assert (row["cols"], row["rows"], row["n_slices"], row["spacing"], row["plane"]) == (
            240,
            240,
            155,
            "1,1,1",
            "axial",
        )
        assert row["label"] == ""  # the source states no grade
    assert any("6 brain mask" in n for n in result.notes)


def test_brats2021_case(shared_data):
    source = sample(shared_data, "nifti", "BraTS2021_00006")
    rows = rows_by(read_source(source, "auto", OPTIONS).rows, "sequence")
    assert sorted(s for (s,) in rows) == ["FLAIR", "T1", "T1c", "T2"]
    assert {r["patient_id"] for r in rows.values()} == {"BraTS2021_00006"}
    assert {Path(r["mask_path"]).name for r in rows.values()} == {"BraTS2021_00006_seg.nii.gz"}
    assert Path(rows[("T1c",)]["path"]).name == "BraTS2021_00006_t1ce.nii.gz"


def test_brats2023_case(shared_data):
    source = sample(shared_data, "nifti", "BraTS-GLI-00001-000")
    rows = rows_by(read_source(source, "brats", OPTIONS).rows, "sequence")
    names = {s: Path(r["path"]).name.split("-")[-1] for (s,), r in rows.items()}
    assert names == {"T1": "t1n.nii.gz", "T1c": "t1c.nii.gz", "T2": "t2w.nii.gz", "FLAIR": "t2f.nii.gz"}
    assert {r["patient_id"] for r in rows.values()} == {"BraTS-GLI-00001-000"}
    assert {r["mask_path"] for r in rows.values()} == {""}


def test_tcga_brainles_with_grades_from_the_brats2020_mapping(shared_data):
    source = sample(shared_data, "nifti", "tcga-brainles")
    mapping = sample(shared_data, "metadata", "brats2020_name_mapping.csv")
    frame, summary = ingest([source], None, labels=mapping, id_column="TCGA_TCIA_subject_ID", progress=False, echo=None)
    assert Counter(frame["patient_id"]) == {"OtherEXampleFromTCIA": 8, "TCGA-DU-7294": 4}
    assert Counter(frame["sequence"]) == {"T1": 3, "T1c": 3, "T2": 3, "FLAIR": 3}
    du = frame[frame["patient_id"] == "TCGA-DU-7294"]
    assert set(du["label"]) == set(du["grade"]) == {"LGG"}
    raw = frame[frame["n_slices"] == 26]  # native-space conversions: 26 slices of 5.5 mm
    assert len(raw) == 4 and all(s.endswith(",5.5") for s in raw["spacing"])
    assert any("1 patient(s) have no row in brats2020_name_mapping.csv" in n for n in summary["notes"])


def test_all_real_nifti_in_one_source(shared_data):
    source = sample(shared_data, "nifti")
    result = read_source(source, "brats", OPTIONS)
    per_patient = Counter(r["patient_id"] for r in result.rows)
    assert per_patient["BraTS2021_00006"] == 4 and per_patient["BraTS-GLI-00001-000"] == 4
    assert per_patient["brats_2013_pat0003_1"] == 2 and per_patient["TCGA-DU-7294"] == 4
    expected_rows = 12 + 4 + 4 + 12 + (2 if (source / "healthy").is_dir() else 0)
    assert len(result.rows) == expected_rows


def test_healthy_volumes(shared_data):
    source = sample(shared_data, "nifti", "healthy")
    result = read_source(source, "ixi", OPTIONS)
    rows = rows_by(result.rows, "patient_id")
    assert rows[("chris_t1",)]["sequence"] == "T1" and rows[("t2",)]["sequence"] == "T2"
    assert (rows[("chris_t1",)]["cols"], rows[("chris_t1",)]["rows"], rows[("chris_t1",)]["n_slices"]) == (
        176,
        256,
        176,
    )
    assert {r["label"] for r in result.rows} == {"healthy"}
    assert any("its own patient" in n for n in result.notes)


def test_kaggle3m_sample(shared_data):
    source = sample(shared_data, "lgg-kaggle3m-sample")
    frame, summary = ingest([source], None, progress=False, echo=None)
    assert summary["formats"] == {"kaggle3m": 196} and summary["patients"] == 6
    assert summary["classes"] == {"II": {"items": 82, "patients": 3}, "III": {"items": 114, "patients": 3}}
    assert (frame["mask_path"] != "").all()
    for _, row in frame.head(20).iterrows():
        assert row["mask_path"] == row["path"][: -len(".tif")] + "_mask.tif"
    assert set(zip(frame["rows"], frame["cols"])) == {(256, 256)}
    per_patient = frame.groupby("patient_id")["slice_index"].agg(["min", "max", "count"])
    assert per_patient.loc["TCGA_FG_5962"].tolist() == [1, 51, 51]
    assert dict(frame.groupby("patient_id")["grade"].first()) == {
        "TCGA_CS_4941": "III",
        "TCGA_CS_4944": "II",
        "TCGA_DU_5849": "II",
        "TCGA_DU_5851": "III",
        "TCGA_EZ_7264": "II",
        "TCGA_FG_5962": "III",
    }


def test_image_folders_subset(shared_data, tmp_path):
    source = sample(shared_data, "kaggle-brain-tumor-224")
    for image in sorted(source.glob("*/*/*.jpg")):
        target = tmp_path / image.relative_to(source)
        if target.parent.is_dir() and len(list(target.parent.iterdir())) >= 3:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, target)
    frame, summary = ingest([tmp_path], None, progress=False, echo=None)
    assert summary["classes"] == {
        c: {"items": 6, "patients": 6} for c in ("glioma", "meningioma", "notumor", "pituitary")
    }
    assert summary["source_splits"] == {"Training": 12, "Testing": 12}
    assert set(zip(frame["rows"], frame["cols"])) == {(224, 224)}
    assert summary["notes"][0].startswith("no patient ids")


def test_image_folders_full(shared_data):
    source = sample(shared_data, "kaggle-brain-tumor-224")
    start = time.perf_counter()
    frame, _ = ingest([source], None, progress=False, echo=None)
    assert time.perf_counter() - start < 10  # measured about 1 s on 2 cores
    counts = frame.groupby(["source_split", "label"]).size().to_dict()
    assert counts == {
        ("Training", "glioma"): 1321,
        ("Training", "meningioma"): 1339,
        ("Training", "notumor"): 1591,
        ("Training", "pituitary"): 1457,
        ("Testing", "glioma"): 300,
        ("Testing", "meningioma"): 306,
        ("Testing", "notumor"): 405,
        ("Testing", "pituitary"): 300,
    }


def test_real_rsna_label_file(shared_data, tmp_path):
    labels = sample(shared_data, "metadata", "rsna_miccai_train_labels.csv")
    for patient in ("00000", "00006", "00008"):
        write_dicom_series(
            tmp_path / "train" / patient / "T1wCE", patient, description="T1wCE", n_slices=1, names="Image-{}"
        )
    shutil.copy(labels, tmp_path / "train_labels.csv")
    rows = read_source(tmp_path, "auto", OPTIONS).rows
    assert {r["patient_id"]: r["mgmt"] for r in rows} == {"00000": "1", "00006": "1", "00008": "1"}


def test_real_brats2020_name_mapping(shared_data, tmp_path):
    mapping = sample(shared_data, "metadata", "brats2020_name_mapping.csv")
    root = tmp_path / "MICCAI_BraTS2020_TrainingData"
    for case in ("BraTS20_Training_001", "BraTS20_Training_295"):
        write_nifti(root / case / f"{case}_t1.nii.gz")
    shutil.copy(mapping, root / "name_mapping.csv")
    rows = read_source(root, "brats", OPTIONS).rows
    assert {r["patient_id"]: r["label"] for r in rows} == {"BraTS20_Training_001": "HGG", "BraTS20_Training_295": "LGG"}
