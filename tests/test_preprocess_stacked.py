"""Sequences stacked as channels across grids: RSNA-MICCAI series in different planes on the first one's grid."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from glioscope import cohort
from glioscope.ingest import ingest
from glioscope.io.dicom import VolumeGeometry
from glioscope.samples.slices import SliceSettings, build_slices, pixels

FOUR = ("FLAIR", "T1", "T1c", "T2")


def read(source: Path):
    frame, _ = ingest([source], out=None, workers=1, progress=False, echo=None)
    return frame


def build(frame, cache_dir=None, **settings):
    return build_slices(frame, SliceSettings(**settings), cache_dir=cache_dir, workers=1, progress=False)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def forbid_resampling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("co-registered channels were resampled")

    monkeypatch.setattr("glioscope.samples.slices.resample.onto_grid", refuse)


@pytest.fixture(scope="module")
def rsna(tiny_phantom):
    return read(tiny_phantom / "rsna-miccai")


def complete_patients(frame) -> list[str]:
    sequences = frame.groupby("patient_id")["sequence"].agg(set)
    return sorted(p for p, s in sequences.items() if set(FOUR) <= s)


def other_planes(frame) -> list[tuple[str, str]]:
    """(patient, sequence) of complete patients' series acquired in another plane than their FLAIR."""
    plane = frame.set_index(["patient_id", "sequence"])["plane"]
    return [(p, s) for p in complete_patients(frame) for s in FOUR[1:] if plane[p, s] != plane[p, "FLAIR"]]


def test_rsna_series_in_other_planes_land_on_the_first_channels_grid(rsna):
    complete = complete_patients(rsna)
    incomplete = sorted(set(rsna["patient_id"]) - set(complete))
    mixed = other_planes(rsna)  # series that need resampling
    assert complete and incomplete and mixed, "the tiny phantom should have both kinds of RSNA patient"
    flair = rsna[rsna["sequence"] == "FLAIR"].set_index("patient_id")

    result = build(rsna, channels=FOUR, size=64)

    slices = int(flair.loc[complete, "n_slices"].sum())  # the FLAIR series' slices, in its plane
    assert result.images.shape == (slices, 4, 64, 64)
    assert sorted(result.table["patient_id"].unique()) == complete
    assert (result.table["sequence"] == "FLAIR+T1+T1c+T2").all()
    for patient, rows in result.table.groupby("patient_id"):
        assert rows["slice_index"].tolist() == list(range(int(flair.loc[patient, "n_slices"])))
    reasons = sorted(s.reason for s in result.skipped)
    expected = []
    for patient in incomplete:
        missing = [s for s in FOUR if s not in set(rsna.loc[rsna["patient_id"] == patient, "sequence"])]
        expected.append((patient, f"has no {', '.join(missing)} to stack as channels"))
    assert len(reasons) == len(expected)
    assert all(any(f"patient {p}" in r and text in r for r in reasons) for p, text in expected), reasons
    # Slice i of every channel shows the same anatomy: the head's outline agrees across planes,
    # on the middle slice and over the whole stack, far better than slices paired by their index.
    for patient, sequence in mixed:
        heads = result.images[result.table.index[result.table["patient_id"] == patient]] > 25
        channel = FOUR.index(sequence)
        middle = heads[len(heads) // 2]
        assert middle[0].mean() > 0.1 and dice(middle[0], middle[channel]) > 0.7, (patient, sequence)
        own = build(rsna[(rsna["patient_id"] == patient) & (rsna["sequence"] == sequence)], channels="single", size=64)
        paired = own.images[:, 0] > 25
        count = min(len(paired), len(heads))
        by_index = dice(heads[:count, 0], paired[:count])
        assert dice(heads[:, 0], heads[:, channel]) > max(0.9, by_index + 0.05), (patient, sequence, by_index)


def test_the_first_channel_named_sets_the_grid_and_is_not_resampled(rsna):
    patient, first = other_planes(rsna)[0]
    study = rsna[rsna["patient_id"] == patient]
    stacked = build(study, channels=(first, "FLAIR"), size=48)
    alone = build(study[study["sequence"] == first], channels="single", size=48)
    assert len(stacked) == int(study.loc[study["sequence"] == first, "n_slices"].iloc[0])  # in its plane
    assert np.array_equal(stacked.images[:, 0], alone.images[:, 0])
    middle = stacked.images[len(stacked) // 2] > 25
    assert dice(middle[0], middle[1]) > 0.7  # the FLAIR, resampled into the other plane


def test_coregistered_brats_stack_is_not_resampled(tiny_phantom, monkeypatch):
    brats = read(tiny_phantom / "brats")
    forbid_resampling(monkeypatch)
    stacked = build(brats, channels=FOUR, selection="middle", size=48)
    assert stacked.images.shape[1] == 4 and not stacked.skipped
    # Per-channel scaling: each channel is exactly that sequence's own slices, as before resampling existed.
    for channel, sequence in enumerate(FOUR):
        alone = build(brats[brats["sequence"] == sequence], channels="single", selection="middle", size=48)
        assert np.array_equal(stacked.images[:, channel], alone.images[:, 0]), sequence


def test_rsna_series_on_one_grid_are_stacked_as_they_are(rsna, monkeypatch):
    planes = rsna.groupby("patient_id")["plane"].nunique()
    same = [p for p in complete_patients(rsna) if planes[p] == 1]
    if not same:
        pytest.skip("no RSNA patient of the tiny phantom has all four series in one plane")
    forbid_resampling(monkeypatch)
    result = build(rsna[rsna["patient_id"] == same[0]], channels=FOUR, size=32)
    assert result.images.shape[1:] == (4, 32, 32) and not result.skipped


def test_second_build_of_a_resampled_stack_opens_no_file(rsna, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = build(rsna, cache, channels=FOUR, size=32, selection="middle")

    def refuse(*args, **kwargs):
        raise AssertionError("a source file was opened on a cache hit")

    for target in ("glioscope.io.dicom.load_series", "pydicom.dcmread", "glioscope.samples.slices.resample.onto_grid"):
        monkeypatch.setattr(target, refuse)
    second = build(rsna, cache, channels=FOUR, size=32, selection="middle")
    assert np.array_equal(first.images, second.images) and first.table.equals(second.table)
    assert [s.reason for s in first.skipped] == [s.reason for s in second.skipped]


def test_a_series_that_misses_the_grid_is_a_skip_naming_it(tiny_phantom, rsna, tmp_path):
    patient = complete_patients(rsna)[0]  # the other stays: something is left to build
    assert len(complete_patients(rsna)) > 1
    root = Path(shutil.copytree(tiny_phantom / "rsna-miccai", tmp_path / "rsna-miccai"))
    moved = root / "train" / patient / "T2w"
    for path in moved.glob("*.dcm"):  # one metre to the patient's left: nowhere near the FLAIR's slices
        dataset = pydicom.dcmread(path)
        x, y, z = (float(v) for v in dataset.ImagePositionPatient)
        dataset.ImagePositionPatient = [x + 1000.0, y, z]
        dataset.save_as(path)
    result = build(read(root), channels=FOUR, size=32, selection="middle")
    assert patient not in set(result.table["patient_id"])
    skip = next(s for s in result.skipped if s.path == str(moved))
    assert "does not overlap" in skip.reason and "FLAIR" in skip.reason


# --- NIfTI volumes on different grids ---------------------------------------------


def head(world: np.ndarray) -> np.ndarray:
    """An asymmetric phantom at RAS mm points (..., 3): an ellipsoid with a bright blob right-anterior-superior."""
    x, y, z = np.moveaxis(world, -1, 0)
    body = ((x / 60) ** 2 + (y / 75) ** 2 + (z / 50) ** 2 < 1) * 100.0
    blob = ((x + 25) ** 2 + (y - 20) ** 2 + (z - 15) ** 2 < 15**2) * 150.0
    return (body + blob).astype(np.float32)


def write_volume(path: Path, affine: np.ndarray, shape: tuple[int, int, int], function=head) -> str:
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    world = index @ affine[:3, :3].T + affine[:3, 3]
    nib.save(nib.Nifti1Image(function(world), affine), path)
    return str(path)


def oblique_affine() -> np.ndarray:
    """1.5 mm voxels stored sagittally (i: P to A, j: S to I, k: L to R), tilted 10 degrees about x."""
    turn = np.radians(10)
    rotation = np.array([[1, 0, 0], [0, np.cos(turn), -np.sin(turn)], [0, np.sin(turn), np.cos(turn)]])
    axes = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float) * 1.5
    affine = np.eye(4)
    affine[:3, :3] = rotation @ axes
    affine[:3, 3] = affine[:3, :3] @ -np.array([60, 50, 45])  # the centre voxel at the origin
    return affine


@pytest.fixture(scope="module")
def volumes(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("grids")
    axial = np.diag([2.0, 2.0, 3.0, 1.0])
    axial[:3, 3] = [-70, -85, -60]
    shifted = axial.copy()
    shifted[0, 3] += 5000  # five metres away
    return {
        "T1": write_volume(folder / "case_t1.nii.gz", axial, (71, 86, 41)),
        "FLAIR": write_volume(folder / "case_flair.nii.gz", oblique_affine(), (121, 101, 91)),
        "T2": write_volume(folder / "case_t2.nii.gz", shifted, (71, 86, 41), lambda w: head(w - [5000, 0, 0])),
        "seg": write_volume(
            folder / "case_seg.nii.gz", oblique_affine(), (121, 101, 91), lambda w: (head(w) > 200).astype(np.float32)
        ),
    }


def volume_rows(volumes, sequences, mask_of: str = "") -> list[dict]:
    return [
        {
            "patient_id": "case",
            "study_id": "case",
            "kind": "volume",
            "sequence": s,
            "path": volumes[s],
            "mask_path": volumes["seg"] if s == mask_of else "",
        }
        for s in sequences
    ]


def test_nifti_volumes_on_other_grids_are_resampled_through_world_coordinates(volumes):
    frame = cohort.to_frame(volume_rows(volumes, ("T1", "FLAIR")))
    result = build(frame, channels=("T1", "FLAIR"), size=64)
    assert len(result) == 41  # the T1's axial slices
    body = result.images > 40
    assert dice(body[:, 0], body[:, 1]) > 0.95
    blob = result.images > 200  # the blob sits in the same slices, on the same side, in both channels
    assert blob[:, 0].sum() > 100 and dice(blob[:, 0], blob[:, 1]) > 0.8


def test_a_mask_on_another_grid_follows_the_channels(volumes):
    frame = cohort.to_frame(volume_rows(volumes, ("T1", "FLAIR"), mask_of="FLAIR"))
    result = build(frame, channels=("T1", "FLAIR"), selection="representative", size=64)
    centre = (15 - -60) / 3  # the blob's centre, z = 15 mm, on the T1's 3 mm slices starting at -60 mm
    assert result.table["tumour_area"].iloc[0] > 0
    assert abs(result.table["slice_index"].iloc[0] - centre) <= 2


def test_a_volume_outside_the_grid_is_a_skip_naming_it(volumes):
    rows = volume_rows(volumes, ("T1", "FLAIR", "T2"))
    fine = [{**row, "patient_id": "other", "study_id": "other", "path": volumes["T1"]} for row in rows]
    result = build(cohort.to_frame([*rows, *fine]), channels=("T1", "FLAIR", "T2"), size=32)
    assert set(result.table["patient_id"]) == {"other"}
    assert [s.path for s in result.skipped] == [volumes["T2"]]
    assert "does not overlap the grid of case_t1.nii.gz" in result.skipped[0].reason


def test_grids_of_cut_volumes_and_series():
    rng = np.random.default_rng(0)
    for _ in range(10):
        shape = tuple(int(n) for n in rng.integers(3, 8, 3))
        data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
        affine = np.eye(4)
        axes = np.zeros((3, 3))
        axes[rng.permutation(3), np.arange(3)] = rng.choice([-1.0, 1.0], 3) * rng.uniform(0.5, 3, 3)
        affine[:3, :3], affine[:3, 3] = axes, rng.uniform(-50, 50, 3)
        for axis in ("axial", "sagittal", "coronal"):
            stack = pixels.cut_volume(data, affine, axis)
            index = np.stack(np.meshgrid(*[np.arange(n) for n in stack.shape], indexing="ij"), -1).reshape(-1, 3)
            world = index @ pixels.cut_grid(affine, shape, axis)[:3, :3].T + pixels.cut_grid(affine, shape, axis)[:3, 3]
            voxel = np.rint((world - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T).astype(int)
            assert (data[tuple(voxel.T)] == stack.reshape(-1)).all(), axis
    # A series without ImagePositionPatient/ImageOrientationPatient has no place in the patient.
    assert pixels.series_grid(VolumeGeometry((0.5, 0.5, 3.0), np.diag([0.5, 0.5, 3.0, 1.0]))) is None
    placed = np.diag([-0.5, -0.5, 3.0, 1.0])
    placed[:3, 3] = [10, 20, 30]
    grid = pixels.series_grid(VolumeGeometry((0.5, 0.5, 3.0), placed))
    assert np.allclose(grid @ [2, 3, 4, 1], placed @ [4, 3, 2, 1])  # (slice, row, col) vs (col, row, slice)
