"""Input limits: a small file whose header promises gigabytes, or a recipe that asks for them, is refused by name.

For every input class — NIfTI, PNG, TIFF (kaggle_3m's), DICOM, a recipe's sizes — the readers refuse
what is over glioscope.io.limits from the header, before decoding; a folder being ingested skips only
that file; and raising the limit lets a large but valid input through. The same inputs under a memory
cap, through the command line and the web app: test_limits_capped.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pydicom.uid import RLELossless, generate_uid

from glioscope.cli import main
from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.ingest import ingest
from glioscope.io import limits
from glioscope.io.dicom import load_series, read_header
from glioscope.io.images import load_image, read_image_header
from glioscope.io.nifti import check_volume, load_volume
from glioscope.io.study import read_study
from glioscope.io.testing import (
    dicom_slice,
    write_dicom_series,
    write_nifti,
    write_nifti_header,
    write_png,
    write_tiff,
)
from glioscope.recipe import load_recipe
from glioscope.util.schema import SettingError

PIL_WARNS, PIL_REFUSES = 13000, 65536  # sides of square canvases in PIL's warning and error ranges
# Canvases as (width, height, channels): absurd shapes, PIL's warning range (decoded without a limit), beyond it.
CANVASES = {
    "100000 x 1": (100000, 1, 1),
    "1 x 100000": (1, 100000, 1),
    "PIL warns": (PIL_WARNS, PIL_WARNS, 3),
    "PIL refuses": (PIL_REFUSES, PIL_REFUSES, 1),
}
NIFTI_BOMBS = {  # shape, dtype: a few KB of gzip each
    "4000^3 float32": ((4000, 4000, 4000), np.float32),
    "int16 slab": ((4000, 4000, 100), np.int16),
    "float64 over the bytes": ((600, 600, 400), np.float64),  # 144 M voxels, within the count: 1.15 GB
}


@pytest.fixture(autouse=True)
def _restore_pil_threshold(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # a raised limit raises PIL's


def save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_image(path: Path, width: int, height: int, channels: int) -> Path:
    if path.suffix == ".png":
        return write_png(path, width, height, channels)
    return write_tiff(path, width, height, channels)


def dicom_bomb(path: Path, kind: str, patient: str = "P9") -> Path:
    """One MR slice whose header promises gigabytes: huge Rows x Columns, or many frames of compressed data."""
    ds = dicom_slice(patient, generate_uid(), generate_uid(), "AX T1", 0)
    if kind == "rows x columns":
        ds.Rows = ds.Columns = 65535  # its 128 bytes of pixel data stay as they are
    elif kind == "frames, compressed":
        ds.compress(RLELossless)  # encapsulated: the pixel data's length says nothing of the frames
        ds.Rows, ds.Columns, ds.NumberOfFrames = 4096, 4096, 1000
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.Rows, ds.Columns, ds.NumberOfFrames = 8192, 8192, 2
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


DICOM_BOMBS = ("rows x columns", "frames, compressed", "colour frames")


def ingested(sources, out: Path, **options) -> tuple[dict, dict[str, str]]:
    """Ingest; (summary, {file name: skip reason})."""
    _, summary = ingest(sources if isinstance(sources, list) else [sources], out, progress=False, echo=None, **options)
    skipped = pd.read_csv(out / "skipped.csv", dtype=str)
    assert sorted(skipped["path"]) == sorted(s["path"] for s in summary["skipped"])
    return summary, {Path(p).name: r for p, r in zip(skipped["path"], skipped["reason"])}


def refused(reason: str, variable: str = "") -> bool:
    return limits.REFUSED in reason and (variable or "GLIOSCOPE_MAX_") in reason


# --- the limits ------------------------------------------------------------------


def test_the_defaults_admit_real_mri_and_refuse_more():
    default = limits.InputLimits()
    assert default.problem("", 512 * 512 * 1000) == ""  # a 512 x 512 x 1000 float32 volume: 1000 MiB
    assert default.image_problem(4096, 4096, 3) == ""
    assert "GLIOSCOPE_MAX_VOXELS" in default.problem("", 512 * 512 * 1001)
    assert "GLIOSCOPE_MAX_BYTES" in default.problem("", 512 * 512 * 600, value_bytes=8)  # float64: 1.26 GB
    assert "GLIOSCOPE_MAX_IMAGE_SIDE" in default.image_problem(8193, 1)


def test_the_environment_sets_the_limits_and_a_bad_value_is_named(monkeypatch):
    assert limits.current() == limits.InputLimits()
    monkeypatch.setenv("GLIOSCOPE_MAX_VOXELS", "2_000_000_000")
    monkeypatch.setenv("GLIOSCOPE_MAX_BYTES", "8e9")
    monkeypatch.setenv("GLIOSCOPE_MAX_IMAGE_SIDE", " 20000 ")
    assert limits.current() == limits.InputLimits(2_000_000_000, 8_000_000_000, 20000)
    for bad in ("lots", "0", "-5", "1.5", "inf"):
        monkeypatch.setenv("GLIOSCOPE_MAX_BYTES", bad)
        with pytest.raises(InputError, match=f"GLIOSCOPE_MAX_BYTES='{bad}': expected a whole number"):
            limits.current()


# --- NIfTI -----------------------------------------------------------------------


@pytest.mark.parametrize("case", list(NIFTI_BOMBS))
def test_a_nifti_header_promising_gigabytes_is_refused_before_decompressing(tmp_path, case):
    shape, dtype = NIFTI_BOMBS[case]
    bomb = write_nifti_header(tmp_path / "bomb.nii.gz", shape, dtype)
    assert bomb.stat().st_size < 10_000
    skip = check_volume(bomb)  # were the voxels read, the few KB would be "cannot be read" (or fill the memory)
    assert isinstance(skip, Skip) and refused(skip.reason) and "x".join(map(str, shape)) in skip.reason.replace(" ", "")
    with pytest.raises(InputError) as error:
        load_volume(bomb)
    assert str(error.value).startswith(f"{bomb}: {limits.REFUSED}")
    with pytest.raises(InputError, match=f"{bomb}: {limits.REFUSED}"):
        read_study(bomb)  # what predict reads


def test_the_radiomics_reader_refuses_a_nifti_bomb_before_simpleitk_reads_it(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    from glioscope.radiomics.extract import _read_volume

    bomb = write_nifti_header(tmp_path / "seg.nii.gz", (4000, 4000, 4000), np.uint8)
    with pytest.raises(InputError, match=f"{bomb}: {limits.REFUSED}.*GLIOSCOPE_MAX_VOXELS"):
        _read_volume(str(bomb), sitk)  # a --mask given to predict with a radiomics run
    good = write_nifti(tmp_path / "good.nii.gz")
    assert _read_volume(str(good), sitk).GetSize() == (8, 9, 10)


def test_ingest_skips_only_the_nifti_bomb(tmp_path):
    write_nifti(tmp_path / "cases" / "good" / "good_t1.nii.gz")
    write_nifti(tmp_path / "cases" / "fine" / "fine_t1.nii.gz", dtype=np.float32)
    for case, (shape, dtype) in NIFTI_BOMBS.items():
        write_nifti_header(tmp_path / "cases" / "bad" / f"{case.split()[0]}_t1.nii.gz", shape, dtype)
    summary, skipped = ingested(tmp_path / "cases", tmp_path / "cohort")
    assert summary["items"] == 2 and len(skipped) == len(NIFTI_BOMBS)
    assert all(refused(reason) for reason in skipped.values())


def test_a_raised_limit_lets_a_large_valid_volume_through(tmp_path, monkeypatch):
    volume = write_nifti(tmp_path / "big" / "big_t1.nii.gz", shape=(600, 600, 10))
    monkeypatch.setenv("GLIOSCOPE_MAX_VOXELS", "1000000")
    assert refused(check_volume(volume).reason, "GLIOSCOPE_MAX_VOXELS")
    with pytest.raises(InputError, match="600 x 600 x 10 voxels of int16"):
        load_volume(volume)
    with pytest.raises(InputError, match="no images found.*big_t1.nii.gz: refused before decoding"):
        ingest([tmp_path / "big"], tmp_path / "refused", progress=False, echo=None)  # its only file
    assert not (tmp_path / "refused").exists()
    monkeypatch.setenv("GLIOSCOPE_MAX_VOXELS", "4000000")
    assert check_volume(volume)["shape"] == (600, 600, 10)
    data, _ = load_volume(volume)
    assert data.shape == (600, 600, 10) and data[0, 0, 5] == 5  # the ramp, decoded
    assert ingested(tmp_path / "big", tmp_path / "accepted")[0]["items"] == 1


# --- 2D images: PNG, TIFF --------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("canvas", list(CANVASES))
def test_a_huge_or_absurd_canvas_is_refused_by_name_without_a_pil_warning(tmp_path, canvas, suffix):
    width, height, channels = CANVASES[canvas]
    image = write_image(tmp_path / f"bomb{suffix}", width, height, channels)
    assert image.stat().st_size < 10 * 2**20
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        skip = read_image_header(image)
        with pytest.raises(InputError) as error:
            load_image(image)
    assert not caught, [str(w.message) for w in caught]  # PIL's DecompressionBombWarning became the refusal
    assert isinstance(skip, Skip) and refused(skip.reason, "GLIOSCOPE_MAX_IMAGE_SIDE")
    assert str(error.value).startswith(f"{image}: {limits.REFUSED}") and "pixels" in str(error.value)
    with pytest.raises(InputError, match=limits.REFUSED):
        read_study(image)


def test_an_mri_sized_image_is_read_at_the_defaults(tmp_path):
    image = write_png(tmp_path / "large.png", 4096, 4096, 3)
    assert read_image_header(image) == {"path": str(image), "rows": 4096, "cols": 4096, "channels": 3}
    assert load_image(image).shape == (4096, 4096, 3)


def test_ingest_skips_only_the_image_bombs(tmp_path):
    for k in range(2):
        save(tmp_path / "images" / "II" / f"p{k}_1.png", np.full((16, 16), 40 * k, np.uint8))
    for name, (width, height, channels) in CANVASES.items():
        write_png(tmp_path / "images" / "IV" / f"{name.replace(' ', '')}_1.png", width, height, channels)
    summary, skipped = ingested(tmp_path / "images", tmp_path / "cohort", format="imagefolder")
    assert summary["items"] == 2 and len(skipped) == len(CANVASES)
    assert all(refused(reason, "GLIOSCOPE_MAX_IMAGE_SIDE") for reason in skipped.values())


def test_kaggle3m_tiffs_go_through_the_same_check(tmp_path):
    root = tmp_path / "kaggle_3m"
    case = "TCGA_CS_4941_19960909"
    for index in (1, 2):
        save(root / case / f"{case}_{index}.tif", np.full((8, 8, 3), 50, np.uint8))
        save(root / case / f"{case}_{index}_mask.tif", np.zeros((8, 8), np.uint8))
    write_tiff(root / case / f"{case}_3.tif", PIL_WARNS, PIL_WARNS, 3)
    write_tiff(root / case / f"{case}_2_mask.tif", 100000, 1, 1)
    (root / "data.csv").write_text("Patient,neoplasm_histologic_grade\nTCGA_CS_4941,2.0\n")
    summary, skipped = ingested(root, tmp_path / "cohort")
    assert summary["items"] == 2 and sorted(skipped) == [f"{case}_2_mask.tif", f"{case}_3.tif"]
    assert all(refused(reason, "GLIOSCOPE_MAX_IMAGE_SIDE") for reason in skipped.values())


def test_raised_image_limits_let_a_larger_canvas_through_pil_too(tmp_path, monkeypatch):
    image = write_png(tmp_path / "wide.png", 4096, 512)
    monkeypatch.setenv("GLIOSCOPE_MAX_IMAGE_SIDE", "2048")
    assert refused(read_image_header(image).reason, "GLIOSCOPE_MAX_IMAGE_SIDE")
    monkeypatch.setenv("GLIOSCOPE_MAX_IMAGE_SIDE", "4096")
    assert load_image(image).shape == (512, 4096)
    huge = write_png(tmp_path / "huge.png", 15000, 15000)  # 225 M pixels: beyond PIL's own threshold of 179 M
    assert "PIL" not in read_image_header(huge).reason
    monkeypatch.setenv("GLIOSCOPE_MAX_IMAGE_SIDE", "15000")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image_header(huge)["rows"] == 15000


# --- DICOM -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", DICOM_BOMBS)
def test_a_dicom_header_promising_gigabytes_is_refused_before_its_pixels(tmp_path, kind):
    bomb = dicom_bomb(tmp_path / "bomb.dcm", kind)
    assert bomb.stat().st_size < 10_000
    skip = read_header(bomb)
    assert isinstance(skip, Skip) and refused(skip.reason) and "pixels x" in skip.reason
    with pytest.raises(InputError, match=limits.REFUSED) as error:
        read_study(bomb)  # what predict reads
    assert str(bomb) in str(error.value)


def test_ingest_skips_only_the_dicom_bombs(tmp_path):
    write_dicom_series(tmp_path / "tree" / "P1" / "good", n_slices=3)
    for k, kind in enumerate(DICOM_BOMBS):
        dicom_bomb(tmp_path / "tree" / "P2" / f"bomb{k}.dcm", kind)
    summary, skipped = ingested(tmp_path / "tree", tmp_path / "cohort")
    assert summary["items"] == 1 and sorted(skipped) == [f"bomb{k}.dcm" for k in range(len(DICOM_BOMBS))]
    assert all(refused(reason) for reason in skipped.values())


def test_a_series_over_the_limit_in_all_is_skipped_and_not_loaded(tmp_path, monkeypatch):
    write_dicom_series(tmp_path / "tree" / "P1" / "ax", n_slices=3)  # 8 x 8 pixels each, 192 values in all
    write_dicom_series(tmp_path / "tree" / "P2" / "cor", "P2", n_slices=2)
    summary = ingested(tmp_path / "tree", tmp_path / "all")[0]
    frame = pd.read_csv(tmp_path / "all" / "cohort.csv", dtype=str)
    three = frame[frame["patient_id"] == "P001"].iloc[0].to_dict()
    assert summary["items"] == 2 and load_series(three)[0].shape == (3, 8, 8)
    monkeypatch.setenv("GLIOSCOPE_MAX_VOXELS", "150")
    summary, skipped = ingested(tmp_path / "tree", tmp_path / "limited")
    assert summary["items"] == 1 and list(skipped) == ["ax"]
    assert refused(skipped["ax"], "GLIOSCOPE_MAX_VOXELS") and "3 files of 8 x 8 pixels (192 values)" in skipped["ax"]
    with pytest.raises(InputError, match="3 files of this series") as error:
        load_series(three)  # a cohort made under a higher limit: refused before the file that crosses it is decoded
    assert str(error.value).startswith(str(tmp_path / "tree" / "P1" / "ax"))


# --- recipes ---------------------------------------------------------------------

RECIPE_SIZES = {
    "slice size": ("sdl", "data.slices.size=100000", "data.slices.size: got 100000"),
    "volume shape": ("st3d", "data.volumes.shape=[4000,4000,4000]", "data.volumes.shape: got [4000, 4000, 4000]"),
    "cube": ("st3d", "data.volumes.shape=1000", "data.volumes.shape: got [1000, 1000, 1000]"),
    "batch": ("sdl", "train.batch_size=100000", "train.batch_size: got 100000"),
    "3D batch": ("st3d", "train.batch_size=1000", "train.batch_size: got 1000"),
}


@pytest.mark.parametrize("case", list(RECIPE_SIZES))
def test_a_recipe_asking_for_gigabytes_is_refused_naming_the_key(case):
    recipe, setting, message = RECIPE_SIZES[case]
    with pytest.raises(SettingError) as error:
        load_recipe(recipe, [setting])
    assert str(error.value).startswith(message) and "GLIOSCOPE_MAX_" in str(error.value)


@pytest.mark.parametrize("quick", [False, True])
def test_every_shipped_recipe_is_within_the_default_limits(quick):
    from glioscope.recipe import DEEP

    for name in DEEP.names():
        assert load_recipe(name, quick=quick).train.batch_size >= 1


def test_cv_with_a_huge_size_exits_2_before_reading_or_writing(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["cv", "sdl", "--cohort", str(tmp_path / "cohort"), "--set", "data.slices.size=100000", "-o", str(out)])
    assert code == 2 and not out.exists()
    assert "data.slices.size: got 100000" in capsys.readouterr().err


def test_raised_limits_admit_a_larger_recipe(monkeypatch):
    settings = ["data.slices.size=12000", "train.batch_size=1"]  # 3 x 12000 x 12000: 432 M values, 1.7 GB
    with pytest.raises(SettingError, match="data.slices.size: got 12000"):
        load_recipe("sdl", settings)
    monkeypatch.setenv("GLIOSCOPE_MAX_VOXELS", "500000000")
    with pytest.raises(SettingError, match="GLIOSCOPE_MAX_BYTES"):
        load_recipe("sdl", settings)
    monkeypatch.setenv("GLIOSCOPE_MAX_BYTES", "2000000000")
    assert load_recipe("sdl", settings).data.slices.size == 12000


def test_a_volume_spacing_too_fine_for_its_field_of_view_is_skipped_by_name(tmp_path, monkeypatch):
    from glioscope.samples.volumes.settings import VolumeSettings
    from glioscope.samples.volumes.single import volume_from_file

    volume = write_nifti(tmp_path / "head_t1.nii.gz", shape=(64, 64, 40), dtype=np.float32, spacing=(1, 1, 1))
    settings = VolumeSettings(channels=("T1",), spacing=0.5, shape=(8, 8, 8), skull_strip="none")
    assert len(volume_from_file(volume, settings)) == 1  # 128 x 128 x 80 voxels: within the default
    monkeypatch.setenv("GLIOSCOPE_MAX_VOXELS", "1000000")
    with pytest.raises(InputError) as error:
        volume_from_file(volume, settings)  # predict's path; a cohort's build skips it with this reason
    assert f"{volume}: refused before resampling: at data.volumes.spacing 0.5 mm" in str(error.value)
    assert "128 x 128 x 80 voxels" in str(error.value) and "GLIOSCOPE_MAX_VOXELS" in str(error.value)
