"""Bad input: a skip listed in the summary or an InputError naming the file; no traceback, no partial output."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydicom.uid import generate_uid

from glioscope.errors import InputError
from glioscope.ingest import ingest
from glioscope.io.images import load_image
from glioscope.io.nifti import load_volume
from glioscope.io.testing import dicom_slice, write_dicom_series, write_nifti


def run(sources, tmp_path: Path, **options):
    """Ingest into tmp_path/cohort; return (summary, skipped.csv as {path: reason})."""
    out = tmp_path / "cohort"
    _, summary = ingest(sources if isinstance(sources, list) else [sources], out, progress=False, echo=None, **options)
    skipped = pd.read_csv(out / "skipped.csv", dtype=str)
    assert not list(tmp_path.glob(".*.partial"))
    return summary, dict(zip(skipped["path"], skipped["reason"]))


def assert_skipped(summary: dict, skipped_csv: dict, path: Path, *words: str):
    reasons = {s["path"]: s["reason"] for s in summary["skipped"]}
    key = str(path.resolve())
    assert key in reasons, f"{key} not in {list(reasons)}"
    for word in words:
        assert word in reasons[key]
    assert skipped_csv[key] == reasons[key]


def assert_refused(tmp_path: Path, sources, match: str, **options):
    with pytest.raises(InputError, match=match) as info:
        ingest(
            sources if isinstance(sources, list) else [sources],
            tmp_path / "cohort",
            progress=False,
            echo=None,
            **options,
        )
    assert not (tmp_path / "cohort").exists()
    assert not list(tmp_path.glob(".*.partial"))
    return info.value


@pytest.fixture
def dicom_tree(tmp_path) -> Path:
    """A good series to keep the cohort non-empty, beside which each test puts one bad file."""
    write_dicom_series(tmp_path / "tree" / "P1" / "good", n_slices=3)
    return tmp_path / "tree"


# --- DICOM -----------------------------------------------------------------------


def test_truncated_pixel_data(dicom_tree, tmp_path):
    bad = write_dicom_series(dicom_tree / "P2" / "cut", "P2", n_slices=2)[1]
    bad.write_bytes(bad.read_bytes()[:-40])
    summary, skipped = run(dicom_tree, tmp_path)
    assert_skipped(summary, skipped, bad, "truncated DICOM", "pixel data needs 128 bytes")
    assert summary["items"] == 2  # the good series and the rest of the cut one


def test_truncated_header(dicom_tree, tmp_path):
    bad = write_dicom_series(dicom_tree / "P2" / "cut", "P2", n_slices=1)[0]
    bad.write_bytes(bad.read_bytes()[:200])
    summary, skipped = run(dicom_tree, tmp_path)
    assert_skipped(summary, skipped, bad, "truncated or damaged DICOM")


def test_truncated_compressed_dicom(dicom_tree, tmp_path):
    from pydicom.data import get_testdata_file  # an RLE-compressed MR slice that ships with pydicom

    bad = dicom_tree / "P2" / "rle.dcm"
    bad.parent.mkdir()
    bad.write_bytes(Path(get_testdata_file("MR_small_RLE.dcm")).read_bytes()[:-3000])
    summary, skipped = run(dicom_tree, tmp_path)
    assert_skipped(summary, skipped, bad, "truncated or damaged DICOM", "End of file")


def test_dicom_without_pixel_data(dicom_tree, tmp_path):
    bad = dicom_tree / "P1" / "report.dcm"
    dicom_slice("P1", generate_uid(), generate_uid(), "SR", 0, pixels=False).save_as(bad, enforce_file_format=True)
    summary, skipped = run(dicom_tree, tmp_path)
    assert_skipped(summary, skipped, bad, "without pixel data")


def test_non_dicom_files_in_the_tree(dicom_tree, tmp_path):
    fake = dicom_tree / "P1" / "good" / "fake.dcm"
    fake.write_text("this is not DICOM")
    blob = dicom_tree / "P1" / "IM000123"
    blob.write_bytes(bytes(range(256)) * 4)
    sidecar = dicom_tree / "P1" / "notes.txt"
    sidecar.write_text("scanner notes")
    summary, skipped = run(dicom_tree, tmp_path)
    assert_skipped(summary, skipped, fake, "not a DICOM file")
    assert_skipped(summary, skipped, blob, "not a DICOM file")
    assert str(sidecar.resolve()) not in skipped  # sidecars are expected, only counted
    assert any("ignored 1 non-image file" in n for n in summary["notes"])


def test_series_with_slices_of_different_sizes(dicom_tree, tmp_path):
    folder = dicom_tree / "P3" / "mixed"
    folder.mkdir(parents=True)
    study, series = generate_uid(), generate_uid()
    for index, rows in enumerate((8, 8, 16, 16)):
        dicom_slice("P3", study, series, "AX T1", index, rows=rows).save_as(
            folder / f"{index}.dcm", enforce_file_format=True
        )
    summary, skipped = run(dicom_tree, tmp_path)
    assert_skipped(summary, skipped, folder, "slices differ in size", "2 of 8x8", "2 of 16x8", "no majority")
    assert summary["patients"] == 1


def test_tree_of_only_bad_files_is_refused(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.dcm").write_bytes(b"\0" * 10)
    error = assert_refused(tmp_path, tree, "no images found", format="dicom")
    assert "a.dcm" in str(error) and "not a DICOM file" in str(error)


# --- NIfTI -----------------------------------------------------------------------


@pytest.fixture
def nifti_tree(tmp_path) -> Path:
    write_nifti(tmp_path / "cases" / "good" / "good_t1.nii.gz")
    return tmp_path / "cases"


def test_unreadable_nifti(nifti_tree, tmp_path):
    bad = nifti_tree / "bad" / "bad_t1.nii.gz"
    bad.parent.mkdir()
    bad.write_bytes(b"garbage, not gzip at all" * 10)
    summary, skipped = run(nifti_tree, tmp_path)
    assert_skipped(summary, skipped, bad, "cannot be read as NIfTI")


def test_truncated_nifti(nifti_tree, tmp_path):
    bad = write_nifti(nifti_tree / "cut" / "cut_t1.nii.gz", shape=(40, 40, 40))
    bad.write_bytes(bad.read_bytes()[:-200])
    summary, skipped = run(nifti_tree, tmp_path)
    assert_skipped(summary, skipped, bad, "cannot be read as NIfTI")


def test_uncompressed_nifti_cut_short(nifti_tree, tmp_path):
    bad = write_nifti(nifti_tree / "cut" / "cut_t2.nii")
    bad.write_bytes(bad.read_bytes()[:-100])
    summary, skipped = run(nifti_tree, tmp_path)
    assert_skipped(summary, skipped, bad, "cannot be read as NIfTI")


def test_nifti_with_nan(nifti_tree, tmp_path):
    bad = write_nifti(nifti_tree / "nan" / "nan_flair.nii.gz", dtype=np.float32, first_voxel=np.nan)
    summary, skipped = run(nifti_tree, tmp_path)
    assert_skipped(summary, skipped, bad, "1 NaN or infinite voxel")
    with pytest.raises(InputError, match="nan_flair.nii.gz: contains 1 NaN"):
        load_volume(bad)


@pytest.mark.parametrize("shape, dims", [((8, 9), "2D"), ((4, 4, 4, 2, 2), "5D")])
def test_nifti_of_the_wrong_shape(nifti_tree, tmp_path, shape, dims):
    bad = write_nifti(nifti_tree / "odd" / "odd_t1.nii.gz", shape=shape)
    summary, skipped = run(nifti_tree, tmp_path)
    assert_skipped(summary, skipped, bad, f"expected a 3D volume, got {dims}")


def test_ixi_file_with_nan(tmp_path):
    write_nifti(tmp_path / "ixi" / "IXI002-Guys-0828-T1.nii.gz")
    bad = write_nifti(tmp_path / "ixi" / "IXI003-Guys-0829-T1.nii.gz", dtype=np.float64, first_voxel=np.inf)
    summary, skipped = run(tmp_path / "ixi", tmp_path)
    assert_skipped(summary, skipped, bad, "NaN or infinite")


def test_loaders_name_the_file(tmp_path):
    flat = write_nifti(tmp_path / "flat.nii.gz", shape=(8, 9))
    with pytest.raises(InputError, match="flat.nii.gz: expected a 3D volume"):
        load_volume(flat)
    fake = tmp_path / "fake.png"
    fake.write_text("no")
    with pytest.raises(InputError, match="fake.png: cannot be read as an image"):
        load_image(fake)


# --- folders, labels, manifests --------------------------------------------------------


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    error = assert_refused(tmp_path, tmp_path / "empty", "no images found")
    assert error.path == str((tmp_path / "empty").resolve())


def test_missing_source(tmp_path):
    assert_refused(tmp_path, tmp_path / "nowhere", "does not exist")


def test_labels_that_match_no_patient(nifti_tree, tmp_path):
    csv = tmp_path / "clinical.csv"
    csv.write_text("PatientID,Grade\nHF0899,IV\nHF1001,II\n")
    error = assert_refused(tmp_path, nifti_tree, "no id in column 'PatientID' matches", labels=csv)
    assert error.path == str(csv) and "'HF0899'" in str(error) and "'good'" in str(error)


def test_labels_csv_that_is_not_a_csv(nifti_tree, tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_bytes(gzip.compress(b"binary"))
    assert_refused(tmp_path, nifti_tree, "labels.csv: cannot be read as a CSV", labels=csv)


def test_manifest_pointing_at_a_missing_file(tmp_path):
    write_nifti(tmp_path / "data" / "a_t1.nii.gz")
    manifest = tmp_path / "data" / "manifest.csv"
    manifest.write_text("path,patient_id,label\na_t1.nii.gz,A,II\nb_t1.nii.gz,B,III\n")
    summary, skipped = run(manifest, tmp_path)
    assert_skipped(summary, skipped, tmp_path / "data" / "b_t1.nii.gz", "line 3 of manifest.csv but not found")
    assert summary["patients"] == 1


def test_manifest_of_only_missing_files(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,patient_id,label\nnope.nii.gz,A,II\n")
    assert_refused(tmp_path, manifest, "no images found.*nope.nii.gz.*not found")
