"""The readers recover the phantom's ground truth (truth.csv) from every layout it writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from glioscope import cohort
from glioscope.errors import InputError
from glioscope.ingest import ingest
from glioscope.io.formats import detect_format

synth = pytest.importorskip("glioscope.synth")
if not hasattr(synth, "synthesize"):
    pytest.skip("the phantom generator is not available", allow_module_level=True)

PATIENT_REGEX = r"^(?P<patient>.+)_\d+\.png$"
BRATS_GRADE = {"II": "LGG", "III": "LGG", "IV": "HGG"}  # how BraTS' name_mapping.csv groups WHO grades


@pytest.fixture(scope="module")
def truth(tiny_phantom) -> pd.DataFrame:
    return pd.read_csv(tiny_phantom / "truth.csv", dtype=str, keep_default_na=False)


def read(folder: Path, **options) -> tuple[pd.DataFrame, dict]:
    return ingest([folder], None, progress=False, echo=None, **options)


def truth_map(truth: pd.DataFrame, id_column: str, value_column: str) -> dict[str, str]:
    rows = truth[truth[id_column] != ""]
    return dict(zip(rows[id_column], rows[value_column]))


def patient_labels(frame: pd.DataFrame, column: str = "label") -> dict[str, str]:
    per_patient = frame.groupby("patient_id")[column].agg(set)
    assert (per_patient.map(len) == 1).all(), "a patient has more than one label"
    return {patient: next(iter(values)) for patient, values in per_patient.items()}


@pytest.mark.parametrize(
    "layout, expected",
    [
        ("dicom", "dicom"),
        ("rsna-miccai", "rsna-miccai"),
        ("brats", "brats"),
        ("ixi", "ixi"),
        ("imagefolder", "imagefolder"),
    ],
)
def test_auto_detection_per_layout(tiny_phantom, layout, expected):
    assert detect_format(tiny_phantom / layout)[0] == expected


def test_phantom_root_is_refused_as_mixed(tiny_phantom):
    with pytest.raises(InputError, match="several kinds of files"):
        detect_format(tiny_phantom)


def test_rembrandt_dicom_patients_grades_and_sagittal_t1(tiny_phantom, truth):
    frame, _ = read(tiny_phantom / "dicom")
    assert patient_labels(frame) == truth_map(truth, "dicom_patient_id", "grade")
    assert patient_labels(frame, "grade") == truth_map(truth, "dicom_patient_id", "grade")
    assert set(frame["sequence"]) == {"T1", "T1c", "T2", "FLAIR"}
    selected = cohort.select(frame, cohort.parse_selection("plane=sagittal,sequence=T1"))  # ingest's --select
    assert sorted(selected["patient_id"]) == sorted(truth_map(truth, "dicom_patient_id", "grade"))
    assert selected["patient_id"].is_unique and (selected["n_slices"] > 1).all()
    assert set(selected["series_description"]) == {"SAG T1"}


def test_rsna_patients_mgmt_planes_and_missing_sequences(tiny_phantom, truth):
    frame, summary = read(tiny_phantom / "rsna-miccai")
    assert patient_labels(frame) == truth_map(truth, "rsna_id", "mgmt")
    assert patient_labels(frame, "mgmt") == truth_map(truth, "rsna_id", "mgmt")
    folders = {"FLAIR": "FLAIR", "T1w": "T1", "T1wCE": "T1c", "T2w": "T2"}
    for _, subject in truth[truth["rsna_id"] != ""].iterrows():
        rows = frame[frame["patient_id"] == subject["rsna_id"]]
        planes = dict(item.split("=") for item in subject["rsna_planes"].split(";") if item)
        missing = set(filter(None, subject["rsna_missing_sequence"].split(";")))
        expected = {folders[f]: plane for f, plane in planes.items() if f not in missing}
        assert dict(zip(rows["sequence"], rows["plane"])) == expected
        for folder in missing:
            assert any(subject["rsna_id"] in note and folder in note for note in summary["notes"])


def test_brats_patients_grades_and_masks(tiny_phantom, truth):
    frame, _ = read(tiny_phantom / "brats")
    expected = {case: BRATS_GRADE[grade] for case, grade in truth_map(truth, "brats_id", "grade").items()}
    assert patient_labels(frame) == expected
    assert (frame.groupby("patient_id")["sequence"].agg(frozenset) == frozenset({"T1", "T1c", "T2", "FLAIR"})).all()
    assert all(Path(m).name.endswith("_seg.nii.gz") for m in frame["mask_path"])
    assert set(frame["source_split"]) == {"Training"}


def test_ixi_patients_are_healthy(tiny_phantom, truth):
    frame, _ = read(tiny_phantom / "ixi")
    expected = {ixi.split("-")[0]: "healthy" for ixi in truth["ixi_id"] if ixi}
    assert patient_labels(frame) == expected
    assert set(frame["sequence"]) == {"T1", "T2"}


def test_imagefolder_patients_with_regex(tiny_phantom, truth):
    frame, summary = read(tiny_phantom / "imagefolder", patient_regex=PATIENT_REGEX)
    assert patient_labels(frame) == truth_map(truth, "imagefolder_patient", "grade")
    assert not any(note.startswith("no patient ids") for note in summary["notes"])


def test_brats_plus_ixi_as_one_cohort(tiny_phantom, truth, tmp_path):
    frame, summary = ingest(
        [tiny_phantom / "brats", tiny_phantom / "ixi"], tmp_path / "cohort", progress=False, echo=None
    )
    n_brats = (truth["brats_id"] != "").sum()
    n_ixi = (truth["ixi_id"] != "").sum()
    assert summary["patients"] == n_brats + n_ixi
    grades = {BRATS_GRADE[g] for g in truth_map(truth, "brats_id", "grade").values()}
    assert set(summary["classes"]) == grades | {"healthy"}
    assert summary["classes"]["healthy"]["patients"] == n_ixi
    assert (tmp_path / "cohort" / "summary.txt").is_file()
