"""The leak check's hashes: edited copies found, unrelated images kept apart, fingerprints of earlier versions,
damaged fingerprint files, and `predict` flagging a training image copied under another name."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image
from scipy import ndimage

from glioscope.cli import main
from glioscope.errors import InputError
from glioscope.leakcheck import (
    LEGACY_NEAR_BITS,
    LEGACY_NOTE,
    NEAR_BITS,
    NOT_STORED,
    SEEN_BY_PIXELS,
    Fingerprints,
    compare,
    perceptual_hash,
)
from glioscope.samples.slices import SliceSet, SliceSettings, slices_from_file

SETTINGS = SliceSettings(size=128)


def textured_head(seed: int, size: int = 224) -> np.ndarray:
    """A synthetic axial slice: an elliptic head of its own smooth texture, with a brighter rim, on black."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    cy, cx = 0.5 + rng.uniform(-0.04, 0.04, 2)
    radius = ((yy - cy) / rng.uniform(0.36, 0.42)) ** 2 + ((xx - cx) / rng.uniform(0.27, 0.32)) ** 2
    texture = ndimage.gaussian_filter(rng.normal(size=(size, size)), size / 50)
    texture = (texture - texture.min()) / np.ptp(texture)
    image = np.where(radius < 1, 50 + 150 * texture, 0) + np.where((radius > 0.82) & (radius < 1), 55, 0)
    return np.clip(image, 0, 255).astype(np.uint8)


def _shift(fraction: float):
    def edit(image: Image.Image) -> Image.Image:
        step = max(1, round(image.size[0] * fraction))
        return image.transform(image.size, Image.Transform.AFFINE, (1, 0, -step, 0, 1, step), fillcolor=0)

    return edit


def _pixels(function):
    return lambda image: Image.fromarray(np.clip(function(np.asarray(image, float)), 0, 255).astype(np.uint8))


def _jpeg(quality: int):
    def edit(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).copy()

    return edit


def _resized(there: float, back: bool):
    def edit(image: Image.Image) -> Image.Image:
        side = image.size[0]
        resized = image.resize((round(side * there),) * 2, Image.Resampling.BICUBIC)
        return resized.resize((side, side), Image.Resampling.BICUBIC) if back else resized

    return edit


EDITS = {
    "shift 2%": _shift(0.02),
    "shift 4%": _shift(0.04),
    "flip left-right": lambda image: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "flip up-down": lambda image: image.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    "rotation 3 degrees": lambda image: image.rotate(3, resample=Image.Resampling.BILINEAR),
    "rotation -5 degrees": lambda image: image.rotate(-5, resample=Image.Resampling.BILINEAR),
    "brightness +25": _pixels(lambda v: v + 25),
    "brightness x1.2": _pixels(lambda v: v * 1.2),
    "contrast x0.75": _pixels(lambda v: (v - v.mean()) * 0.75 + v.mean()),
    "contrast x1.25": _pixels(lambda v: (v - v.mean()) * 1.25 + v.mean()),
    "JPEG quality 90": _jpeg(90),
    "JPEG quality 75": _jpeg(75),
    "resized x1.14 and back": _resized(256 / 224, back=True),
    "resized to x0.8": _resized(0.8, back=False),
    "resized to x1.3": _resized(1.3, back=False),
}


def slice_set(paths, prefix: str) -> SliceSet:
    """The preprocessed slices of image files (as `predict` makes them), one patient each."""
    images = np.concatenate([slices_from_file(p, SETTINGS).images for p in paths])
    table = pd.DataFrame(
        {
            "slice_id": [f"{prefix}{k}" for k in range(len(images))],
            "item_id": [f"{prefix}{k}" for k in range(len(images))],
            "patient_id": [f"{prefix}p{k}" for k in range(len(images))],
            "label": "II",
        }
    )
    return SliceSet(images, table, SETTINGS)


def _arrays(images: list[np.ndarray], prefix: str) -> SliceSet:
    table = pd.DataFrame({"slice_id": [f"{prefix}{k}" for k in range(len(images))], "label": "II"})
    table["item_id"], table["patient_id"] = table["slice_id"], "p" + table["slice_id"]
    return SliceSet(np.stack([np.repeat(i[None], 3, 0) for i in images]), table, SETTINGS)


def _pairs(found) -> set[tuple[str, str]]:
    return set(found.exact) | {(a, b) for a, b, _ in found.near}


@pytest.fixture(scope="module")
def phantom_slice(tiny_phantom) -> np.ndarray:
    """An axial T1c phantom slice through the tumour (64 px)."""
    return np.asarray(Image.open(sorted((tiny_phantom / "imagefolder").rglob("*.png"))[0]).convert("L"))


@pytest.mark.parametrize("edit", list(EDITS))
@pytest.mark.parametrize("source", ["textured", "phantom"])
def test_an_edited_copy_is_found_and_unrelated_images_are_not(source, edit, phantom_slice, tmp_path):
    original = textured_head(1) if source == "textured" else phantom_slice
    paths = {"original": tmp_path / "original.png", "other": tmp_path / "other.png", "third": tmp_path / "third.png"}
    Image.fromarray(original).save(paths["original"])
    Image.fromarray(textured_head(2)).save(paths["other"])
    Image.fromarray(textured_head(3)).save(paths["third"])
    edited = EDITS[edit](Image.open(paths["original"]))
    paths["edited"] = tmp_path / f"edited.{'jpg' if edit.startswith('JPEG') else 'png'}"
    edited.save(paths["edited"])  # an edit as a file, decoded and preprocessed as any input is
    training = slice_set([paths["original"], paths["other"]], "a")
    new = slice_set([paths["edited"], paths["third"]], "b")
    found = compare(training, new)
    assert _pairs(found) == {("a0", "b0")}, f"{edit}: {found}"  # the copy, and nothing unrelated
    assert all(d <= NEAR_BITS for *_, d in found.near) and not found.legacy


def test_unrelated_images_stay_apart_in_every_flip():
    images = [textured_head(seed, 160) for seed in range(10, 20)]
    found = compare(_arrays(images, "a"), _arrays(images, "b"))
    assert set(found.exact) == {(f"a{k}", f"b{k}") for k in range(10)} and found.near == []


def test_exact_and_near_duplicates_are_found_and_blank_slices_ignored():
    heads = [textured_head(seed, 128) for seed in range(4)]
    rng = np.random.default_rng(0)
    noisy = np.clip(heads[1] * 1.1 + rng.normal(0, 8, heads[1].shape), 0, 255).astype(np.uint8)
    blank = np.zeros_like(heads[0])
    found = compare(_arrays([*heads, blank], "a"), _arrays([heads[0], noisy, heads[3][:, ::-1].copy(), blank], "b"))
    assert found.exact == [("a0", "b0")]  # the same image; two blank images are not a pair
    assert {(a, b) for a, b, _ in found.near} == {("a1", "b1"), ("a3", "b2")}  # brighter and noisier; mirrored
    assert ("pa3", "pb2", 1) in found.patients and "mirrored copies included" in " ".join(found.notes())


def test_the_perceptual_hash_is_that_of_earlier_versions():
    """Fingerprints files of earlier versions hold this hash: it must not change, or their searches would fail."""
    yy, xx = np.mgrid[:96, :80]
    image = ((np.sin(yy / 7.0) + np.cos(xx / 5.0 + yy / 11.0)) * 60 + 128).astype(np.uint8)[None]
    expected = [0xAD5507FEAD55F801, 0x52AAF80252AAF802, 0x52AAF80852AAF8BE, 0x52AAF8F8D2A8FABE]
    assert perceptual_hash(image).tolist() == expected


def test_fingerprints_of_an_earlier_version_still_load_and_say_what_they_miss(tmp_path):
    heads = [textured_head(seed, 128) for seed in range(3)]
    current = Fingerprints.of(_arrays(heads, "a"))
    old = tmp_path / "fingerprints.npz"  # the five arrays an earlier version wrote, and nothing else
    np.savez_compressed(
        old, **{k: getattr(current, k) for k in ("ids", "patients", "exact", "perceptual", "informative")}
    )
    loaded = Fingerprints.load(old)
    assert loaded.legacy and loaded.ids.tolist() == ["a0", "a1", "a2"]
    brighter = np.clip(heads[1].astype(int) + 20, 0, 255).astype(np.uint8)
    new = _arrays([heads[0], brighter, heads[2][::-1].copy()], "b")
    found = compare(loaded, new)
    assert found.legacy and found.exact == [("a0", "b0")]
    assert [(a, b) for a, b, _ in found.near] == [("a1", "b1")]  # the perceptual hash finds a brighter copy ...
    assert LEGACY_NOTE in found.notes() and f"at most {LEGACY_NEAR_BITS} of 256" in found.words()
    assert {(a, b) for a, b, _ in compare(current, new).near} == {("a1", "b1"), ("a2", "b2")}  # ... not a flip
    current.save(tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz", allow_pickle=False) as archive:  # what earlier versions read is there
        assert {"ids", "patients", "exact", "perceptual", "informative", "aligned"} == set(archive.files)


def test_a_damaged_fingerprints_file_is_an_error_naming_it_and_nothing_is_unpickled(tmp_path):
    heads = Fingerprints.of(_arrays([textured_head(seed, 64) for seed in range(2)], "a"))
    arrays = {k: getattr(heads, k) for k in heads.__dataclass_fields__}
    cases = {
        "text.npz": None,
        "pickled.npz": {**arrays, "ids": np.array([{"a": 1}, {"b": 2}], dtype=object)},
        "partial.npz": {k: v for k, v in arrays.items() if k != "exact"},
        "misfit.npz": {**arrays, "aligned": arrays["aligned"][:1]},
    }
    for name, content in cases.items():
        path = tmp_path / name
        if content is None:
            path.write_text("not an archive")
        else:
            np.savez(path, **content)
        with pytest.raises(InputError, match=name):
            Fingerprints.load(path)


def test_feature_vectors_match_only_when_identical():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 30))
    first = Fingerprints.of_vectors([f"a{k}" for k in range(200)], [f"a{k}" for k in range(200)], vectors)
    close = vectors + 1e-6  # other features, however close
    second = Fingerprints.of_vectors([f"b{k}" for k in range(200)], [f"b{k}" for k in range(200)], close)
    assert compare(first, second).near == [] and compare(first, second).exact == []
    assert compare(first, first).exact == [(f"a{k}", f"a{k}") for k in range(200)] and compare(first, first).near == []


def test_real_slices_are_found_after_edits_and_patients_stay_apart(shared_data, tmp_path):
    folder = shared_data / "lgg-kaggle3m-sample" / "kaggle_3m"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    cases = sorted(d for d in folder.iterdir() if d.is_dir())
    slices = [p for case in cases for p in sorted(case.glob("*.tif")) if not p.stem.endswith("_mask")]
    chosen = [p for p in slices if int(p.stem.split("_")[-1]) % 4 == 2]  # every 4th slice of each patient
    for edit in ("shift 2%", "flip left-right", "rotation -5 degrees", "JPEG quality 75", "contrast x1.25"):
        copies = []
        for k, path in enumerate(chosen):
            copies.append(tmp_path / f"{edit[:5]}{k}.{'jpg' if edit.startswith('JPEG') else 'png'}")
            EDITS[edit](Image.open(path)).save(copies[-1])
        training, new = slice_set(chosen, "a"), slice_set(copies, "b")
        prints = Fingerprints.of(training)
        found = compare(prints, Fingerprints.of(new))
        pairs = _pairs(found)
        usable = [k for k in range(len(chosen)) if prints.informative[k]]
        missed = [chosen[k].name for k in usable if (f"a{k}", f"b{k}") not in pairs]
        assert len(missed) <= len(usable) // 20, f"{edit}: {missed}"  # at least 95% found
        patient = [p.parent.name for p in chosen]
        strangers = [(a, b) for a, b in pairs if patient[int(a[1:])] != patient[int(b[1:])]]
        assert strangers == [], edit  # no slice paired with another patient's


def _dicom_slice(cohort_folder) -> tuple[np.ndarray, str]:
    """The middle slice of the first training patient's sagittal series, as stored, and the patient's id."""
    row = pd.read_csv(cohort_folder / "cohort.csv", dtype=str, keep_default_na=False).iloc[0]
    files = json.loads(row["files"])
    dataset = pydicom.dcmread(f"{row['path']}/{files[len(files) // 2]}")
    return dataset.pixel_array.astype(np.float64), row["patient_id"]


def test_predict_flags_a_training_image_copied_and_shifted_under_another_name(
    tiny_2d_run, sagittal_cohort, tmp_path, capsys
):
    pixels, patient = _dicom_slice(sagittal_cohort)
    grey = np.round(255 * (pixels - pixels.min()) / np.ptp(pixels)).astype(np.uint8)
    copied = tmp_path / "someone-new.png"
    Image.fromarray(np.roll(grey, (1, -2), axis=(0, 1))).save(copied)  # another patient, to all appearances
    unrelated = tmp_path / "stranger.png"
    Image.fromarray(textured_head(5, 64)).save(unrelated)
    assert (tiny_2d_run / "fingerprints.npz").is_file()  # written at the end of training
    assert main(["predict", str(tiny_2d_run), str(copied)]) == 0
    result = json.loads(capsys.readouterr().out)
    [entry] = result["patients"]
    assert entry["patient_id"] != patient and entry["seen_in_training"] is True
    assert entry["seen_because"] == [SEEN_BY_PIXELS]
    match = entry["matching_training_images"][0]
    assert match["input"] == str(copied) and match["match"] == "near-identical" and match["bits_apart"] <= NEAR_BITS
    assert match["training_image"].startswith("item")  # a slice of the run's cohort
    assert any(SEEN_BY_PIXELS in n and "not an independent test" in n for n in result["notes"])
    assert main(["predict", str(tiny_2d_run), str(unrelated)]) == 0
    [entry] = json.loads(capsys.readouterr().out)["patients"]
    assert entry["seen_in_training"] is False and entry["seen_because"] == []


def test_predict_says_when_the_run_keeps_no_fingerprints(tiny_2d_run, sagittal_cohort, tmp_path, capsys):
    pixels, _ = _dicom_slice(sagittal_cohort)
    copied = tmp_path / "copy.png"
    Image.fromarray(np.round(255 * (pixels - pixels.min()) / np.ptp(pixels)).astype(np.uint8)).save(copied)
    stored, away = tiny_2d_run / "fingerprints.npz", tmp_path / "fingerprints.npz"
    stored.rename(away)  # a run trained by an earlier version
    try:
        assert main(["predict", str(tiny_2d_run), str(copied)]) == 0
    finally:
        away.rename(stored)
    result = json.loads(capsys.readouterr().out)
    assert result["patients"][0]["seen_in_training"] is False and NOT_STORED in result["notes"]
