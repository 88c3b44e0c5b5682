"""The phantom cohort generator: layouts, DICOM tags and geometry, labels, determinism, knobs."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image

from glioscope.errors import InputError
from glioscope.synth import LAYOUTS, PRESETS, dicom_writer, make_montage, synthesize, tumour
from glioscope.synth import cohort as synth_cohort
from glioscope.synth.geometry import SliceStack
from glioscope.synth.plan import plan
from glioscope.synth.subject import SubjectSpec, simulate

TINY = PRESETS["tiny"]
BRATS = "brats/MICCAI_BraTS2020_TrainingData"


@pytest.fixture(scope="module")
def truth(tiny_phantom) -> pd.DataFrame:
    return pd.read_csv(tiny_phantom / "truth.csv", dtype=str, keep_default_na=False)


def _centre(row) -> np.ndarray:
    return np.array([float(row[f"centre_{axis}_mm"]) for axis in "xyz"])


def _read_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def _value_at(image: sitk.Image, point_ras: np.ndarray) -> float:
    """The image value at a RAS point (SimpleITK works in LPS)."""
    index = image.TransformPhysicalPointToIndex([float(v) for v in point_ras * [-1, -1, 1]])
    assert all(0 <= i < n for i, n in zip(index, image.GetSize())), f"{index} outside {image.GetSize()}"
    return float(sitk.GetArrayViewFromImage(image)[index[::-1]])


# --- layouts -------------------------------------------------------------------


def test_every_layout_has_the_expected_files_per_class(tiny_phantom, truth):
    counts = truth["grade"].value_counts().to_dict()
    assert counts == {"II": 3, "III": 3, "IV": 3, "healthy": 3}
    manifest = json.loads((tiny_phantom / "synth.json").read_text())
    assert list(manifest["layouts"]) == list(LAYOUTS)
    assert manifest["counts"] == counts
    for layout, folder in manifest["layouts"].items():
        assert (tiny_phantom / folder).is_dir(), layout

    patients = sorted(p.name for p in (tiny_phantom / "dicom/REMBRANDT").iterdir())
    assert patients == sorted(truth.loc[truth.grade != "healthy", "dicom_patient_id"])
    for patient in patients:
        (study,) = (tiny_phantom / "dicom/REMBRANDT" / patient).iterdir()
        assert re.fullmatch(r"\d{2}-\d{2}-\d{4}-[^/]+-\d{5}", study.name)
        series = sorted(study.iterdir())
        assert len(series) == 4 and all(re.fullmatch(r"\d+\.000000-[^/]+-\d{5}", s.name) for s in series)
        for folder in series:
            names = [f.name for f in folder.iterdir()]
            assert names and all(re.fullmatch(r"1-\d{2,}\.dcm", n) for n in names)
    clinical = pd.read_csv(tiny_phantom / "dicom/clinical.csv", dtype=str)
    assert list(clinical.columns) == ["PatientID", "Grade", "Disease"]
    assert clinical["Grade"].value_counts().to_dict() == {"II": 3, "III": 3, "IV": 3}
    assert set(clinical.loc[clinical.Grade == "IV", "Disease"]) == {"GBM"}

    rsna = tiny_phantom / "rsna-miccai"
    assert (rsna / "train_labels.csv").read_text().splitlines()[0] == "BraTS21ID,MGMT_value"
    labels = pd.read_csv(rsna / "train_labels.csv", dtype=str)
    ids = sorted(p.name for p in (rsna / "train").iterdir())
    assert ids == sorted(labels["BraTS21ID"]) == sorted(truth.loc[truth.grade == "IV", "rsna_id"])
    assert all(re.fullmatch(r"\d{5}", i) for i in ids)
    for _, row in truth[truth.grade == "IV"].iterrows():
        assert labels.set_index("BraTS21ID").loc[row.rsna_id, "MGMT_value"] == row.mgmt
        folders = {p.name for p in (rsna / "train" / row.rsna_id).iterdir()}
        expected = {"FLAIR", "T1w", "T1wCE", "T2w"} - {row.rsna_missing_sequence}
        assert folders == expected
        for folder in folders:
            assert all(
                re.fullmatch(r"Image-\d+\.dcm", f.name) for f in (rsna / "train" / row.rsna_id / folder).iterdir()
            )
    missing = manifest["outputs"]["rsna-miccai"]["missing_sequences"]
    assert len(missing) >= 1 and set(missing.values()) <= {"FLAIR", "T1w", "T1wCE", "T2w"}

    cases = sorted(p.name for p in (tiny_phantom / BRATS).iterdir() if p.is_dir())
    assert cases == sorted(truth.loc[truth.grade != "healthy", "brats_id"])
    for case in cases:
        assert sorted(f.name for f in (tiny_phantom / BRATS / case).iterdir()) == sorted(
            f"{case}_{s}.nii.gz" for s in ("t1", "t1ce", "t2", "flair", "seg")
        )
    mapping = pd.read_csv(tiny_phantom / BRATS / "name_mapping.csv", dtype=str, keep_default_na=False)
    assert list(mapping.columns) == [
        "Grade",
        "BraTS_2017_subject_ID",
        "BraTS_2018_subject_ID",
        "TCGA_TCIA_subject_ID",
        "BraTS_2019_subject_ID",
        "BraTS_2020_subject_ID",
    ]
    assert mapping["Grade"].value_counts().to_dict() == {"LGG": 6, "HGG": 3}

    ixi = sorted(f.name for f in (tiny_phantom / "ixi").iterdir())
    assert len(ixi) == 6 and all(re.fullmatch(r"IXI\d{3}-(Guys|HH|IOP)-\d{4}-T[12]\.nii\.gz", n) for n in ixi)
    assert {n[: -len("-T1.nii.gz")] for n in ixi} == set(truth.loc[truth.grade == "healthy", "ixi_id"])


def test_image_folder_holds_8bit_slices_per_class(tiny_phantom, truth):
    root = tiny_phantom / "imagefolder"
    assert sorted(p.name for p in root.iterdir()) == sorted(["II", "III", "IV", "healthy"])
    for grade in ("II", "III", "IV", "healthy"):
        files = sorted((root / grade).glob("*.png"))
        assert len(files) == 3 * TINY.png_slices
        patients = {f.name.rsplit("_", 1)[0] for f in files}
        assert patients == set(truth.loc[truth.grade == grade, "imagefolder_patient"])
        image = Image.open(files[0])
        assert image.mode == "L" and image.size == (TINY.png_size, TINY.png_size)
        assert np.asarray(image).max() > 200  # windowed to use the 8-bit range


def test_truth_and_manifest_document_the_model(tiny_phantom, truth):
    manifest = json.loads((tiny_phantom / "synth.json").read_text())
    assert manifest["seed"] == 0 and manifest["preset"] == "tiny" and manifest["preset_settings"]["voxel_mm"] == 4
    assert "difficulty_formula" in manifest["model"] and "mgmt_formula" in manifest["model"]
    assert set(manifest["model"]["parameters"]) == set(tumour.PARAMETERS)
    tumours = truth[truth.grade != "healthy"]
    assert (tumours[["centre_x_mm", "centre_y_mm", "centre_z_mm"]] != "").all().all()
    assert set(truth.loc[truth.grade == "IV", "mgmt"]) <= {"0", "1"}
    assert set(truth.loc[truth.grade != "IV", "mgmt"]) == {""}
    assert (tiny_phantom / "montage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- DICOM ---------------------------------------------------------------------


def test_dicom_files_carry_the_tags_readers_need(tiny_phantom):
    files = sorted((tiny_phantom / "dicom").rglob("*.dcm")) + sorted((tiny_phantom / "rsna-miccai").rglob("*.dcm"))
    sop_uids = set()
    studies: dict[str, set] = {}
    for path in files[::7]:
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.SOPClassUID == pydicom.uid.MRImageStorage == ds.file_meta.MediaStorageSOPClassUID
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert ds.Modality == "MR" and ds.MRAcquisitionType == "2D" and ds.SamplesPerPixel == 1
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12, 11, 0)
        assert (ds.RescaleSlope, ds.RescaleIntercept) == (1, 0)
        for keyword in (
            "PatientID",
            "PatientName",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "FrameOfReferenceUID",
            "StudyDate",
            "SeriesDescription",
            "SeriesNumber",
            "InstanceNumber",
            "ImageOrientationPatient",
            "ImagePositionPatient",
            "SliceLocation",
            "PixelSpacing",
            "SliceThickness",
            "SpacingBetweenSlices",
            "RepetitionTime",
            "EchoTime",
            "ScanningSequence",
            "MagneticFieldStrength",
        ):
            assert keyword in ds, f"{path}: {keyword} missing"
        pixels = ds.pixel_array
        assert pixels.dtype == np.uint16 and pixels.shape == (ds.Rows, ds.Columns) and pixels.max() < 4096
        description = str(ds.SeriesDescription)
        assert ("ContrastBolusAgent" in ds) == (description in ("AX T1 POST GD", "T1wCE"))
        assert ("InversionTime" in ds) == ("FLAIR" in description)
        assert ds.SOPInstanceUID not in sop_uids
        sop_uids.add(ds.SOPInstanceUID)
        studies.setdefault(ds.StudyInstanceUID, set()).add((ds.PatientID, ds.FrameOfReferenceUID))
    assert all(len(v) == 1 for v in studies.values())  # one patient and frame of reference per study


def test_instance_numbers_do_not_always_follow_position(tiny_phantom):
    disordered = 0
    for folder in (tiny_phantom / "dicom/REMBRANDT").glob("*/*/*"):
        headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(folder.iterdir())]
        normal = np.cross(*np.reshape(np.array(headers[0].ImageOrientationPatient, float), (2, 3)))
        by_number = sorted(headers, key=lambda d: int(d.InstanceNumber))
        positions = [float(np.dot(normal, np.array(d.ImagePositionPatient, float))) for d in by_number]
        disordered += not np.all(np.diff(positions) > 0)
    assert disordered > 0


def test_dicom_geometry_puts_the_tumour_where_truth_says(tiny_phantom, truth):
    for _, row in truth[truth.grade == "IV"].iterrows():
        centre = _centre(row)
        study = next((tiny_phantom / "dicom/REMBRANDT" / row.dicom_patient_id).iterdir())
        series = {folder.name.split("-")[1]: folder for folder in study.iterdir()}
        t1c = _read_series(series["AX T1 POST GD"])
        array = sitk.GetArrayFromImage(t1c)
        brain_level = np.percentile(array[array > 0.2 * array.max()], 50)
        assert _value_at(t1c, centre) < brain_level  # necrotic / non-enhancing centre is dark
        # ...inside a rim brighter than white matter.
        index = t1c.TransformPhysicalPointToIndex([float(v) for v in centre * [-1, -1, 1]])
        reach = int(np.ceil((float(row.radius_mm) * 1.5) / t1c.GetSpacing()[0]))
        plane = array[
            index[2], max(index[1] - reach, 0) : index[1] + reach + 1, max(index[0] - reach, 0) : index[0] + reach + 1
        ]
        assert plane.max() > 1.3 * brain_level
        # The sagittal T1 maps the same point to hypointense tumour too.
        sagittal = _read_series(series["SAG T1"])
        assert _value_at(sagittal, centre) < np.percentile(sitk.GetArrayViewFromImage(sagittal), 99) * 0.6


def test_rsna_series_in_every_plane_are_geometrically_right(tiny_phantom, truth):
    planes = set()
    for _, row in truth[truth.grade == "IV"].iterrows():
        folder = tiny_phantom / "rsna-miccai/train" / row.rsna_id
        for series in folder.iterdir():
            header = pydicom.dcmread(next(series.iterdir()), stop_before_pixels=True)
            assert header.PatientID == row.rsna_id and header.SeriesDescription == series.name
            orientation = np.round(np.abs(np.array(header.ImageOrientationPatient, float)))
            planes.add(tuple(np.cross(orientation[:3], orientation[3:]).astype(int)))
            if series.name == "T2w":
                image = _read_series(series)
                array = sitk.GetArrayViewFromImage(image)
                assert _value_at(image, _centre(row)) > np.percentile(array[array > 0.1 * array.max()], 75)
    assert len(planes) >= 2  # axial plus sagittal and/or coronal series


def test_written_files_equal_what_pydicom_save_as_writes(tmp_path):
    stack = SliceStack(
        pixels=np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5),
        positions=np.array([[0.0, 0.0, 2.0 * k] for k in range(3)]),
        orientation=np.array([1.0, 0, 0, 0, 1, 0]),
        pixel_spacing=(2.0, 2.0),
        thickness=2.0,
    )
    study = dicom_writer.Study("P1", "P1", dicom_writer.uid(1), dicom_writer.uid(2), "20000101", "MRI", "F", "050Y")
    protocol = dicom_writer.PROTOCOLS["FLAIR"]
    series_uid = dicom_writer.uid(3)
    numbers = np.array([3, 1, 2])
    dicom_writer.write_series(
        tmp_path, stack, study, protocol, 4, "AX FLAIR", series_uid, numbers, lambda n: f"{n}.dcm"
    )
    for k, number in enumerate(numbers):
        ds = dicom_writer.series_dataset(stack, study, protocol, 4, "AX FLAIR", series_uid)
        ds.update(dicom_writer.slice_dataset(stack, k, int(number), series_uid))
        ds.file_meta = dicom_writer.file_meta(ds.SOPInstanceUID)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        assert (tmp_path / f"{number}.dcm").read_bytes() == buffer.getvalue()
        assert np.array_equal(pydicom.dcmread(tmp_path / f"{number}.dcm").pixel_array, stack.pixels[k])


# --- NIfTI and labels ----------------------------------------------------------


def test_brats_segmentation_follows_the_convention_and_the_truth(tiny_phantom, truth):
    voxel_ml = TINY.voxel_mm**3 / 1000
    for _, row in truth[truth.grade != "healthy"].iterrows():
        case = tiny_phantom / BRATS / row.brats_id
        seg_image = nib.load(case / f"{row.brats_id}_seg.nii.gz")
        seg = np.asarray(seg_image.dataobj)
        assert seg.dtype == np.uint8 and set(np.unique(seg)) <= {0, 1, 2, 4}
        assert nib.aff2axcodes(seg_image.affine) == ("L", "P", "S")  # stored like real BraTS
        assert (seg == 1).sum() * voxel_ml == pytest.approx(
            float(row.necrosis_ml) + float(row.non_enhancing_ml), abs=1e-3
        )
        assert (seg == 4).sum() * voxel_ml == pytest.approx(float(row.enhancing_ml), abs=1e-3)
        inverse = np.linalg.inv(seg_image.affine)
        index = tuple(np.rint(inverse[:3, :3] @ _centre(row) + inverse[:3, 3]).astype(int))
        assert seg[index] in (1, 4)
        t1ce_image = nib.load(case / f"{row.brats_id}_t1ce.nii.gz")
        t1ce = np.asarray(t1ce_image.dataobj)
        assert np.allclose(t1ce_image.affine, seg_image.affine) and t1ce.shape == seg.shape
        assert (t1ce[seg > 0] > 0).mean() > 0.99  # skull-stripped: brain kept...
        assert t1ce[0].max() == 0 and t1ce[:, :, -1].max() == 0  # ...air exactly zero
        if row.grade == "IV" and float(row.enhancement) > 0.3:
            assert (seg == 4).any()
        if row.grade == "II" and float(row.enhancement) == 0:
            assert not (seg == 4).any()
    grade_ii = truth[truth.grade == "II"]
    assert (grade_ii.enhancement.astype(float) == 0).any()  # the check above did run


def test_ixi_volumes_are_unstripped_healthy_heads(tiny_phantom, truth):
    records = {r.ids.get("ixi"): r for r in plan(TINY, 0)}
    for ixi_id in truth.loc[truth.grade == "healthy", "ixi_id"]:
        t1 = nib.load(tiny_phantom / "ixi" / f"{ixi_id}-T1.nii.gz")
        assert t1.get_data_dtype() == np.int16 and nib.aff2axcodes(t1.affine)[2] in ("L", "R")  # sagittal slices
        subject = simulate(records[ixi_id].spec, TINY.voxel_mm, 0.35, 0.5)
        stored = np.asarray(nib.as_closest_canonical(t1).dataobj)
        assert np.array_equal(stored, np.rint(subject.images["T1"]).astype(np.int16))
        scalp = subject.head & ~subject.brain
        assert scalp.sum() > 0.3 * subject.brain.sum()
        assert np.percentile(stored[scalp], 95) > np.median(stored[subject.brain])  # bright fat outside the brain


# --- determinism, knobs, safety ------------------------------------------------


def test_same_seed_same_pixels_and_overwrite_replaces(tiny_phantom, tmp_path):
    out = tmp_path / "again"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    synthesize(out, preset="tiny", seed=0, layouts=["dicom", "brats"], overwrite=True, progress=False)
    assert not (out / "stale.txt").exists() and not (out / "ixi").exists()
    first = sorted((tiny_phantom / "dicom").rglob("*.dcm"))[5]
    second = out / first.relative_to(tiny_phantom)
    assert first.read_bytes() == second.read_bytes()  # pixels, UIDs, everything
    case = sorted(p for p in (tiny_phantom / BRATS).iterdir() if p.is_dir())[0]
    for name in (f"{case.name}_flair.nii.gz", f"{case.name}_seg.nii.gz"):
        a = np.asarray(nib.load(case / name).dataobj)
        b = np.asarray(nib.load(out / BRATS / case.name / name).dataobj)
        assert np.array_equal(a, b)


def test_another_seed_gives_other_pixels():
    spec = SubjectSpec(index=0, grade="IV", methylated=False, seed=0)
    a = simulate(spec, TINY.voxel_mm, 0.35, 0.5)
    b = simulate(spec, TINY.voxel_mm, 0.35, 0.5)
    c = simulate(SubjectSpec(index=0, grade="IV", methylated=False, seed=1), TINY.voxel_mm, 0.35, 0.5)
    assert np.array_equal(a.images["T1c"], b.images["T1c"]) and np.array_equal(a.seg, b.seg)
    assert not np.array_equal(a.images["T1c"], c.images["T1c"])


def test_mgmt_effect_zero_leaves_no_signal():
    kwargs = dict(index=4, grade="IV", seed=3)
    for effect, same in ((0.0, True), (1.0, False)):
        methylated = simulate(SubjectSpec(methylated=True, **kwargs), TINY.voxel_mm, 0.35, effect)
        unmethylated = simulate(SubjectSpec(methylated=False, **kwargs), TINY.voxel_mm, 0.35, effect)
        assert methylated.params == unmethylated.params if same else methylated.params != unmethylated.params
        for sequence in ("T1", "T1c", "T2", "FLAIR"):
            assert np.array_equal(methylated.images[sequence], unmethylated.images[sequence]) == same


def test_mgmt_effect_shifts_oedema_necrosis_and_enhancement_by_that_many_sd():
    plain = tumour.sample_parameters("IV", np.random.default_rng(5), 0.2, 0.5, methylated=False)
    shifted = tumour.sample_parameters("IV", np.random.default_rng(5), 0.2, 0.5, methylated=True)
    for name, (_, sd, low, high, _) in tumour.PARAMETERS.items():
        if name in tumour.MGMT_PARAMETERS:
            assert low < plain[name] < high  # unclipped, so the shift shows in full
            assert shifted[name] == pytest.approx(max(plain[name] - 0.5 * sd * (1 + 2 * 0.2), low))
        else:
            assert shifted[name] == plain[name]
    assert set(tumour.MGMT_PARAMETERS) == {"oedema_mm", "necrosis", "enhancement"}


def test_a_perfect_reading_at_the_default_mgmt_effect_reaches_an_auc_of_about_072():
    # The ceiling docs/data.md gives: a logistic regression on the three shifted parameters of 6,000
    # draws (0.73 without the clipping, Phi(0.5 * sqrt(3/2))).
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    methylated = np.arange(6000) % 2 == 1
    draws = [tumour.sample_parameters("IV", rng, 0.35, 0.5, bool(m)) for m in methylated]
    x = np.array([[d[name] for name in tumour.MGMT_PARAMETERS] for d in draws])
    fit = LogisticRegression(max_iter=1000).fit(x[:3000], methylated[:3000])
    auc = roc_auc_score(methylated[3000:], fit.decision_function(x[3000:]))
    assert 0.70 < auc < 0.74, auc


def test_strong_mgmt_effect_shows_in_the_lesion():
    # Methylated at a strong effect: a solid, non-enhancing mass without oedema; the same
    # tumour unmethylated keeps its enhancing rim, necrotic core and oedema.
    kwargs = dict(index=4, grade="IV", seed=3)
    methylated = simulate(SubjectSpec(methylated=True, **kwargs), TINY.voxel_mm, 0.35, 5.0)
    unmethylated = simulate(SubjectSpec(methylated=False, **kwargs), TINY.voxel_mm, 0.35, 5.0)
    assert methylated.volumes_ml["enhancing_ml"] == methylated.volumes_ml["oedema_ml"] == 0
    assert methylated.volumes_ml["necrosis_ml"] == 0 < methylated.volumes_ml["non_enhancing_ml"]
    assert unmethylated.volumes_ml["enhancing_ml"] > 0 and unmethylated.volumes_ml["oedema_ml"] > 0


def _draws(grade: str, difficulty: float, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame([tumour.sample_parameters(grade, rng, difficulty, 0.0, None) for _ in range(n)])


def test_difficulty_pulls_grades_together_and_widens_the_spread():
    easy = {g: _draws(g, 0.0) for g in ("II", "IV")}
    hard = {g: _draws(g, 1.0) for g in ("II", "IV")}
    gap_easy = easy["IV"].radius_mm.mean() - easy["II"].radius_mm.mean()
    gap_hard = hard["IV"].radius_mm.mean() - hard["II"].radius_mm.mean()
    assert gap_easy > 4 and abs(gap_hard) < 1.5
    assert hard["II"].radius_mm.std() > 2 * easy["II"].radius_mm.std()
    assert (easy["II"].enhancement == 0).mean() > 0.9 and (easy["IV"].enhancement > 0.5).mean() > 0.9
    documented = tumour.distributions(0.5)["radius_mm"]
    assert documented["sd"] == pytest.approx(3.5 * 2)
    assert documented["mean"]["IV"] - documented["mean"]["II"] == pytest.approx(0.5 * (19 - 13))


def test_failure_midway_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    calls = []

    class Broken(synth_cohort.WRITERS["ixi"]):
        def write(self, subject, record):
            calls.append(record.spec.index)
            if len(calls) == 3:
                raise RuntimeError("disk full")
            return super().write(subject, record)

    monkeypatch.setitem(synth_cohort.WRITERS, "ixi", Broken)
    out = tmp_path / "cohort"
    with pytest.raises(RuntimeError, match="disk full"):
        synthesize(out, preset="tiny", layouts=["ixi"], progress=True)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no partial sibling either
    assert "subject" in capsys.readouterr().err  # the progress bar ran


def test_refuses_to_overwrite_and_rejects_bad_arguments(tiny_phantom, tmp_path):
    with pytest.raises(InputError, match="already exists"):
        synthesize(tiny_phantom, preset="tiny", progress=False)
    with pytest.raises(InputError, match="preset"):
        synthesize(tmp_path / "a", preset="huge")
    with pytest.raises(InputError, match="layout"):
        synthesize(tmp_path / "b", preset="tiny", layouts=["dicom", "nrrd"])
    with pytest.raises(InputError, match="difficulty"):
        synthesize(tmp_path / "c", preset="tiny", difficulty=1.5)
    assert list(tmp_path.iterdir()) == []


def test_make_montage_regenerates_without_a_cohort(tmp_path):
    out = make_montage(tmp_path / "montage.png", preset="tiny", seed=0, per_class=1)
    width, height = Image.open(out).size
    rows = 4  # one subject per class: II, III, IV, healthy
    assert width == pytest.approx((2.2 * 4 + 1.2) * 90, abs=2) and height == pytest.approx(
        (2.2 * rows + 0.7) * 90, abs=2
    )


@pytest.mark.slow
def test_worker_processes_give_the_same_cohort(tiny_phantom, tmp_path):
    synthesize(tmp_path / "parallel", preset="tiny", layouts=["brats"], progress=False, workers=2)
    for case in (p for p in (tiny_phantom / BRATS).iterdir() if p.is_dir()):
        a = np.asarray(nib.load(case / f"{case.name}_t2.nii.gz").dataobj)
        b = np.asarray(nib.load(tmp_path / "parallel" / BRATS / case.name / f"{case.name}_t2.nii.gz").dataobj)
        assert np.array_equal(a, b)
