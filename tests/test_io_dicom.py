"""DICOM trees written by the test: series grouping, slice order, plane and sequence, labels, loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid

from glioscope.cohort import series_files
from glioscope.errors import InputError
from glioscope.io import geometry, parallel
from glioscope.io.dicom import load_series
from glioscope.io.formats import ReadOptions, detect_format, read_source
from glioscope.io.sequences import dicom_sequence
from glioscope.io.testing import AXIAL, CORONAL, SAGITTAL, dicom_slice, write_dicom_series, write_study

OPTIONS = ReadOptions(progress=False, workers=1)
GRADES = {"900-00-1961": "II", "900-00-5299": "III", "HF0899": "IV"}


@pytest.fixture
def rembrandt(tmp_path) -> Path:
    """dicom/REMBRANDT/<patient>/<study>/<series>/1-NN.dcm for three patients, plus dicom/clinical.csv."""
    root = tmp_path / "dicom"
    for patient in GRADES:
        write_study(root / "REMBRANDT", patient, n_slices=3)
    lines = ["PatientID,Grade,Disease"] + [f"{p},{g},GLIOMA" for p, g in GRADES.items()]
    (root / "clinical.csv").write_text("\n".join(lines) + "\n")
    return root


def test_one_row_per_series_with_sequence_plane_and_grade(rembrandt):
    result = read_source(rembrandt, "dicom", OPTIONS)
    rows = {(r["patient_id"], r["series_description"]): r for r in result.rows}
    assert len(rows) == 12
    expected = {
        "SAG T1": ("T1", "sagittal"),
        "AX T1 POST GD": ("T1c", "axial"),
        "AX FLAIR": ("FLAIR", "axial"),
        "AX T2 FSE": ("T2", "axial"),
    }
    for (patient, description), row in rows.items():
        assert (row["sequence"], row["plane"]) == expected[description]
        assert row["label"] == row["grade"] == GRADES[patient]
        assert row["kind"] == "series" and row["n_slices"] == 3 and (row["rows"], row["cols"]) == (8, 8)
        assert row["spacing"] == "0.8,0.9,5"
        assert Path(row["path"]).is_absolute() and Path(row["path"]).name.split("-", 1)[1].startswith(description)
    assert any("clinical.csv" in note for note in result.notes)


def test_select_sagittal_t1_gives_one_series_per_patient(rembrandt, tmp_path):
    from glioscope.ingest import ingest

    frame, summary = ingest(
        [rembrandt], tmp_path / "cohort", select={"plane": ["sagittal"], "sequence": ["T1"]}, progress=False, echo=None
    )
    assert sorted(frame["patient_id"]) == sorted(GRADES)
    assert set(frame["series_description"]) == {"SAG T1"}
    assert summary["classes"] == {g: {"items": 1, "patients": 1} for g in GRADES.values()}
    assert (tmp_path / "cohort" / "cohort.csv").is_file()


def test_slices_sorted_along_normal_not_by_file_name(tmp_path):
    write_dicom_series(tmp_path / "s", n_slices=5, order=[3, 0, 4, 1, 2])
    (row,) = read_source(tmp_path, "dicom", OPTIONS).rows
    # File 1-02 holds slice 0, 1-04 slice 1, 1-05 slice 2, 1-01 slice 3, 1-03 slice 4.
    assert json.loads(row["files"]) == ["1-02.dcm", "1-04.dcm", "1-05.dcm", "1-01.dcm", "1-03.dcm"]
    volume, geo = load_series(row)
    assert volume.shape == (5, 8, 8) and volume.dtype == np.float32
    ramp = np.arange(64, dtype=np.float32).reshape(8, 8)
    for index in range(5):  # stored values ramp + index, then RescaleSlope 2 and RescaleIntercept -10
        np.testing.assert_array_equal(volume[index], (ramp + index) * 2 - 10)
    assert geo.spacing == pytest.approx((0.8, 0.9, 5.0))
    assert geo.affine[2, 2] == pytest.approx(5.0)  # axial stack: slices step along +z (S)


def test_instance_number_order_when_geometry_is_missing(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    study, series = generate_uid(), generate_uid()
    for name, index in (("a.dcm", 2), ("b.dcm", 0), ("c.dcm", 1)):
        ds = dicom_slice("P1", study, series, "SAG T1", index)
        del ds.ImagePositionPatient, ds.ImageOrientationPatient
        ds.save_as(folder / name, enforce_file_format=True)
    result = read_source(tmp_path, "dicom", OPTIONS)
    (row,) = result.rows
    assert json.loads(row["files"]) == ["b.dcm", "c.dcm", "a.dcm"]
    assert row["plane"] == "sagittal"  # from the description when the geometry is missing
    assert any("sorted by InstanceNumber" in note for note in result.notes)


def test_files_without_extension_and_without_preamble_are_read(tmp_path):
    write_dicom_series(tmp_path / "pacs", n_slices=2, suffix="")
    bare = dicom_slice("P1", generate_uid(), generate_uid(), "AX T2", 0)
    bare.save_as(tmp_path / "pacs" / "IM0099", enforce_file_format=False)  # no preamble, no 'DICM'
    (tmp_path / "pacs" / "index.json").write_text("{}")
    (tmp_path / ".DS_Store").write_bytes(b"\0\1")
    assert detect_format(tmp_path / "pacs")[0] == "dicom"
    (tmp_path / "pacs" / "1-01").unlink()
    (tmp_path / "pacs" / "1-02").unlink()
    assert detect_format(tmp_path / "pacs")[0] == "dicom"  # without any preamble too
    write_dicom_series(tmp_path / "pacs", n_slices=2, suffix="")
    result = read_source(tmp_path, "dicom", OPTIONS)
    assert sorted(r["n_slices"] for r in result.rows) == [1, 2]
    assert result.skipped == []  # sidecars are ignored, not skipped
    assert any("ignored 2 non-image file(s)" in note for note in result.notes)


def test_odd_sized_slice_is_skipped_and_the_majority_kept(tmp_path):
    study, series = generate_uid(), generate_uid()
    folder = tmp_path / "s"
    folder.mkdir()
    for index in range(3):
        dicom_slice("P1", study, series, "AX T1", index).save_as(folder / f"{index}.dcm", enforce_file_format=True)
    dicom_slice("P1", study, series, "AX T1", 3, rows=16).save_as(folder / "3.dcm", enforce_file_format=True)
    result = read_source(tmp_path, "dicom", OPTIONS)
    (row,) = result.rows
    assert row["n_slices"] == 3 and "3.dcm" not in row["files"]
    (skip,) = result.skipped
    assert skip.path.endswith("3.dcm") and "16x8" in skip.reason and "8x8" in skip.reason


def test_localizer_with_three_orientations_is_skipped(tmp_path):
    study, series = generate_uid(), generate_uid()
    folder = tmp_path / "loc"
    folder.mkdir()
    for index, orientation in enumerate((AXIAL, SAGITTAL, CORONAL)):
        ds = dicom_slice("P1", study, series, "3 PLANE LOC", index, orientation=orientation)
        ds.save_as(folder / f"{index}.dcm", enforce_file_format=True)
    write_dicom_series(tmp_path / "t1", n_slices=2)
    result = read_source(tmp_path, "dicom", OPTIONS)
    assert len(result.rows) == 1
    assert "different orientations" in result.skipped[0].reason


def test_parallel_scan_matches_serial(rembrandt, monkeypatch):
    serial = read_source(rembrandt, "dicom", OPTIONS).rows
    monkeypatch.setattr(parallel, "PARALLEL_MIN_FILES", 0)
    parallel_rows = read_source(rembrandt, "dicom", ReadOptions(progress=False, workers=2)).rows
    assert parallel_rows == serial


def test_auto_detects_dicom(rembrandt):
    assert detect_format(rembrandt)[0] == "dicom"


def test_load_series_names_the_damaged_file(tmp_path):
    write_dicom_series(tmp_path / "s", n_slices=2)
    (row,) = read_source(tmp_path, "dicom", OPTIONS).rows
    broken = series_files(row)[1]
    broken.write_bytes(broken.read_bytes()[:-50])
    with pytest.raises(InputError, match=broken.name):
        load_series(row)


@pytest.mark.parametrize(
    "orientation, plane",
    [
        (AXIAL, "axial"),
        (SAGITTAL, "sagittal"),
        (CORONAL, "coronal"),
        ((1, 0, 0, 0, 0.94, -0.34), "axial"),  # tilted 20 degrees: still axial
        ((1, 0, 0, 0, 0.707, -0.707), "oblique"),
        (None, "unknown"),
    ],
)
def test_plane_from_orientation(orientation, plane):
    assert geometry.plane_from_orientation(orientation) == plane


@pytest.mark.parametrize(
    "description, tags, sequence",
    [
        ("SAG T1", {}, "T1"),
        ("AX T1 POST GD", {}, "T1c"),
        ("AX T1", {"contrast_agent": "GADAVIST"}, "T1c"),
        ("T1 PRE GD", {}, "T1"),
        ("AX FLAIR", {}, "FLAIR"),
        ("AX T2 FSE", {}, "T2"),
        ("T1WCE", {}, "T1c"),
        ("MPRAGE", {}, "T1"),
        ("AX T1 +C", {}, "T1c"),
        ("SAG T1 FLAIR", {}, "T1"),
        ("PD AXIAL", {}, "PD"),
        ("AX T2* GRE", {}, "unknown"),
        ("DWI", {}, "unknown"),
        ("", {"inversion_time": 2500, "repetition_time": 9000, "echo_time": 120}, "FLAIR"),
        ("", {"repetition_time": 500, "echo_time": 12}, "T1"),
        ("", {"repetition_time": 4000, "echo_time": 100}, "T2"),
        ("", {}, "unknown"),
    ],
)
def test_sequence_inference(description, tags, sequence):
    assert dicom_sequence(description, **tags) == sequence


def test_copied_slices_are_skipped_as_duplicates(tmp_path):
    write_dicom_series(tmp_path / "a", n_slices=2)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    result = read_source(tmp_path, "dicom", OPTIONS)
    (row,) = result.rows
    assert row["path"] == str((tmp_path / "a").resolve()) and row["n_slices"] == 2
    assert sorted(Path(s.path).parent.name for s in result.skipped) == ["b", "b"]
    assert all("same SOPInstanceUID" in s.reason for s in result.skipped)
