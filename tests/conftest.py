"""Shared fixtures: the tiny phantom cohort (made once per session) and the real samples."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def tiny_phantom(tmp_path_factory) -> Path:
    """The `tiny` phantom cohort in every layout, written once for the whole session."""
    from glioscope.synth import synthesize

    out = tmp_path_factory.mktemp("phantom") / "tiny"
    synthesize(out, preset="tiny", seed=0, progress=False)
    return out


@pytest.fixture(scope="module")
def monkeypatch_module():
    """A monkeypatch that lasts for one test module (e.g. its cache folder)."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch
