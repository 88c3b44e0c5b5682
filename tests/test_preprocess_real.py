"""2D samples from the real data beside the project (skipped when it is absent)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from glioscope.ingest import ingest
from glioscope.io.images import load_image
from glioscope.samples.slices import SliceSettings, build_slices


def sample(shared_data: Path, *parts: str) -> Path:
    path = shared_data.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


def test_kaggle3m_native_channels_cropped_to_the_mask(shared_data, tmp_path):
    source = sample(shared_data, "lgg-kaggle3m-sample", "kaggle_3m")
    frame, _ = ingest([source], out=None, workers=1, progress=False, echo=None)
    frame = frame[frame["patient_id"].isin(sorted(set(frame["patient_id"]))[:2])]
    settings = SliceSettings(channels="native", roi_crop=True, size=227)
    result = build_slices(frame, settings, tmp_path / "cache", workers=1, progress=False)
    assert result.images.shape[1:] == (3, 227, 227) and 0 < len(result) < len(frame)
    assert (result.table["tumour_area"] > 0).all()  # slices with an empty mask are left out, and said so
    assert any("empty tumour mask" in note for note in result.notes)
    # The three channels are the file's own (pre-contrast, FLAIR, post-contrast), not grey copies.
    assert not np.array_equal(result.images[:, 0], result.images[:, 1])
    first = result.table.iloc[0]
    mask = load_image(frame.loc[frame["item_id"] == first["item_id"], "mask_path"].iloc[0]) > 0
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    top, left, bottom, right = (int(v) for v in first["crop"].split(","))
    assert top <= rows[0] and rows[-1] < bottom and left <= cols[0] and cols[-1] < right
    assert first["slice_index"] == frame.loc[frame["item_id"] == first["item_id"], "slice_index"].iloc[0]


def test_kaggle_224_jpgs_as_stacked_grey(shared_data, tmp_path):
    source = sample(shared_data, "kaggle-brain-tumor-224", "Training")
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        (tmp_path / "jpg" / folder.name).mkdir(parents=True)
        for path in sorted(folder.glob("*.jpg"))[:3]:
            shutil.copy(path, tmp_path / "jpg" / folder.name / path.name)
    frame, _ = ingest([tmp_path / "jpg"], out=None, workers=1, progress=False, echo=None)
    result = build_slices(frame, SliceSettings(size=224, scaling="none"), None, workers=1, progress=False)
    assert result.images.shape == (len(frame), 3, 224, 224) and len(frame) == 12
    assert sorted(set(result.table["label"])) == sorted(p.name for p in source.iterdir() if p.is_dir())
    original = load_image(frame["path"].iloc[0]).astype(float)
    grey = original @ [0.299, 0.587, 0.114] if original.ndim == 3 else original
    assert np.abs(result.images[0, 0] - grey).max() <= 1  # 8-bit images kept as they are with scaling "none"
