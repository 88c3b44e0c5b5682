"""3D volumes: scaling, resampling, orientation, channels and fallback, skull stripping, the cache, augmentation."""

from __future__ import annotations

import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
import torchio as tio
from scipy import ndimage

from glioscope import cohort
from glioscope.errors import InputError
from glioscope.ingest import ingest
from glioscope.io import dicom, nifti
from glioscope.augment.volumes import VolumeAugmentation, augmentation
from glioscope.samples.volumes import (
    VolumeSettings,
    array_affine,
    build_volumes,
    skullstrip,
    volume_from_file,
)
from glioscope.samples.volumes.plan import plan_volumes
from glioscope.samples.volumes.volume import preprocess, scale_intensities, to_array

QUICK = {"spacing": 4.0, "shape": (48, 56, 48)}


def blob(shape=(24, 28, 20)) -> np.ndarray:
    """A smooth, asymmetric bright object on a zero background (a skull-stripped 'brain')."""
    grid = np.indices(shape).astype(np.float32)
    centre = np.array(shape, np.float32)[:, None, None, None] / 2
    radius = np.sqrt((((grid - centre) / (np.array(shape)[:, None, None, None] / 3)) ** 2).sum(0))
    return np.where(radius < 1, 100 + 50 * grid[0] / shape[0] + 20 * grid[2] / shape[2], 0).astype(np.float32)


def image(data: np.ndarray, affine: np.ndarray) -> tio.ScalarImage:
    return tio.ScalarImage(tensor=torch.from_numpy(np.ascontiguousarray(data))[None], affine=affine)


@pytest.fixture(scope="module")
def phantom_cohort(tiny_phantom) -> pd.DataFrame:
    frame, _ = ingest([tiny_phantom / "brats", tiny_phantom / "ixi"], None, workers=1, progress=False, echo=None)
    return frame


@pytest.fixture(scope="module")
def phantom_volumes(phantom_cohort, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("volume-cache")
    settings = VolumeSettings(**QUICK)
    return build_volumes(phantom_cohort, settings, cache_dir, workers=1, progress=False), cache_dir


# --- intensities, geometry, orientation --------------------------------------------


def test_percentile_scaling_clips_and_maps_the_percentiles_to_0_and_1():
    values = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    values[0, 0, 0], values[-1, -1, -1] = -5000, 90000  # outliers the percentiles ignore
    low, high = np.percentile(values, [2, 98])
    scaled = scale_intensities(values, None, (2, 98))
    assert scaled.min() == 0 and scaled.max() == 1
    assert np.isclose(scaled[values <= low], 0).all() and np.isclose(scaled[values >= high], 1).all()
    inside = (values > low) & (values < high)
    assert np.allclose(scaled[inside], (values[inside] - low) / (high - low), atol=1e-5)


def test_percentiles_come_from_the_mask_only():
    values = np.random.default_rng(0).uniform(0, 100, (12, 12, 12)).astype(np.float32)
    mask = np.zeros(values.shape, bool)
    mask[3:9, 3:9, 3:9] = True
    high = np.percentile(values[mask], 90)
    scaled = scale_intensities(values, mask, (0, 90))
    assert np.isclose(scaled[mask & (values >= high)], 1).all()
    assert np.isclose(scaled[values.argmin() // 144, values.argmin() // 12 % 12, values.argmin() % 12], 0)


def test_resampled_to_the_spacing_and_cropped_or_padded_to_the_shape():
    data = blob((40, 36, 12))  # 1 x 1 x 3 mm voxels, anisotropic like a clinical scan
    settings = VolumeSettings(skull_strip="none", spacing=2.0, shape=(16, 20, 24))
    subject, meta = preprocess([image(data, np.diag([1.0, 1.0, 3.0, 1.0]))], settings)
    assert subject["c0"].spacing == (2.0, 2.0, 2.0)
    assert subject["c0"].spatial_shape == (24, 20, 16)  # (x, y, z) = (W, H, D)
    array = to_array(subject)
    assert array.shape == (1, 16, 20, 24) and array.min() >= 0 and array.max() <= 1
    assert meta["skull_stripped"] and meta["skull_strip"] == "source"  # zero background: already stripped


def test_flipped_affine_gives_the_same_array():
    data, affine = blob(), np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-30, -40, -25]
    settings = VolumeSettings(skull_strip="none", spacing=3.0, shape=(20, 24, 20))
    reference = to_array(preprocess([image(data, affine)], settings)[0])
    flip = np.diag([-1.0, 1.0, -1.0, 1.0])  # store x and z reversed: the same anatomy in world space
    flip[0, 3], flip[2, 3] = data.shape[0] - 1, data.shape[2] - 1
    flipped = to_array(preprocess([image(data[::-1, :, ::-1], affine @ flip)], settings)[0])
    np.testing.assert_allclose(flipped, reference, atol=1e-5)


def test_axis_order_is_superior_posterior_left():
    data = np.zeros((20, 20, 20), np.float32)
    data[4:16, 4:16, 4:16] = 50
    data[13:16, 13:16, 13:16] = 200  # the patient's right (x up in RAS), anterior, superior corner
    settings = VolumeSettings(skull_strip="none", spacing=2.0, shape=(20, 20, 20))
    array = to_array(preprocess([image(data, np.diag([2.0, 2.0, 2.0, 1.0]))], settings)[0])[0]
    d, h, w = np.unravel_index(array.argmax(), array.shape)
    assert d > 10 and h < 10 and w < 10  # superior = high D, anterior = low H, right = low W
    affine = array_affine(2.0)
    assert nib.aff2axcodes(affine) == ("S", "P", "L")


# --- settings, channels, the fallback --------------------------------------------


def test_settings_validate_and_key():
    settings = VolumeSettings(channels=("t1ce",), fallback={"T1c": "t1"})
    assert settings.channels == ("T1c",) and settings.fallback == (("T1c", "T1"),)
    assert settings.key() == VolumeSettings().key() and settings.key() != VolumeSettings(spacing=4).key()
    for bad in ({"skull_strip": "bet"}, {"channels": ("DWI",)}, {"shape": (4, 4, 4)}, {"percentiles": (60, 40)}):
        with pytest.raises(InputError, match="volume settings"):
            VolumeSettings(**bad)


def test_ixi_t1_stands_in_for_t1c(phantom_cohort):
    ixi = phantom_cohort[phantom_cohort["source_format"] == "ixi"]
    planned, skipped, _ = plan_volumes(ixi, VolumeSettings())
    assert len(planned) == 3 and not skipped
    assert all(p.meta["sequences"] == "T1" and p.meta["fallback"] == "T1c<-T1" for p in planned)
    planned, skipped, _ = plan_volumes(ixi, VolumeSettings(fallback=()))
    assert not planned and len(skipped) == 3
    assert "has no T1c for channel 1; it has T1, T2" in skipped[0].reason and "IXI" in skipped[0].reason


def test_sequences_of_a_study_stack_as_channels(phantom_cohort):
    brats = phantom_cohort[phantom_cohort["patient_id"] == "BraTS20_Training_002"]
    settings = VolumeSettings(channels=("T1c", "FLAIR", "T2"), **QUICK)
    result = build_volumes(brats, settings, None, workers=1, progress=False)
    assert result.volumes.shape == (1, 3, 48, 56, 48)
    assert result.table.loc[0, "sequences"] == "T1c+FLAIR+T2" and result.table.loc[0, "fallback"] == ""
    assert not np.array_equal(result.volumes[0, 0], result.volumes[0, 1])
    # Channels share one brain mask: the background is zero in all of them at once.
    background = result.volumes[0] == 0
    assert (background.all(axis=0) == background.any(axis=0)).mean() > 0.99


# --- the cohort: one volume per patient, the cache ---------------------------------


def test_one_volume_per_patient_with_its_label(phantom_volumes, phantom_cohort):
    result, _ = phantom_volumes
    assert result.volumes.shape == (12, 1, 48, 56, 48) and result.volumes.dtype == np.float16
    assert not result.skipped and result.table["volume_id"].is_unique
    assert set(result.table["patient_id"]) == set(phantom_cohort["patient_id"])
    labels = phantom_cohort.groupby("patient_id")["label"].first()
    assert (result.table["label"] == result.table["patient_id"].map(labels)).all()
    assert sorted(set(result.table["label"])) == ["HGG", "LGG", "healthy"]
    ixi = result.table[result.table["source_format"] == "ixi"]
    assert (ixi["skull_strip"] == "mni").all() and (ixi["fallback"] == "T1c<-T1").all()
    brats = result.table[result.table["source_format"] == "brats"]
    assert (brats["skull_strip"] == "source").all() and result.table["skull_stripped"].all()
    assert float(result.volumes.min()) == 0 and float(result.volumes.max()) == 1
    assert any("fallback" in note for note in result.notes)


def test_second_build_opens_no_file(phantom_volumes, phantom_cohort, monkeypatch):
    first, cache_dir = phantom_volumes

    def forbidden(*args, **kwargs):
        raise AssertionError("a cached build opened a file")

    monkeypatch.setattr(nifti, "load_volume", forbidden)
    monkeypatch.setattr(dicom, "load_series", forbidden)
    monkeypatch.setattr(nib, "load", forbidden)
    again = build_volumes(phantom_cohort, VolumeSettings(**QUICK), cache_dir, workers=1, progress=False)
    np.testing.assert_array_equal(again.volumes, first.volumes)
    pd.testing.assert_frame_equal(again.table, first.table)


# --- skull stripping ----------------------------------------------------------


def test_auto_heuristic_tells_heads_from_brains(phantom_cohort):
    for row in phantom_cohort[phantom_cohort["sequence"] == "T1"].itertuples():
        data, affine = nifti.load_volume(row.path)
        data = nib.as_closest_canonical(nib.Nifti1Image(data, affine)).get_fdata()
        stripped, volume = skullstrip.looks_stripped(data, 4.0)
        assert stripped == (row.source_format == "brats"), (row.path, volume)


def test_mni_skull_strip_removes_the_scalp_and_keeps_the_brain():
    from scipy.spatial.transform import Rotation

    from glioscope.synth.subject import SubjectSpec, simulate

    subject = simulate(SubjectSpec(index=3, grade="healthy", methylated=None, seed=11), 4, 0.35, 0.5)
    # The phantom lives in MNI space; move and tilt the head as a scanner would place it.
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler("xyz", (12, -6, 8), degrees=True).as_matrix() * 1.05
    pose[:3, 3] = (20, -25, 35)
    head = image(subject.images["T1"].astype(np.float32), pose @ subject.affine)
    mask = skullstrip.brain_mask(head)
    far = (ndimage.distance_transform_edt(~subject.brain) * 4 > 8) & subject.head  # skull and scalp
    bright = far & (subject.images["T1"] > np.percentile(subject.images["T1"][subject.brain], 75))
    assert bright.sum() > 1000  # the scalp is there to remove
    assert mask[bright].mean() < 0.01 and mask[far].mean() < 0.02
    assert mask[subject.brain].mean() > 0.97


def test_a_failed_registration_is_a_skip(tmp_path):
    grid = np.indices((32, 32, 32)).astype(np.float32)
    ramp = grid[2] * 3 + np.random.default_rng(0).normal(0, 1, grid.shape[1:])  # nothing like a head
    path = tmp_path / "ramp_t1.nii.gz"
    nib.save(nib.Nifti1Image(ramp.astype(np.float32), np.diag([4.0, 4.0, 4.0, 1.0])), path)
    with pytest.raises(InputError, match="registration to the MNI152 template failed"):
        volume_from_file(path, VolumeSettings(skull_strip="mni", **QUICK))


# --- bad input, new files ------------------------------------------------------


def test_a_corrupt_nifti_becomes_a_skip_naming_it(phantom_cohort, tmp_path):
    rows = phantom_cohort[phantom_cohort["sequence"] == "T1c"].head(2).to_dict("records")
    damaged = tmp_path / "BraTS_damaged_t1ce.nii.gz"
    compressed = Path(rows[1]["path"]).read_bytes()
    damaged.write_bytes(compressed[: len(compressed) // 2])
    rows[1] = {**rows[1], "path": str(damaged), "patient_id": "damaged", "study_id": "damaged"}
    frame = cohort.to_frame(rows)
    for _ in range(2):  # the second build reads the skip from the cache
        result = build_volumes(frame, VolumeSettings(**QUICK), tmp_path / "cache", workers=1, progress=False)
        assert len(result) == 1 and [s.path for s in result.skipped] == [str(damaged)]
        assert "cannot be read as NIfTI" in result.skipped[0].reason


def test_volume_from_a_new_nifti_file(tiny_phantom):
    path = next((tiny_phantom / "ixi").glob("*-T1.nii.gz"))
    result = volume_from_file(path, VolumeSettings(**QUICK))
    assert result.volumes.shape == (1, 1, 48, 56, 48)
    assert result.table.loc[0, "skull_strip"] == "mni"  # judged by its head-sized foreground
    assert result.table.loc[0, "patient_id"] == path.name.split("-")[0]  # IXI<nnn>, as ingest names it
    assert result.notes[0] == "the one volume given, named T1, is used as T1c"


def test_a_dicom_study_stacks_axial_and_sagittal_series(tiny_phantom):
    study = min((tiny_phantom / "dicom" / "REMBRANDT").iterdir())
    result = volume_from_file(study, VolumeSettings(channels=("T1c", "T1"), **QUICK))
    assert result.volumes.shape == (1, 2, 48, 56, 48) and result.table.loc[0, "sequences"] == "T1c+T1"
    assert result.table.loc[0, "skull_strip"] == "mni" and result.table.loc[0, "source_format"] == "dicom"
    # The sagittal T1 series lands on the axial T1c's grid: the same brain in both channels.
    t1c, t1 = (result.volumes[0, c].astype(np.float32) for c in range(2))
    assert np.corrcoef(t1c.ravel() > 0.1, t1.ravel() > 0.1)[0, 1] > 0.8


def test_a_volume_of_unknown_sequence_fills_a_single_channel(tmp_path):
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(blob(), np.diag([3.0, 3.0, 3.0, 1.0])), path)
    frame = cohort.to_frame([{"patient_id": "p1", "kind": "volume", "path": str(path), "sequence": "unknown"}])
    result = build_volumes(frame, VolumeSettings(skull_strip="none", spacing=3.0, shape=(16, 20, 16)), progress=False)
    assert result.volumes.shape == (1, 1, 16, 20, 16) and result.table.loc[0, "skull_strip"] == "source"
    assert any("unknown sequence used as T1c" in note for note in result.notes)
    with pytest.raises(InputError, match="has no T1c"):
        build_volumes(frame, VolumeSettings(channels=("T1c", "FLAIR")), progress=False)


# --- augmentation ---------------------------------------------------------------


@pytest.mark.parametrize("preset", ["light", "heavy"])
def test_augmentation_keeps_the_shape_and_changes_the_volume(preset):
    """Every transform of the preset is applied at least once (several seeds), with the right shape."""
    volume = torch.from_numpy(blob((16, 20, 24)) / 170)[None].repeat(2, 1, 1, 1)
    transform = augmentation(preset, spacing=4.0)
    assert isinstance(transform, tio.Transform)
    torch.manual_seed(0)
    first = transform(volume)
    torch.manual_seed(0)
    again = transform(volume)
    assert first.shape == volume.shape and first.dtype == volume.dtype
    assert not torch.allclose(first, volume, atol=1e-3)
    torch.testing.assert_close(first, again)  # torch's seed fixes the draws
    half = transform(volume.half())
    assert half.dtype == torch.float16 and half.shape == volume.shape
    applied = set()
    for seed in range(24):  # the transforms have probabilities of 0.25 to 0.5 (the affine 1)
        torch.manual_seed(seed)
        subject = transform(tio.Subject(volume=tio.ScalarImage(tensor=volume, affine=array_affine(4.0))))
        assert subject["volume"].data.shape == volume.shape
        applied |= {type(step).__name__ for step in subject.history}
    expected = {"Affine", "Flip"} | (
        {"ElasticDeformation", "Motion", "Spike", "Ghosting"} if preset == "heavy" else set()
    )
    assert expected <= applied
    assert pickle.loads(pickle.dumps(transform)).spacing == 4.0  # DataLoader workers receive it pickled
    assert augmentation("none") is None


def test_left_right_flip_flips_the_last_axis():
    volume = torch.rand(1, 8, 10, 12)
    flip = VolumeAugmentation([tio.RandomFlip(axes=("LR",), flip_probability=1.0)], spacing=2.0)
    torch.testing.assert_close(flip(volume), volume.flip(-1))
