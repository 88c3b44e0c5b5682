"""Atomic outputs: complete or absent, never partial; ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from glioscope.errors import InputError
from glioscope.util import atomic


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_failed_folder_leaves_nothing_and_refuses_existing(tmp_path):
    out = tmp_path / "cohort"
    with pytest.raises(RuntimeError):
        with atomic.atomic_dir(out) as tmp:
            (tmp / "cohort.csv").write_text("x")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic.atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(InputError, match="already exists"):
        with atomic.atomic_dir(out):
            pass
    with atomic.atomic_dir(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort"]


def test_outputs_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic.atomic_dir(tmp_path / "out") as tmp:
            atomic.write_text(tmp / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / "f.txt").stat().st_mode) == 0o644
