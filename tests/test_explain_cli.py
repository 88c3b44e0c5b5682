"""predict --explain and --dicom-gradcam with a trained run: NIfTI files and a Parametric Map in the study's geometry."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest

from glioscope.cli import main
from glioscope.cohort import series_files
from glioscope.io import dicom
from glioscope.io.study import read_study


def test_predict_writes_the_study_and_its_gradcam_in_the_series_geometry(tiny_2d_run, tiny_phantom, tmp_path, capsys):
    study = sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]
    folder, pm_file = tmp_path / "maps", tmp_path / "gradcam.dcm"
    capsys.readouterr()
    code = main(["predict", str(tiny_2d_run), str(study), "--explain", str(folder), "--dicom-gradcam", str(pm_file)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    patient = result["patients"][0]
    (entry,) = result["explained"]
    assert entry["class"] == patient["prediction"] and entry["patient_id"] == patient["patient_id"]
    image_file = folder / f"{patient['patient_id']}_image.nii.gz"
    cam_file = folder / f"{patient['patient_id']}_gradcam-{patient['prediction']}.nii.gz"
    assert sorted(folder.iterdir()) == sorted([image_file, cam_file])
    for written in (image_file, cam_file, pm_file):
        assert f"Written: {written}" in captured.err
    # The image is the sagittal series as stored: (columns, rows, slices), with the series' own affine.
    (row,) = [r for r in read_study(study).frame.to_dict("records") if "SAG" in str(r["path"])]
    pixels, geometry = dicom.load_series(row)
    image, cam = nib.load(image_file), nib.load(cam_file)
    assert np.array_equal(image.get_fdata(dtype=np.float32), pixels.transpose(2, 1, 0))
    assert np.allclose(image.affine, geometry.affine, atol=1e-4) and np.allclose(cam.affine, geometry.affine, atol=1e-4)
    values = cam.get_fdata(dtype=np.float32)
    assert values.shape == image.shape and values.min() >= 0 and values.max() == pytest.approx(1.0, abs=1e-6)
    assert list(np.unravel_index(int(np.argmax(values)), values.shape)) == entry["focus_voxel"]
    # The Parametric Map holds the same values, frame by frame over the series' instances.
    pm = pydicom.dcmread(pm_file)
    where = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: k for k, f in enumerate(series_files(row))}
    assert pm.StudyInstanceUID == pydicom.dcmread(series_files(row)[0]).StudyInstanceUID
    for frame, groups in zip(pm.pixel_array, pm.PerFrameFunctionalGroupsSequence):
        k = where[groups.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        assert np.allclose(frame, values[:, :, k].T, atol=1e-6)


def test_explanation_outputs_are_refused_where_they_cannot_be_made(
    tiny_2d_run, tiny_phantom, tmp_path, capsys, monkeypatch
):
    study = sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]
    nifti = sorted((tiny_phantom / "brats").rglob("*_t1.nii.gz"))[0]
    run = str(tiny_2d_run)
    assert main(["predict", run, str(nifti), "--dicom-gradcam", str(tmp_path / "a.dcm")]) == 2
    assert "is not a DICOM series" in capsys.readouterr().err and not (tmp_path / "a.dcm").exists()
    assert main(["predict", run, str(tiny_phantom / "dicom"), "--explain", str(tmp_path / "b")]) == 2
    assert "--explain writes one study's outputs" in capsys.readouterr().err and not (tmp_path / "b").exists()
    (tmp_path / "c").write_text("a file")
    assert main(["predict", run, str(study), "--explain", str(tmp_path / "c")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["predict", run, str(study), "--explain", str(study / "maps")]) == 2
    assert "inside the input" in capsys.readouterr().err and not (study / "maps").exists()
    assert main(["predict", run, str(study), "--explain", str(tmp_path / "d"), "--explain-class", "XX"]) == 2
    assert "the run's classes are" in capsys.readouterr().err
    from glioscope.trained import TrainedRun

    monkeypatch.setattr(TrainedRun, "kind", property(lambda self: "radiomics"))
    assert main(["predict", run, str(study), "--explain", str(tmp_path / "e")]) == 2
    assert "is a radiomics model" in capsys.readouterr().err and not (tmp_path / "e").exists()


def test_an_existing_explanation_file_is_kept_without_overwrite(tiny_2d_run, tiny_phantom, tmp_path, capsys):
    study = sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]
    folder = tmp_path / "maps"
    assert main(["predict", str(tiny_2d_run), str(study), "--explain", str(folder)]) == 0
    capsys.readouterr()
    (image,) = folder.glob("*_image.nii.gz")
    image.write_bytes(b"mine")
    assert main(["predict", str(tiny_2d_run), str(study), "--explain", str(folder)]) == 2
    assert "already exists" in capsys.readouterr().err and image.read_bytes() == b"mine"
    assert main(["predict", str(tiny_2d_run), str(study), "--explain", str(folder), "--overwrite"]) == 0
    assert nib.load(image).shape == nib.load(next(folder.glob("*_gradcam-*.nii.gz"))).shape
