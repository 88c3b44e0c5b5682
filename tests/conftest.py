"""Shared fixtures: the tiny phantom cohort (made once per session), the real samples, per-module folders."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("GLIOSCOPE_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real MRI samples beside the project; tests using them skip when absent."""
    path = _shared_data()
    if not path.is_dir():
        pytest.skip(f"real samples not found at {path} (set GLIOSCOPE_SHARED_DATA)")
    return path


@pytest.fixture(scope="session", autouse=True)
def auto_strip_is_mni() -> Iterator[None]:
    """skull_strip "auto" keeps to the MNI152 registration, as without the optional networks (HD-BET takes about
    40 s a head on 2 cores): the suite's times and results do not depend on the extras installed. Workers inherit it."""
    from glioscope.samples.volumes import brain_nets

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(brain_nets.AUTO_ORDER_VARIABLE, "mni")
        yield


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory) -> Iterator[Path]:
    """Tests never write into the user's ~/.cache/glioscope: the session's decoded slices, volumes and radiomics
    features go in a temporary folder (a module may set its own with monkeypatch_module)."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLIOSCOPE_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def tiny_phantom(tmp_path_factory) -> Path:
    """The `tiny` phantom cohort in every layout, written once for the whole session."""
    from glioscope.synth import synthesize

    out = tmp_path_factory.mktemp("phantom") / "tiny"
    synthesize(out, preset="tiny", seed=0, progress=False)
    return out


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory, request) -> Iterator[Path]:
    """A folder for one test module's shared fixtures (cohorts, runs), removed once the module's tests are done
    unless one of them failed: trained runs are large, and the suite should hold one module's at a time."""
    path = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2].removeprefix("test_"))
    failed = request.session.testsfailed
    yield path
    if request.session.testsfailed == failed:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def monkeypatch_module():
    """A monkeypatch that lasts for one test module (e.g. its cache folder)."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


FAST_2D = [
    "train.epochs=1",
    "cv.folds=2",
    "data.slices.size=64",
    "evaluate.bootstrap=30",
    "evaluate.gradcam_per_class=1",
    "model.weights=none",
]  # default precision: as a user runs it


@pytest.fixture(scope="session")
def tiny_2d_settings() -> list[str]:
    """The --set overrides tiny_2d_run was trained with (a resume must repeat them)."""
    return list(FAST_2D)


@pytest.fixture(scope="session")
def sagittal_cohort(tiny_phantom, tmp_path_factory) -> Path:
    """The tiny phantom's sagittal T1 series: the sdl recipe's data."""
    from glioscope.ingest import ingest

    out = tmp_path_factory.mktemp("sagittal") / "cohort"
    ingest([tiny_phantom / "dicom"], out, select={"plane": ["sagittal"], "sequence": ["T1"]}, progress=False, echo=None)
    return out


@pytest.fixture(scope="session")
def tiny_2d_run(sagittal_cohort, tmp_path_factory) -> Path:
    """A finished `sdl` run (2 folds, 1 epoch, 64 px) on the sagittal cohort, for tests that apply or inspect one."""
    from glioscope.cli import main

    root = tmp_path_factory.mktemp("tiny-2d-run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLIOSCOPE_CACHE", str(root / "cache"))
        args = [arg for item in FAST_2D for arg in ("--set", item)]
        assert main(["cv", "sdl", "--cohort", str(sagittal_cohort), "-o", str(root / "run"), *args]) == 0
    return root / "run"


def _mgmt_cohort(root: Path, name: str, n: int, seed: int, effect: float):
    """An MGMT phantom of `n` subjects at MGMT effect `effect` (0: no signal): each subject's T1c volume and tumour
    mask, labelled by its status, ingested from a manifest; returns (cohort folder, manifest rows)."""
    import json
    from dataclasses import replace

    import pandas as pd

    from glioscope.cli import main
    from glioscope.synth import synthesize
    from glioscope.synth.presets import PRESETS

    phantom = root / f"phantom-{name}"
    preset = replace(PRESETS["mgmt"], n_grade_iv=n, montage_per_class=1)
    synthesize(phantom, preset, seed=seed, mgmt_effect=effect, layouts=["brats"], progress=False)
    truth = pd.read_csv(phantom / "truth.csv", dtype=str, keep_default_na=False)
    brats = phantom / json.loads((phantom / "synth.json").read_text())["layouts"]["brats"]
    rows = [
        {
            "path": brats / s.brats_id / f"{s.brats_id}_t1ce.nii.gz",
            "patient_id": f"{name}-{s.subject}",  # two seeds reuse BraTS ids: these are other patients
            "label": s.mgmt,
            "sequence": "T1c",
            "mask_path": brats / s.brats_id / f"{s.brats_id}_seg.nii.gz",
        }
        for s in truth.itertuples()
    ]
    pd.DataFrame(rows).to_csv(root / f"{name}.csv", index=False)
    args = ["ingest", str(root / f"{name}.csv"), "--format", "manifest", "--workers", "1", "-o"]
    assert main([*args, str(root / f"cohort-{name}")]) == 0
    return root / f"cohort-{name}", rows


@pytest.fixture(scope="session")
def mgmt_cohort():
    """mgmt_cohort(root, name, n, seed, effect) -> (cohort folder, manifest rows): an MGMT phantom's T1c volumes
    and tumour masks, whose MGMT signal is known (effect 0: none)."""
    return _mgmt_cohort
