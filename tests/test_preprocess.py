"""2D samples from a cohort table: selection, orientation, scaling, ROI crops, the per-item cache, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from glioscope import cohort
from glioscope.errors import InputError
from glioscope.ingest import ingest
from glioscope.samples.slices import SliceSettings, build_slices, slices_from_file


def read(sources, **select):
    frame, _ = ingest([Path(s) for s in sources], out=None, select=select or None, workers=1, progress=False, echo=None)
    return frame


def build(frame, cache_dir=None, **settings):
    return build_slices(frame, SliceSettings(**settings), cache_dir=cache_dir, workers=1, progress=False)


@pytest.fixture(scope="module")
def dicom_tree(tiny_phantom):
    return read([tiny_phantom / "dicom"])


@pytest.fixture(scope="module")
def sagittal_t1(dicom_tree):
    return cohort.select(dicom_tree, {"plane": ["sagittal"], "sequence": ["T1"]})


@pytest.fixture(scope="module")
def brats(tiny_phantom):
    return read([tiny_phantom / "brats"])


@pytest.fixture
def image_folder(tiny_phantom, tmp_path) -> Path:
    """A private copy of the phantom's image folder, free to damage."""
    return Path(shutil.copytree(tiny_phantom / "imagefolder", tmp_path / "imagefolder"))


def canonical_seg_areas(mask_path: str) -> np.ndarray:
    """Tumour pixels per axial slice, computed with nibabel alone."""
    seg = np.asanyarray(nib.as_closest_canonical(nib.load(mask_path)).dataobj)
    return (seg > 0).sum(axis=(0, 1))


def test_all_slices_of_sagittal_t1_series(sagittal_t1):
    result = build(sagittal_t1)
    assert result.images.shape == (int(sagittal_t1["n_slices"].sum()), 3, 128, 128)
    assert result.images.dtype == np.uint8
    assert result.images.max() > 230 and result.images.min() == 0  # minmax per series (interpolation trims peaks)
    per_patient = result.table.groupby("patient_id").size()
    assert per_patient.to_dict() == dict(zip(sagittal_t1["patient_id"], sagittal_t1["n_slices"]))
    assert (result.images[:, 0] == result.images[:, 1]).all() and (result.images[:, 0] == result.images[:, 2]).all()
    assert result.table["slice_id"].is_unique and not result.skipped
    labels = dict(zip(sagittal_t1["patient_id"], sagittal_t1["label"]))
    assert (result.table["label"] == result.table["patient_id"].map(labels)).all()
    assert result.table.groupby("item_id")["slice_index"].apply(list).map(lambda s: s == sorted(s)).all()


def test_middle_fraction_keeps_the_central_slices(sagittal_t1):
    result = build(sagittal_t1, selection="middle", middle_fraction=0.2, channels="single")
    assert result.images.shape[1] == 1
    for row in sagittal_t1.itertuples():
        kept = result.table.loc[result.table["item_id"] == row.item_id, "slice_index"].tolist()
        count = max(1, int(np.floor(row.n_slices * 0.2 + 0.5)))
        start = (row.n_slices - count) // 2
        assert kept == list(range(start, start + count))


def test_representative_slice_has_the_largest_tumour(brats):
    t1c = brats[brats["sequence"] == "T1c"]
    result = build(t1c, selection="representative", size=227)
    assert result.images.shape == (len(t1c), 3, 227, 227)
    assert result.table["patient_id"].is_unique and set(result.table["patient_id"]) == set(t1c["patient_id"])
    for row in t1c.itertuples():
        areas = canonical_seg_areas(row.mask_path)
        chosen = result.table[result.table["patient_id"] == row.patient_id].iloc[0]
        assert chosen["slice_index"] == int(np.argmax(areas)) and chosen["tumour_area"] == areas.max() > 0


def test_axial_slices_are_shown_anterior_up_right_on_the_left(brats):
    row = brats[brats["sequence"] == "T1c"].iloc[0]
    image = nib.as_closest_canonical(nib.load(row["path"]))
    volume = np.asanyarray(image.dataobj).astype(np.float32)
    x, y, z = volume.shape
    result = build(brats[brats["item_id"] == row["item_id"]], size=max(x, y), channels="single")
    assert len(result) == z
    k = z // 2
    # Radiological display: rows run anterior -> posterior (+y down the flip), columns patient right -> left.
    expected = volume[::-1, ::-1, k].T
    expected = (expected - volume.min()) / (volume.max() - volume.min()) * 255
    pad = (max(x, y) - x) // 2, (max(x, y) - y) // 2
    shown = result.images[k, 0, pad[1] : pad[1] + y, pad[0] : pad[0] + x].astype(float)
    assert np.abs(shown - expected).max() <= 1
    assert result.images[k, 0, :, : pad[0]].max() == 0  # the zero padding that keeps the aspect ratio


def test_roi_crop_is_centred_on_the_tumour(brats):
    t1c = brats[brats["sequence"] == "T1c"]
    margin = 0.1
    result = build(t1c, selection="representative", roi_crop=True, roi_margin=margin, size=64)
    for slice_row in result.table.itertuples():
        mask_path = t1c.loc[t1c["patient_id"] == slice_row.patient_id, "mask_path"].iloc[0]
        seg = np.asanyarray(nib.as_closest_canonical(nib.load(mask_path)).dataobj) > 0
        shown = seg[::-1, ::-1, slice_row.slice_index].T
        rows, cols = np.nonzero(shown.any(axis=1))[0], np.nonzero(shown.any(axis=0))[0]
        top, left, bottom, right = (int(v) for v in slice_row.crop.split(","))
        box_side = max(rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0])
        assert bottom - top == right - left >= box_side * (1 + 2 * margin)
        assert top <= rows[0] and rows[-1] < bottom and left <= cols[0] and cols[-1] < right
        assert abs((top + bottom) - (rows[0] + rows[-1] + 1)) <= 1
        assert abs((left + right) - (cols[0] + cols[-1] + 1)) <= 1
    assert (result.images[:, 0, 24:40, 24:40] > 0).mean() > 0.5  # the tumour fills the centre, not padding


def test_representative_without_masks_uses_the_middle_slice(dicom_tree):
    t1c = cohort.select(dicom_tree, {"sequence": ["T1c"]})
    result = build(t1c, selection="representative")
    assert len(result) == t1c["patient_id"].nunique()
    middle = dict(zip(t1c["item_id"], t1c["n_slices"] // 2))
    assert (result.table["slice_index"] == result.table["item_id"].map(middle)).all()
    assert any("without a tumour" in note for note in result.notes)


def test_percentile_scaling_clips_an_outlier(tmp_path):
    volume = np.zeros((20, 20, 5), np.float32)
    volume[5:15, 5:15] = np.linspace(10, 100, 100 * 5).reshape(10, 10, 5)
    volume[6, 6, 2] = 10_000  # one hot voxel
    path = tmp_path / "case_t1.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.eye(4)), path)
    frame = cohort.to_frame([{"patient_id": "case", "kind": "volume", "path": str(path)}])
    linear = build(frame, size=20, channels="single").images
    clipped = build(frame, size=20, channels="single", scaling="percentile", percentiles=(1, 99)).images
    assert np.sort(linear, axis=None)[-2] <= 3  # the outlier squeezes everything else into the darkest levels
    assert (clipped == 255).sum() > 1  # the brightest 1% saturate, not just the outlier
    assert np.median(clipped[clipped > 0]) > 100


def test_min_foreground_drops_blank_slices(brats):
    t1c = brats[brats["sequence"] == "T1c"].head(2)
    every = build(t1c, size=32)
    some = build(t1c, size=32, min_foreground=0.05)
    assert 0 < len(some) < len(every)
    assert any("foreground" in note for note in some.notes)


def test_sequences_stacked_as_channels(brats):
    stacked = build(brats, channels=("T1", "FLAIR", "T1c"), selection="representative", size=48)
    alone = build(brats[brats["sequence"] == "T1c"], channels="single", selection="representative", size=48)
    assert stacked.images.shape == (brats["patient_id"].nunique(), 3, 48, 48)
    assert (stacked.images[:, 2] == alone.images[:, 0]).all()
    assert (stacked.table["sequence"] == "T1+FLAIR+T1c").all()


def test_image_folder_pngs_are_one_slice_each(image_folder):
    frame = read([image_folder])
    result = build(frame, size=224)
    assert result.images.shape == (len(frame), 3, 224, 224)
    assert list(result.table["item_id"]) == list(frame["item_id"])
    assert (result.table["label"] == frame["label"]).all()


def test_second_build_reads_only_the_cache(sagittal_t1, brats, image_folder, tmp_path, monkeypatch):
    frame = cohort.normalise(
        cohort.to_frame(
            [*sagittal_t1.to_dict("records"), *brats.to_dict("records"), *read([image_folder]).to_dict("records")]
        ).assign(item_id=lambda f: [f"i{n}" for n in range(len(f))])
    )
    cache = tmp_path / "cache"
    first = build(frame, cache, size=64)
    assert len(list((cache / SliceSettings(size=64).key()).glob("*.npz"))) == len(frame)

    def refuse(*args, **kwargs):
        raise AssertionError("a source file was opened on a cache hit")

    loaders = ("glioscope.io.dicom.load_series", "glioscope.io.nifti.load_volume", "glioscope.io.images.load_image")
    for target in (*loaders, "pydicom.dcmread", "nibabel.load", "PIL.Image.open"):
        monkeypatch.setattr(target, refuse)
    second = build(frame, cache, size=64)
    assert np.array_equal(first.images, second.images)
    assert first.table.equals(second.table)


def test_changed_file_is_decoded_again(image_folder, tmp_path, monkeypatch):
    frame = read([image_folder])
    cache = tmp_path / "cache"
    build(frame, cache, size=32)
    from glioscope.io import images

    opened, load = [], images.load_image
    monkeypatch.setattr(images, "load_image", lambda path: opened.append(Path(path)) or load(path))
    changed = Path(frame["path"].iloc[3])
    Image.fromarray(np.full((64, 64), 200, np.uint8)).save(changed)
    result = build(frame, cache, size=32)
    assert opened == [changed]
    assert result.images[3].min() == result.images[3].max()  # the new, uniform picture
    build(frame, cache, size=32)
    assert opened == [changed]


def test_unreadable_files_are_skipped_with_the_reason(image_folder, tiny_phantom, tmp_path):
    frame = read([image_folder])
    broken = Path(frame["path"].iloc[0])
    broken.write_bytes(b"not a png at all")
    result = build(frame, tmp_path / "cache")
    assert len(result) == len(frame) - 1
    assert [s.path for s in result.skipped] == [str(broken)]
    assert "cannot be read as an image" in result.skipped[0].reason
    again = build(frame, tmp_path / "cache")  # the skip is cached with its reason too
    assert [(s.path, s.reason) for s in again.skipped] == [(s.path, s.reason) for s in result.skipped]
    case = Path(shutil.copytree(tiny_phantom / "brats", tmp_path / "brats"))
    volumes = read([case], sequence=["T1c"])
    cut = Path(volumes["path"].iloc[1])
    cut.write_bytes(cut.read_bytes()[:400])
    result = build(volumes, selection="middle")
    assert [s.path for s in result.skipped] == [str(cut)] and result.table["item_id"].nunique() == len(volumes) - 1


def test_nothing_left_is_a_clear_error(image_folder):
    frame = read([image_folder])
    with pytest.raises(InputError, match="no slices left.*no tumour mask"):
        build(frame, roi_crop=True)
    with pytest.raises(InputError, match="no rows"):
        build(frame.head(0))


def test_parallel_decoding_matches_serial(sagittal_t1, tmp_path, monkeypatch):
    monkeypatch.setattr("glioscope.samples.slices.build._POOL_WORTH_SECONDS", 0.0)  # a pool even for tiny work
    serial = build(sagittal_t1, size=32)
    parallel = build_slices(sagittal_t1, SliceSettings(size=32), tmp_path / "cache", workers=2, progress=False)
    assert np.array_equal(serial.images, parallel.images) and serial.table.equals(parallel.table)


def test_slices_from_a_new_file(sagittal_t1, brats, image_folder):
    series = sagittal_t1.iloc[0]
    from_dicom = slices_from_file(Path(series["path"]), SliceSettings(selection="middle"))
    assert set(from_dicom.table["patient_id"]) == {series["patient_id"]}
    assert len(from_dicom) == max(1, int(np.floor(series["n_slices"] * 0.2 + 0.5)))
    row = brats[brats["sequence"] == "T1c"].iloc[0]
    volume = slices_from_file(Path(row["path"]), SliceSettings(selection="representative"))
    assert (
        len(volume) == 1 and volume.table["patient_id"].iloc[0] == row["patient_id"]
    )  # the case id, as ingest gives it
    assert any("without a tumour" in note for note in volume.notes)
    crop = SliceSettings(selection="representative", roi_crop=True)
    cropped = slices_from_file(Path(row["path"]), crop, mask_path=row["mask_path"])
    assert cropped.table["tumour_area"].iloc[0] == canonical_seg_areas(row["mask_path"]).max()
    picture = next(image_folder.rglob("*.png"))
    assert slices_from_file(picture, SliceSettings(size=32)).images.shape == (1, 3, 32, 32)


def test_settings_key_and_validation():
    assert SliceSettings(size=224).key() == SliceSettings(size=224).key() != SliceSettings(size=227).key()
    assert SliceSettings(channels="stack3").key() == SliceSettings(channels="single").key()  # same cached arrays
    assert SliceSettings(channels=["t1ce", "flair"]).channels == ("T1c", "FLAIR")
    with pytest.raises(InputError, match="selection"):
        SliceSettings(selection="best")
    with pytest.raises(InputError, match="percentiles"):
        SliceSettings(percentiles=(99, 1))
