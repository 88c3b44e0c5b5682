"""An output that cannot be written (a full disk) is one clear error naming the file, with nothing partial left."""

from __future__ import annotations

import errno

import pytest
import torch

from glioscope import cli
from glioscope.errors import OutputError
from glioscope.train import checkpoint


def test_a_checkpoint_on_a_full_disk_is_an_output_error_naming_the_file(tmp_path, monkeypatch):
    def full_disk(state, path):
        open(path, "wb").write(b"half a checkpoint")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 616950976 vs 616950864")

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    target = tmp_path / "fold0" / "last.pt"
    with pytest.raises(OutputError) as caught:
        checkpoint.save_checkpoint(target, weights=torch.zeros(3))
    assert str(target) in str(caught.value) and "could not be written" in str(caught.value)
    assert "MiB free" in str(caught.value)
    assert not target.exists() and list(target.parent.iterdir()) == []  # the temporary file went too


def test_the_cli_reports_an_os_error_in_one_line_and_exits_1(tmp_path, monkeypatch, capsys):
    out = tmp_path / "cohort"

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "cohort.csv"))

    monkeypatch.setattr("glioscope.ingest.ingest", no_space)
    code = cli.main(["ingest", str(tmp_path), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == f"glioscope ingest: error: {out / 'cohort.csv'}: No space left on device"
    assert "Traceback" not in err
