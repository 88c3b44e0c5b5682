"""Every non-generic layout, written small by the test: rows, labels, masks, splits and detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glioscope.errors import InputError
from glioscope.io.formats import ReadOptions, detect_format, read_source
from glioscope.io.testing import SAGITTAL, write_dicom_series, write_nifti

OPTIONS = ReadOptions(progress=False, workers=1)


def by(rows, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


# --- RSNA-MICCAI ---------------------------------------------------------------


@pytest.fixture
def rsna(tmp_path) -> Path:
    root = tmp_path / "rsna"
    for patient, folders in (("00000", ("FLAIR", "T1w", "T1wCE", "T2w")), ("00012", ("FLAIR", "T2w"))):
        for folder in folders:
            options = {"orientation": SAGITTAL} if folder == "T1w" else {}
            write_dicom_series(
                root / "train" / patient / folder, patient, description=folder, n_slices=2, names="Image-{}", **options
            )
    write_dicom_series(root / "test" / "00001" / "FLAIR", "00001", description="FLAIR", n_slices=2, names="Image-{}")
    (root / "train_labels.csv").write_text("BraTS21ID,MGMT_value\n00000,1\n12,0\n")  # ids as Excel would save them
    return root


def test_rsna_rows_sequences_labels_and_missing_sequences(rsna):
    result = read_source(rsna, "rsna-miccai", OPTIONS)
    rows = by(result.rows, "patient_id", "sequence")
    assert sorted(rows) == [
        ("00000", "FLAIR"),
        ("00000", "T1"),
        ("00000", "T1c"),
        ("00000", "T2"),
        ("00001", "FLAIR"),
        ("00012", "FLAIR"),
        ("00012", "T2"),
    ]
    assert rows[("00000", "T1")]["plane"] == "sagittal" and rows[("00000", "T2")]["plane"] == "axial"
    assert rows[("00000", "T1c")]["label"] == rows[("00000", "T1c")]["mgmt"] == "1"
    assert rows[("00012", "T2")]["label"] == "0"
    assert rows[("00001", "FLAIR")]["label"] == "" and rows[("00001", "FLAIR")]["source_split"] == "test"
    assert all(r["n_slices"] == 2 for r in result.rows)
    missing = [n for n in result.notes if "lack sequences" in n]
    assert missing and "00012: T1w, T1wCE" in missing[0]


def test_rsna_detected_from_root_and_train_folder(rsna):
    assert detect_format(rsna) == ("rsna-miccai", "train_labels.csv and train/test/<5-digit id>/ folders")
    assert detect_format(rsna / "train")[0] == "rsna-miccai"
    result = read_source(rsna / "train", "auto", OPTIONS)  # labels found one folder up
    assert {r["patient_id"]: r["label"] for r in result.rows} == {"00000": "1", "00012": "0"}


# --- BraTS ---------------------------------------------------------------------


def test_brats_2020_naming_with_name_mapping(tmp_path):
    root = tmp_path / "MICCAI_BraTS2020_TrainingData"
    for case in ("BraTS20_Training_001", "BraTS20_Training_002"):
        for token in ("t1", "t1ce", "t2", "flair", "seg"):
            write_nifti(root / case / f"{case}_{token}.nii.gz", dtype=np.uint8 if token == "seg" else np.int16)
    (root / "name_mapping.csv").write_text(
        "Grade,BraTS_2019_subject_ID,BraTS_2020_subject_ID\nHGG,BraTS19_X_1,BraTS20_Training_001\nLGG,NA,BraTS20_Training_002\n"
    )
    result = read_source(root, "auto", OPTIONS)
    assert result.format == "brats" and len(result.rows) == 8
    rows = by(result.rows, "patient_id", "sequence")
    assert {k[1] for k in rows} == {"T1", "T1c", "T2", "FLAIR"}
    assert rows[("BraTS20_Training_001", "T1c")]["label"] == "HGG"
    assert rows[("BraTS20_Training_002", "FLAIR")]["grade"] == "LGG"
    row = rows[("BraTS20_Training_001", "T2")]
    assert row["mask_path"].endswith("BraTS20_Training_001_seg.nii.gz")
    assert (row["cols"], row["rows"], row["n_slices"], row["spacing"]) == (8, 9, 10, "1,1,2")
    assert all(r["source_split"] == "Training" and r["kind"] == "volume" for r in result.rows)


def test_brats_2023_naming_and_grade_folders(tmp_path):
    for grade in ("HGG", "LGG"):
        case = f"BraTS-GLI-0000{1 if grade == 'HGG' else 2}-000"
        for token in ("t1n", "t1c", "t2w", "t2f"):
            write_nifti(tmp_path / grade / case / f"{case}-{token}.nii.gz")
    rows = by(read_source(tmp_path, "brats", OPTIONS).rows, "patient_id", "sequence")
    assert sorted(rows) == sorted(
        (c, s) for c in ("BraTS-GLI-00001-000", "BraTS-GLI-00002-000") for s in ("T1", "T1c", "T2", "FLAIR")
    )
    assert rows[("BraTS-GLI-00001-000", "T1")]["label"] == "HGG"
    assert rows[("BraTS-GLI-00002-000", "FLAIR")]["label"] == "LGG"
    assert rows[("BraTS-GLI-00002-000", "FLAIR")]["mask_path"] == ""


def test_brats_case_from_folder_when_names_carry_none(tmp_path):
    case = tmp_path / "brats_2013_pat0001_1"
    for name in ("Flair_subtrMeanDivStd", "T1c_subtrMeanDivStd", "OTMultiClass", "brainmask"):
        write_nifti(case / f"{name}.nii.gz", dtype=np.float32)
    write_nifti(tmp_path / "notes" / "something.nii.gz")
    result = read_source(tmp_path, "brats", OPTIONS)
    rows = by(result.rows, "sequence")
    assert set(rows) == {"FLAIR", "T1c"} and {r["patient_id"] for r in result.rows} == {"brats_2013_pat0001_1"}
    assert rows["T1c"]["mask_path"].endswith("OTMultiClass.nii.gz")
    assert any("brain mask" in n for n in result.notes)
    assert [Path(s.path).name for s in result.skipped] == ["something.nii.gz"]


# --- IXI -----------------------------------------------------------------------


def test_ixi_names_and_other_healthy_files(tmp_path):
    for name in ("IXI002-Guys-0828-T1", "IXI002-Guys-0828-T2", "IXI012-HH-1211-T1", "IXI012-HH-1211-MRA"):
        write_nifti(tmp_path / f"{name}.nii.gz")
    assert detect_format(tmp_path)[0] == "ixi"
    write_nifti(tmp_path / "other" / "chris_t1.nii.gz")
    result = read_source(tmp_path, "ixi", OPTIONS)
    rows = by(result.rows, "patient_id", "sequence")
    assert sorted(rows) == [("IXI002", "T1"), ("IXI002", "T2"), ("IXI012", "T1"), ("chris_t1", "T1")]
    assert {r["label"] for r in result.rows} == {"healthy"}
    assert [Path(s.path).name for s in result.skipped] == ["IXI012-HH-1211-MRA.nii.gz"]
    assert any("its own patient" in n and "chris_t1" in n for n in result.notes)


# --- kaggle_3m -----------------------------------------------------------------


def _tif(path: Path, value: int = 0, channels: int = 3):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (4, 5, channels) if channels > 1 else (4, 5)
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)


def test_kaggle3m_slices_masks_and_grades(tmp_path):
    root = tmp_path / "kaggle_3m"
    for case in ("TCGA_CS_4941_19960909", "TCGA_DU_5849_19950405"):
        for index in (1, 2, 10):
            _tif(root / case / f"{case}_{index}.tif")
            if index != 10 or case.startswith("TCGA_CS"):
                _tif(root / case / f"{case}_{index}_mask.tif", channels=1)
    (root / "data.csv").write_text("Patient,neoplasm_histologic_grade\nTCGA_CS_4941,2.0\nTCGA_DU_5849,1.0\n")
    result = read_source(tmp_path, "auto", OPTIONS)
    assert result.format == "kaggle3m" and len(result.rows) == 6
    rows = by(result.rows, "patient_id", "slice_index")
    assert [k for k in by(result.rows, "patient_id", "slice_index")][:3] == [("TCGA_CS_4941", i) for i in (1, 2, 10)]
    assert rows[("TCGA_CS_4941", 2)]["label"] == "III" and rows[("TCGA_DU_5849", 1)]["grade"] == "II"
    assert rows[("TCGA_CS_4941", 10)]["mask_path"].endswith("_10_mask.tif")
    assert rows[("TCGA_DU_5849", 10)]["mask_path"] == ""
    row = rows[("TCGA_CS_4941", 1)]
    assert (row["sequence"], row["plane"], row["rows"], row["cols"]) == ("T1+FLAIR+T1c", "axial", 4, 5)
    assert row["study_id"] == "TCGA_CS_4941_19960909"


# --- image folders -------------------------------------------------------------


def test_imagefolder_with_splits_and_no_patient_ids(tmp_path):
    for split in ("TRAIN", "VAL", "TEST"):
        for label in ("methylated", "unmethylated"):
            _tif(tmp_path / split / label / f"p{split}{label[0]}_1.png", channels=1)
    assert detect_format(tmp_path)[0] == "imagefolder"
    result = read_source(tmp_path, "imagefolder", OPTIONS)
    assert len(result.rows) == 6 and len({r["patient_id"] for r in result.rows}) == 6
    assert {r["source_split"] for r in result.rows} == {"TRAIN", "VAL", "TEST"}
    assert {r["label"] for r in result.rows} == {"methylated", "unmethylated"}
    assert result.notes[0].startswith("no patient ids")


def test_imagefolder_patient_regex_and_grades(tmp_path):
    for label in ("II", "IV", "healthy"):
        for patient in ("a", "b"):
            for index in (0, 1):
                _tif(tmp_path / label / f"{label}{patient}_{index}.png", channels=1)
    (tmp_path / "IV" / "scan.png").write_bytes(b"not really a png")
    result = read_source(
        tmp_path, "imagefolder", ReadOptions(progress=False, patient_regex=r"^(?P<patient>.+)_\d+\.png$")
    )
    assert len(result.rows) == 12 and len({r["patient_id"] for r in result.rows}) == 6
    assert {r["grade"] for r in result.rows} == {"II", "IV", "healthy"}
    assert not any(n.startswith("no patient ids") for n in result.notes)
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert "cannot be read as an image" in reasons["scan.png"]


def test_imagefolder_regex_without_group_is_refused(tmp_path):
    _tif(tmp_path / "a" / "x_1.png")
    with pytest.raises(InputError, match="needs a group"):
        read_source(tmp_path, "imagefolder", ReadOptions(progress=False, patient_regex=r"x_\d"))


# --- manifest ------------------------------------------------------------------


def test_manifest_volumes_images_and_dicom_folders(tmp_path):
    write_nifti(tmp_path / "vols" / "a_t1ce.nii.gz")
    write_nifti(tmp_path / "vols" / "a_seg.nii.gz", dtype=np.uint8)
    _tif(tmp_path / "imgs" / "b.png", channels=1)
    write_dicom_series(tmp_path / "dicom" / "c", "IGNORED", description="AX FLAIR", n_slices=3)
    (tmp_path / "list.csv").write_text(
        "path,patient_id,label,mask,site,sequence\n"
        "vols/a_t1ce.nii.gz,A,IV,vols/a_seg.nii.gz,north,\n"
        "imgs/b.png,B,II,,south,T2\n"
        "dicom/c,C,III,,west,\n"
    )
    assert detect_format(tmp_path / "list.csv")[0] == "manifest"
    result = read_source(tmp_path / "list.csv", "auto", OPTIONS)
    rows = by(result.rows, "patient_id")
    assert (rows["A"]["kind"], rows["A"]["sequence"], rows["A"]["label"]) == ("volume", "T1c", "IV")
    assert rows["A"]["mask_path"] == str((tmp_path / "vols" / "a_seg.nii.gz").resolve())
    assert (rows["B"]["kind"], rows["B"]["sequence"], rows["B"]["rows"]) == ("image", "T2", 4)
    assert (rows["C"]["kind"], rows["C"]["sequence"], rows["C"]["n_slices"]) == ("series", "FLAIR", 3)
    assert {r["site"] for r in result.rows} == {"north", "south", "west"}  # other columns pass through


def test_manifest_without_required_columns(tmp_path):
    (tmp_path / "m.csv").write_text("file,label\nx.png,1\n")
    with pytest.raises(InputError, match="lacks column.*path, patient_id"):
        read_source(tmp_path / "m.csv", "manifest", OPTIONS)


# --- detection -----------------------------------------------------------------


def test_detection_refuses_mixed_trees_and_empty_folders(tmp_path):
    write_nifti(tmp_path / "mixed" / "a_t1.nii.gz")
    write_dicom_series(tmp_path / "mixed" / "d", n_slices=1)
    with pytest.raises(InputError, match="several kinds of files"):
        detect_format(tmp_path / "mixed")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        detect_format(tmp_path / "empty")
    with pytest.raises(InputError, match="does not exist"):
        detect_format(tmp_path / "nowhere")
    _tif(tmp_path / "loose" / "x.png")
    with pytest.raises(InputError, match="not in class folders"):
        detect_format(tmp_path / "loose")
