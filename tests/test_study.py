"""One new study read by path (glioscope.io.study): the one road of predict, batch prediction and the web app."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from glioscope import cohort
from glioscope.errors import InputError
from glioscope.ingest import ingest
from glioscope.io.study import read_study
from glioscope.io.testing import write_dicom_series, write_nifti, write_study


def test_a_nifti_file_is_one_row_named_as_ingest_names_it(tmp_path):
    path = write_nifti(tmp_path / "IXI012-HH-1211-T1.nii.gz")
    study = read_study(path)
    assert list(study.frame["patient_id"]) == ["IXI012"]
    assert list(study.frame["sequence"]) == ["T1"] and list(study.frame["kind"]) == ["volume"]
    assert study.frame.loc[0, "mask_path"] == "" and study.skipped == []


def test_a_brats_case_folder_gives_its_volumes_with_the_segmentation_as_their_mask(tmp_path):
    case = tmp_path / "BraTS20_Training_007"
    for suffix in ("t1", "t1ce", "flair", "seg"):
        write_nifti(case / f"BraTS20_Training_007_{suffix}.nii.gz")
    frame = read_study(case).frame
    assert sorted(frame["sequence"]) == ["FLAIR", "T1", "T1c"]  # the segmentation is not a volume to predict
    assert set(frame["patient_id"]) == {"BraTS20_Training_007"}
    assert set(frame["mask_path"]) == {str(case / "BraTS20_Training_007_seg.nii.gz")}


def test_a_given_mask_is_every_rows_mask(tmp_path):
    image = tmp_path / "case_3.png"
    Image.fromarray(np.zeros((12, 10), np.uint8)).save(image)
    mask = tmp_path / "case_3_mask.png"
    Image.fromarray(np.zeros((12, 10), np.uint8)).save(mask)
    frame = read_study(image, mask).frame
    assert list(frame["kind"]) == ["image"] and (frame.loc[0, "rows"], frame.loc[0, "cols"]) == (12, 10)
    assert frame.loc[0, "mask_path"] == str(mask)


def test_a_dicom_study_gives_one_row_per_series_and_lists_what_it_skipped(tmp_path):
    series = write_study(tmp_path, "P042")
    stray = next(iter(series.values())) / "1-99.dcm"
    stray.write_bytes(b"DICM but truncated")
    study = read_study(tmp_path / "P042")
    assert len(study.frame) == 4 and set(study.frame["patient_id"]) == {"P042"}
    assert set(study.frame["source_format"]) == {"dicom"}
    assert any(s.path.endswith("1-99.dcm") for s in study.skipped)
    write_dicom_series(tmp_path / "single", "P7", "AX FLAIR")
    one = read_study(tmp_path / "single")
    assert list(one.frame["sequence"]) == ["FLAIR"]


def test_what_is_not_a_study_is_an_error_naming_the_path(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_study(tmp_path / "missing")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.txt").write_text("hello")
    with pytest.raises(InputError, match="found no DICOM series") as caught:
        read_study(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(caught.value)


def test_the_cohort_summary_says_whether_patients_have_ids(tmp_path):
    for label in ("II", "III"):
        for k in range(2):
            Image.fromarray(np.full((8, 8), 40 * k, np.uint8)).save(
                (tmp_path / "src" / label).mkdir(parents=True, exist_ok=True)
                or tmp_path / "src" / label / f"p{label}{k}_0.png"
            )
    ingest([tmp_path / "src"], tmp_path / "without", format="imagefolder", echo=None, progress=False)
    ingest(
        [tmp_path / "src"],
        tmp_path / "with",
        format="imagefolder",
        patient_regex=r"^(?P<patient>[^_]+)_",
        echo=None,
        progress=False,
    )
    assert json.loads((tmp_path / "without" / "summary.json").read_text())["patient_ids"] is False
    assert not cohort.has_patient_ids(tmp_path / "without") and cohort.has_patient_ids(tmp_path / "with")
    # A cohort ingested before the summary had the field says it in its notes only.
    legacy = json.loads((tmp_path / "without" / "summary.json").read_text())
    del legacy["patient_ids"]
    (tmp_path / "without" / "summary.json").write_text(json.dumps(legacy))
    assert not cohort.has_patient_ids(tmp_path / "without")
