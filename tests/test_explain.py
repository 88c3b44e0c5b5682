"""glioscope.explain: Grad-CAM maps put back on the study's own voxels (volumes, DICOM series, 2D slices).

Each test makes a study whose bright blob sits off-centre, on a grid that is oblique, anisotropic and not RAS,
and a model whose Grad-CAM is exactly where its input is bright: the map must land on the blob in the study's
voxels. A transposed, flipped or shifted grid would put it tens of millimetres away.
"""

from __future__ import annotations

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from pydicom.uid import generate_uid

from glioscope.explain import geometry, study_maps, to_nifti_bytes, write_study_maps
from glioscope.io.study import read_study
from glioscope.io.testing import dicom_slice
from glioscope.samples.slices import SliceSettings, slices_from_file
from glioscope.samples.volumes import VolumeSettings, volume_from_file
from glioscope.trained import Prediction

BLOB_LEVEL = 0.5  # the blob scales to 1 and the rest of the head to about 0.25 or less


class BrightModel(torch.nn.Module):
    """Class "blob" grows with the input above BLOB_LEVEL: its Grad-CAM is the input's bright part."""

    def __init__(self, dims: int, channels: int):
        super().__init__()
        conv = torch.nn.Conv3d if dims == 3 else torch.nn.Conv2d
        self.conv = conv(channels, 1, 1)
        with torch.no_grad():
            self.conv.weight.fill_(1.0 / channels)
            self.conv.bias.fill_(-BLOB_LEVEL)

    def forward(self, x):
        score = torch.relu(self.conv(x)).flatten(1).sum(1)
        return torch.stack([-score, score], 1)


class FakeRun:
    """What study_maps asks of a TrainedRun: classes, the recipe's normalisation, fold models, apply."""

    class_names = ["none", "blob"]
    recipe = SimpleNamespace(model=None, data=SimpleNamespace(normalize="none"))

    def __init__(self, dims: int, channels: int = 1):
        self.model = BrightModel(dims, channels)

    def folds(self, samples):
        return [("fold_0", self.model), ("fold_1", self.model)]

    def apply(self, samples):
        return Prediction(samples, {"fold_0": np.tile([0.2, 0.8], (len(samples), 1))}, self.class_names)


def oblique_affine(spacing, origin=(37.0, -52.0, 21.0)) -> np.ndarray:
    """Voxel axes stored as (A->P, I->S, R->L)-ish, turned 20 degrees about an oblique axis, anisotropic."""
    permute_flip = np.array([[0, 0, -1], [-1, 0, 0], [0, 1, 0]], float)  # voxel i runs -y, j runs +z, k runs -x
    axis = np.array([1.0, 2.0, 0.5]) / np.linalg.norm([1.0, 2.0, 0.5])
    angle = np.deg2rad(20)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
    affine = np.eye(4)
    affine[:3, :3] = rotation @ permute_flip @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def phantom(shape, spacing, blob_at, blob_mm=13.0, seed=0):
    """(voxels, blob mask): a head ellipsoid of grey levels 60..140 and a bright sphere at voxel `blob_at`."""
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    centre = [(n - 1) / 2 for n in shape]
    radii = [0.42 * n for n in shape]
    head = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1
    blob = sum(((g - b) * s) ** 2 for g, b, s in zip(grids, blob_at, spacing)) <= blob_mm**2
    texture = np.round(np.random.default_rng(seed).uniform(60, 140, shape))  # whole numbers: DICOM keeps them
    data = np.where(head, texture, 0.0)
    data[blob] = 600.0
    return data.astype(np.float32), blob


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


def centroid(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(axis=0)


def assert_on_blob(cam: np.ndarray, blob: np.ndarray, spacing, affine=None, tolerance_mm: float = 4.0):
    """The map's bright part and its peak lie on the blob: Dice, the centroid within a model voxel (4 mm)."""
    assert cam.shape == blob.shape and cam.dtype == np.float32
    assert 0.0 <= cam.min() and cam.max() <= 1.0
    hot = cam >= 0.5
    assert dice(hot, blob) > 0.7, dice(hot, blob)
    offset_mm = (centroid(hot) - centroid(blob)) * np.asarray(spacing)
    assert np.linalg.norm(offset_mm) < tolerance_mm, offset_mm
    at = np.unravel_index(int(np.argmax(cam)), cam.shape)
    assert blob[at]


VOLUME = {"shape": (64, 56, 30), "spacing": (1.7, 2.1, 3.9), "blob_at": (18, 36, 19)}


@pytest.fixture(scope="module")
def oblique_nifti(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nifti")
    data, blob = phantom(VOLUME["shape"], VOLUME["spacing"], VOLUME["blob_at"])
    affine = oblique_affine(VOLUME["spacing"])
    path = folder / "P7_t1.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    mask = folder / "P7_mask.nii.gz"
    nib.save(nib.Nifti1Image(blob.astype(np.uint8), affine), mask)
    return path, mask, data, blob, affine


SETTINGS_3D = VolumeSettings(channels=("T1",), skull_strip="none", spacing=4.0, shape=(24, 32, 32))


def test_a_volume_models_grid_maps_onto_the_blob_in_the_study(oblique_nifti):
    path, _, data, blob, affine = oblique_nifti
    samples = volume_from_file(path, SETTINGS_3D)
    grid = samples.grids[0]
    # The grid's axes: D runs inferior -> superior, H anterior -> posterior, W right -> left, 4 mm each.
    assert np.allclose(np.linalg.norm(grid[:3, :3], axis=0), 4.0, atol=1e-4)
    model_sees = (samples.volumes[0, 0].astype(np.float32) > BLOB_LEVEL).astype(np.float32)
    assert 0 < model_sees.sum() < model_sees.size / 20
    cam = geometry.onto_study(model_sees, grid, data.shape, affine)
    assert_on_blob(cam, blob, VOLUME["spacing"])


def test_a_volume_map_is_zero_outside_the_models_field_of_view(oblique_nifti):
    path, _, data, _, affine = oblique_nifti
    small = VolumeSettings(channels=("T1",), skull_strip="none", spacing=4.0, shape=(16, 20, 20))
    samples = volume_from_file(path, small)  # a crop of 64 x 80 x 80 mm of a 109 x 118 x 117 mm head
    everywhere = np.ones(samples.volumes.shape[2:], np.float32)
    cam = geometry.onto_study(everywhere, samples.grids[0], data.shape, affine)
    seen_mm3 = (cam >= 0.5).sum() * np.prod(VOLUME["spacing"])
    field_mm3 = np.prod(samples.volumes.shape[2:]) * 4.0**3
    assert abs(seen_mm3 / field_mm3 - 1) < 0.1  # the crop lies inside the study: all of it, and no more
    assert cam[0, 0, 0] == 0 and cam[-1, -1, -1] == 0


def test_study_maps_of_a_volume_model(oblique_nifti):
    path, mask, data, blob, affine = oblique_nifti
    samples = volume_from_file(path, SETTINGS_3D)
    (found,) = study_maps(FakeRun(3), samples, study=read_study(path))
    assert found.image.shape == data.shape and np.array_equal(found.image, data)
    assert np.allclose(found.affine, affine, atol=1e-5)
    assert found.cam_class == "blob" and found.ranked_slices == [] and found.source_files == [str(path)]
    assert_on_blob(found.cam, blob, VOLUME["spacing"])
    assert blob[found.focus_voxel]  # no mask: the map's peak
    with_mask = read_study(path, mask)
    (masked,) = study_maps(FakeRun(3), volume_from_file(path, SETTINGS_3D), study=with_mask)
    assert np.allclose(masked.focus_voxel, centroid(blob), atol=0.5)  # the mask's centroid
    # The map of the other class is elsewhere: not the blob.
    (other,) = study_maps(FakeRun(3), samples, class_index=0, study=read_study(path))
    assert other.cam_class == "none" and dice(other.cam >= 0.5, blob) < 0.2


def test_the_nifti_files_keep_the_studys_geometry(oblique_nifti, tmp_path):
    path, _, data, blob, affine = oblique_nifti
    (found,) = study_maps(FakeRun(3), volume_from_file(path, SETTINGS_3D), study=read_study(path))
    written = write_study_maps([found], tmp_path / "explained")
    assert [p.name for p in written] == ["P7_image.nii.gz", "P7_gradcam-blob.nii.gz"]
    image, cam = (nib.load(p) for p in written)
    for loaded in (image, cam):
        assert np.allclose(loaded.affine, affine, atol=1e-4) and loaded.shape == data.shape
    assert np.array_equal(image.get_fdata(dtype=np.float32), data)
    assert np.array_equal(cam.get_fdata(dtype=np.float32), found.cam)
    assert to_nifti_bytes(found, "cam") == to_nifti_bytes(found, "cam")  # the same map, the same bytes
    assert not list((tmp_path / "explained").glob(".*partial"))


def write_oblique_series(folder, data: np.ndarray, spacing, patient="P9"):
    """A DICOM series of (X, Y, Z) voxels: slice k is data[:, :, k], rows along Y, on an oblique plane."""
    folder.mkdir(parents=True)
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    angle = np.deg2rad(20)
    orientation = (0.0, np.cos(angle), np.sin(angle), 0.0, -np.sin(angle), np.cos(angle))  # a tilted sagittal
    row_dir, col_dir = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row_dir, col_dir)
    paths = []
    for k in range(data.shape[2]):
        ds = dicom_slice(patient, study_uid, series_uid, "SAG T1", k, rows=data.shape[1], cols=data.shape[0])
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.ImageOrientationPatient = list(orientation)
        ds.ImagePositionPatient = [float(v) for v in np.array([-20.0, 30.0, 5.0]) + normal * spacing[2] * k]
        ds.SliceThickness = spacing[2]
        ds.FrameOfReferenceUID = frame_uid
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = np.ascontiguousarray(data[:, :, k].T.astype(np.uint16)).tobytes()
        path = folder / f"IM{data.shape[2] - k:04d}.dcm"  # names in reverse: the slice order must come from positions
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


SERIES = {"shape": (48, 60, 36), "spacing": (2.2, 1.6, 3.0), "blob_at": (30, 18, 12)}


def test_study_maps_of_a_dicom_series(tmp_path):
    data, blob = phantom(SERIES["shape"], SERIES["spacing"], SERIES["blob_at"])
    paths = write_oblique_series(tmp_path / "series", data, SERIES["spacing"])
    samples = volume_from_file(tmp_path / "series", SETTINGS_3D)
    (found,) = study_maps(FakeRun(3), samples)  # no Study given: the series' rows are read again
    assert np.array_equal(found.image, data)
    assert found.source_files == [str(p) for p in paths]  # slice order
    assert_on_blob(found.cam, blob, SERIES["spacing"])


def write_png(path, pixels: np.ndarray):
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("roi_crop", [True, False])
def test_study_maps_of_a_2d_slice_undo_the_crop_or_padding_and_resize(tmp_path, roi_crop):
    shape, blob_at = (90, 130), (62, 34)  # off-centre, not square
    data, blob = phantom(shape, (1.0, 1.0), blob_at, blob_mm=9.0)
    data = np.clip(data * 255 / 600, 0, 255)
    image = write_png(tmp_path / "P3.png", data)
    tumour = np.zeros(shape, bool)
    tumour[45:80, 20:95] = True  # a crop whose centre is not the blob's
    mask = write_png(tmp_path / "P3_mask.png", tumour * 255)
    settings = SliceSettings(size=48, roi_crop=roi_crop, channels="single", scaling="minmax")
    samples = slices_from_file(image, settings, mask_path=mask)
    assert (samples.table["crop"] != "").all() == roi_crop
    (found,) = study_maps(FakeRun(2), samples, study=read_study(image, mask))
    assert found.image.shape == shape and found.affine.shape == (4, 4)
    assert_on_blob(found.cam, blob, (1.0, 1.0), tolerance_mm=2.0)
    assert np.allclose(found.focus_voxel, centroid(tumour), atol=0.5)


def test_a_slice_models_map_lands_on_the_blob_of_an_oblique_nifti(oblique_nifti):
    path, _, data, blob, affine = oblique_nifti
    settings = SliceSettings(size=40, channels="single", axis="coronal", selection="all", min_foreground=0.0)
    samples = slices_from_file(path, settings)
    (found,) = study_maps(FakeRun(2), samples, study=read_study(path))
    assert_on_blob(found.cam, blob, VOLUME["spacing"])


def test_attended_slices_are_placed_in_the_study():
    grid = np.array([[0, 0, -1, 9], [0, -1, 0, 20], [2.5, 0, 0, -4], [0, 0, 0, 1.0]])  # (slice, row, col) -> RAS
    affine = np.diag([1.0, 1.0, 2.5, 1.0])
    affine[:3, 3] = [-30, 0, -4]
    placed = geometry.study_slice(grid, 7, (40, 21, 12), affine)
    assert placed == {"axis": 2, "slice": 7}
    flipped = affine.copy()
    flipped[2, 2], flipped[2, 3] = -2.5, -4 + 2.5 * 11
    assert geometry.study_slice(grid, 7, (40, 21, 12), flipped) == {"axis": 2, "slice": 4}


def test_real_brats_volume(shared_data):
    case = shared_data / "nifti" / "BraTS2021_00006"
    if not case.is_dir():
        pytest.skip("the BraTS 2021 case is not in the shared data")
    t1ce, seg = next(case.glob("*_t1ce.nii.gz")), next(case.glob("*_seg.nii.gz"))
    settings = VolumeSettings(channels=("T1c",), skull_strip="auto", spacing=4.0, shape=(40, 48, 40))
    samples = volume_from_file(t1ce, settings)
    data, affine = nib.load(t1ce).get_fdata(dtype=np.float32), nib.load(t1ce).affine
    # The model's own input put back on the study is the study's image at 4 mm: correlated in the brain (0.73
    # measured), and much less so flipped along any axis (0.35, 0.13, 0.22), as an error in the grid would be.
    back = geometry.onto_study(samples.volumes[0, 0].astype(np.float32), samples.grids[0], data.shape, affine)
    brain = data > 0
    assert np.corrcoef(back[brain], data[brain])[0, 1] > 0.65
    for flipped in (back[::-1], back[:, ::-1], back[:, :, ::-1]):
        assert np.corrcoef(flipped[brain], data[brain])[0, 1] < 0.45
    (found,) = study_maps(FakeRun(3), volume_from_file(t1ce, settings), study=read_study(t1ce, seg))
    tumour = nib.load(seg).get_fdata() > 0
    assert np.allclose(found.focus_voxel, centroid(tumour), atol=0.5)
    assert found.cam is not None and found.cam.shape == data.shape


def test_the_nifti_bytes_of_a_model_without_map_are_refused():
    from glioscope.errors import GlioscopeError
    from glioscope.explain import StudyMap

    empty = StudyMap(np.zeros((4, 4, 4), np.float32), np.eye(4), None, "", None, [], "T1", [])
    assert nib.Nifti1Image.from_bytes(__import__("gzip").decompress(to_nifti_bytes(empty))).shape == (4, 4, 4)
    with pytest.raises(GlioscopeError, match="no map"):
        to_nifti_bytes(empty, "cam")


def test_an_attention_models_slices_are_ranked_as_slices_of_the_study(oblique_nifti):
    path, _, data, blob, _ = oblique_nifti
    slices = slices_from_file(path, SliceSettings(size=32, channels="single", axis="axial", min_foreground=0.0))
    brightest = int(slices.table["slice_index"].iloc[int(np.argmax(slices.images.reshape(len(slices), -1).sum(1)))])
    patient = str(slices.table["patient_id"].iloc[0])
    table = slices.table.drop_duplicates("patient_id").reset_index(drop=True)
    bags = SimpleNamespace(samples=slices, table=table, skipped=[], vote_weights=lambda: None)
    attended = [
        {"rank": 1, "attention": 0.7, "slice_index": brightest, "source_path": str(path), "slice_id": "a"},
        {"rank": 2, "attention": 0.3, "slice_index": 0, "source_path": str(path), "slice_id": "b"},
    ]
    prediction = Prediction(bags, {"fold_0": np.array([[0.3, 0.7]])}, FakeRun.class_names, {patient: attended})
    (found,) = study_maps(FakeRun(2), bags, prediction=prediction, study=read_study(path))
    assert found.cam is None and found.cam_class == "blob" and found.image.shape == data.shape
    first, second = found.ranked_slices
    assert (first["weight"], second["weight"]) == (0.7, 0.3)
    # Axial slices of the study run along its voxel axis 1 (stored I->S, turned 20 degrees): the most attended
    # slice, the brightest, goes through the blob.
    assert first["axis"] == 1 and abs(first["slice"] - VOLUME["blob_at"][1]) <= 2
    assert blob.take(first["slice"], axis=1).any() and not blob.take(second["slice"], axis=1).any()


@pytest.mark.parametrize("background", [0.0, -1.2, 35.0])  # stripped, z-scored, raw with an offset
def test_the_focus_without_a_mask_is_the_maps_peak_inside_the_head_not_in_the_air(background):
    from glioscope.explain.geometry import foreground, peak

    rng = np.random.default_rng(0)
    image = background + rng.normal(0, 0.01, size=(40, 40, 30)).astype(np.float32)
    zz, yy, xx = np.mgrid[:40, :40, :30]
    head = (zz - 20) ** 2 + (yy - 20) ** 2 + (xx - 15) ** 2 < 12**2
    image[head] += 100.0
    cam = np.zeros(image.shape, np.float32)
    cam[0:4, 0:4, 0:4] = 1.0  # Grad-CAM upsampled over the model's whole box peaks in the air
    cam[24, 22, 15] = 0.6  # and, lower, inside the head
    assert peak(cam) == (0, 0, 0)
    assert peak(cam, foreground(image)) == (24, 22, 15)
    shown = foreground(image)
    assert shown[head].mean() > 0.99 and shown[~head].mean() < 0.01
    brain = np.zeros(image.shape, bool)
    brain[15:30, 15:30, 10:20] = True
    assert (foreground(image, brain) == (head & brain)).all()  # inside the model's brain where the two meet
    assert (foreground(image, np.zeros(image.shape, bool)) == shown).all()  # an empty brain is no constraint
