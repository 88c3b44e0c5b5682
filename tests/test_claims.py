"""Inputs are what they claim: a FIFO is refused without blocking, weights that give NaN are refused, a checkpoint or
state dict that does not fit the model is a clear error (model.weights files: tests/test_train.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from glioscope.cli import main
from glioscope.errors import InputError
from glioscope.ingest import ingest
from glioscope.io.study import read_study
from glioscope.train.checkpoint import load_checkpoint, save_checkpoint
from glioscope.trained import TrainedRun


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def test_a_fifo_is_refused_or_skipped_without_blocking(tmp_path, tiny_phantom):
    # In a subprocess with a deadline: opening a FIFO would wait forever for a writer.
    source = tmp_path / "images"
    shutil.copytree(tiny_phantom / "imagefolder", source)
    _fifo(source / "II" / "pipe_1.png")
    _fifo(tmp_path / "study.nii.gz")
    _fifo(tmp_path / "labels.csv")
    script = textwrap.dedent(f"""
        from pathlib import Path
        from glioscope.errors import InputError
        from glioscope.ingest import ingest
        from glioscope.io.study import read_study
        from glioscope.io.labels import read_table
        frame, summary = ingest([Path({str(source)!r})], None, format="imagefolder", echo=None, progress=False)
        print("SKIPPED", [s["path"] for s in summary["skipped"] if "FIFO" in s["reason"]])
        for call in (lambda: read_study(Path({str(tmp_path / "study.nii.gz")!r})),
                     lambda: read_table(Path({str(tmp_path / "labels.csv")!r}))):
            try:
                call()
            except InputError as exc:
                print("REFUSED", exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"SKIPPED ['{source / 'II' / 'pipe_1.png'}']" in done.stdout
    assert done.stdout.count("REFUSED") == 2 and "not a regular file (a FIFO" in done.stdout


def test_weights_that_give_nan_are_refused_naming_the_fold_model(tiny_2d_run, sagittal_cohort, tmp_path, capsys):
    broken = tmp_path / "run"
    shutil.copytree(tiny_2d_run, broken)
    state = load_checkpoint(broken / "fold1" / "model.pt")
    first = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][first] = torch.full_like(state["model"][first], float("nan"))
    save_checkpoint(broken / "fold1" / "model.pt", **state)
    series = sorted((Path(p) for p in __import__("glioscope").cohort.load(sagittal_cohort)["path"]))[0]
    with pytest.raises(InputError, match="gives NaN or infinite probabilities") as caught:
        TrainedRun(broken).predict_study(series)
    assert "fold1" in str(caught.value)
    assert main(["predict", str(broken), str(series)]) == 2
    captured = capsys.readouterr()
    assert "NaN or infinite" in captured.err and "NaN" not in captured.out  # no JSON with NaN in it


def test_fold_weights_of_another_model_are_a_clear_error(tiny_2d_run, sagittal_cohort, tmp_path):
    other = tmp_path / "run"
    shutil.copytree(tiny_2d_run, other)
    state = load_checkpoint(other / "fold0" / "model.pt")
    state["model"] = {k: v[..., :1] if v.dim() > 1 else v for k, v in state["model"].items()}  # other shapes
    save_checkpoint(other / "fold0" / "model.pt", **state)
    series = Path(sorted(__import__("glioscope").cohort.load(sagittal_cohort)["path"])[0])
    with pytest.raises(InputError, match="network `sdl` has|does not fit sdl") as caught:
        TrainedRun(other).predict_study(series)
    assert str(other / "fold0" / "model.pt") in str(caught.value)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.pop("rng"), "lacks rng"),
        (lambda s: s.update(epoch=99), "finished epoch 99"),
        (lambda s: s.update(epoch=-1), "finished epoch -1"),
        (lambda s: s.update(history=[]), "epochs of history"),
        (lambda s: s.update(precision={"dtype": "fp8", "channels_last": False}), "impossible precision"),
        (lambda s: s["rng"].pop("torch"), "random generators"),
        (lambda s: s.update(model={"weight": torch.zeros(1)}), "does not fit this run"),
    ],
)
def test_a_checkpoint_that_cannot_be_this_runs_is_refused_naming_it(tmp_path, change, message):
    from glioscope.models import create_model
    from glioscope.samples.datasets import SliceDataset
    from glioscope.train.loop import Trainer

    settings = dict(
        optimizer="sgd", lr=0.01, batch_size=4, epochs=2, seed=0, precision="fp32", tensorboard=False, validation="none"
    )
    images = (torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    dataset = SliceDataset(images, np.arange(8) % 2)
    trainer = Trainer(create_model("smallcnn", 2), {**settings, "epochs": 1}, ["a", "b"], tmp_path, progress=False)
    trainer.fit(dataset)
    path = tmp_path / "checkpoint_last.pt"
    state = load_checkpoint(path)
    change(state)
    save_checkpoint(path, **state)
    again = Trainer(create_model("smallcnn", 2), settings, ["a", "b"], tmp_path, progress=False)
    with pytest.raises(InputError, match=message) as caught:
        again.fit(dataset, resume=True)
    assert str(path) in str(caught.value)


def test_an_enhanced_mr_is_one_volume_with_its_geometry_from_the_functional_groups(tmp_path):
    from glioscope.io.dicom import load_series
    from glioscope.io.testing import write_enhanced_mr

    write_enhanced_mr(tmp_path / "enhanced" / "mr.dcm", [4.0, 0.0, 8.0, 2.0, 6.0])  # frames out of order
    study = read_study(tmp_path / "enhanced")
    [row] = study.frame.to_dict("records")
    assert (row["plane"], row["n_slices"], row["spacing"]) == ("axial", 5, "0.8,0.9,2")
    volume, geometry = load_series(row)
    assert volume.shape == (5, 8, 8) and [float(v) for v in volume[:, 0, 0]] == [0, 10, 20, 30, 40]  # along z
    assert geometry.spacing == (0.8, 0.9, 2.0)
    assert np.allclose(geometry.affine[:3, 3], [0, 0, 0]) and np.allclose(geometry.affine[2, 2], 2.0)
    frame = ingest([tmp_path / "enhanced"], None, echo=None, progress=False)[0]
    assert len(frame) == 1 and frame.loc[0, "plane"] == "axial" and int(frame.loc[0, "n_slices"]) == 5


@pytest.mark.parametrize(
    "options, words",
    [
        ({"times": [1, 1, 2, 2]}, "2 temporal positions"),
        ({"stacks": ["1", "1", "2", "2"]}, "2 stacks"),
        ({}, "several frames at one position"),
    ],
)
def test_an_enhanced_mr_of_several_stacks_or_times_is_refused_never_flattened(tmp_path, options, words):
    from glioscope.io.testing import write_enhanced_mr

    positions = [0.0, 2.0, 0.0, 2.0]  # two stacks of two frames, or one stack with frames at one position
    path = write_enhanced_mr(tmp_path / "multi" / "mr.dcm", positions, **options)
    with pytest.raises(InputError, match=words) as caught:
        read_study(tmp_path / "multi")
    assert str(path) in str(caught.value)
    good = tmp_path / "good"
    write_enhanced_mr(good / "ok.dcm", [0.0, 2.0, 4.0], patient_id="P010")
    shutil.copy(path, good / "mixed.dcm")
    frame, summary = ingest([good], None, echo=None, progress=False)
    assert list(frame["patient_id"]) == ["P010"]  # the good file stays, the other is skipped with its reason
    assert any(words in s["reason"] and s["path"].endswith("mixed.dcm") for s in summary["skipped"])
