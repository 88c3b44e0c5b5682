"""3D volumes from the real samples beside the project (skipped when they are absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glioscope.ingest import ingest
from glioscope.samples.volumes import VolumeSettings, build_volumes, volume_from_file

QUICK = {"spacing": 4.0, "shape": (48, 56, 48)}


def sample(shared_data: Path, *parts: str) -> Path:
    path = shared_data.joinpath("nifti", *parts)
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


def brain_fraction(volume: np.ndarray) -> float:
    return float((volume > 0).mean())


@pytest.mark.parametrize("case", ["BraTS2021_00006", "BraTS-GLI-00001-000"])
def test_brats_2021_and_2023_cases_as_four_channels(shared_data, tmp_path, case):
    frame, _ = ingest([sample(shared_data, case)], None, workers=1, progress=False, echo=None)
    settings = VolumeSettings(channels=("T1c", "T1", "T2", "FLAIR"), **QUICK)
    result = build_volumes(frame, settings, tmp_path / "cache", workers=1, progress=False)
    assert result.volumes.shape == (1, 4, 48, 56, 48) and not result.skipped
    row = result.table.iloc[0]
    assert row["skull_strip"] == "source" and row["sequences"] == "T1c+T1+T2+FLAIR"
    volume = result.volumes[0].astype(np.float32)
    assert volume.min() == 0 and volume.max() == 1
    assert 0.1 < brain_fraction(volume[0]) < 0.4  # 1,100-1,900 ml in a box of 8,257 ml
    # The brain is centred: the crop leaves a margin of background on every face.
    for axis in range(1, 4):
        assert np.take(volume[0], [0, -1], axis=axis - 1).max() == 0


def test_tcga_brainles_skull_stripped_volumes(shared_data, tmp_path):
    frame, _ = ingest([sample(shared_data, "tcga-brainles")], None, workers=1, progress=False, echo=None)
    result = build_volumes(frame, VolumeSettings(**QUICK), tmp_path / "cache", workers=1, progress=False)
    assert sorted(result.table["patient_id"]) == ["OtherEXampleFromTCIA", "TCGA-DU-7294"] and not result.skipped
    # TCGA-FG-6692 has its raw head next to the stripped files: the stripped (larger, 1 mm) T1c is chosen.
    assert result.table["source_paths"].str.contains("_t1c_bet").all()
    assert (result.table["skull_strip"] == "source").all()
    assert any("several rows" in note for note in result.notes)


def test_raw_tcga_t1_with_its_skull_is_stripped(shared_data):
    raw = sample(shared_data, "tcga-brainles", "OtherEXampleFromTCIA")
    path = next(raw.glob("T1_AX_*.nii.gz"))
    kept = volume_from_file(path, VolumeSettings(skull_strip="none", **QUICK))
    stripped = volume_from_file(path, VolumeSettings(**QUICK))
    assert kept.table.loc[0, "skull_strip"] == "none" and stripped.table.loc[0, "skull_strip"] == "mni"
    head, brain = (kept.volumes[0, 0] > 0.05).sum(), (stripped.volumes[0, 0] > 0).sum()
    # A 26-slice head of about 3,200 ml against the MNI152 brain mask (1,900 ml) fitted to it, on 4 mm voxels of 0.064 ml.
    assert 0.3 < brain / head < 0.75 and 1300 < brain * 0.064 < 2400
