"""Trust: no file glioscope opens can run code, and the same recipe, cohort and seed give the same result."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch

from glioscope.cli import main
from glioscope.ingest import ingest
from glioscope.models import create_model
from glioscope.rundir import RunFolder
from glioscope.train.checkpoint import load_checkpoint, save_checkpoint
from glioscope.util.tensors import UnsafeFile

# Default precision on purpose: the runs must be reproducible as a user runs them.
FAST_3D = [
    "train.epochs=1",
    "cv.folds=2",
    "data.volumes.spacing=8.0",
    "data.volumes.shape=[20,28,24]",
    "data.volumes.skull_strip=none",
    "evaluate.bootstrap=30",
    "evaluate.gradcam_per_class=0",
    "model.weights=none",
]


class Payload:
    """Unpickling this runs code: it writes `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('the payload ran')",)


def sets(items):
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def cohorts(tiny_phantom, sagittal_cohort, module_tmp):
    root = module_tmp
    ingest([tiny_phantom / "brats", tiny_phantom / "ixi"], root / "volumes", progress=False, echo=None)
    return {"sagittal": sagittal_cohort, "volumes": root / "volumes", "root": root}


@pytest.fixture(scope="module")
def twin_runs(cohorts, tiny_2d_run, tiny_2d_settings, monkeypatch_module):
    """The same 2D and 3D recipes run twice each with default settings and one seed (2D's first: tiny_2d_run)."""
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(cohorts["root"] / "cache"))
    runs = {("2d", "a"): tiny_2d_run}
    for kind, recipe, cohort, fast, copies in (
        ("2d", "sdl", "sagittal", tiny_2d_settings, "b"),
        ("3d", "st3d", "volumes", FAST_3D, "ab"),
    ):
        for copy in copies:
            out = cohorts["root"] / f"{kind}-{copy}"
            assert main(["cv", recipe, "--cohort", str(cohorts[cohort]), "-o", str(out), *sets(fast)]) == 0
            runs[kind, copy] = out
    return runs


def _without_clocks(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("created", "evaluated", "cohort", "run"):
        data.pop(key, None)
    return data


@pytest.mark.parametrize("kind", ["2d", "3d"])
def test_the_same_seed_gives_identical_predictions_and_metrics(twin_runs, kind):
    a, b = twin_runs[kind, "a"], twin_runs[kind, "b"]
    for name in ("predictions.csv", "predictions_patients.csv", "splits.csv", "fold0/metrics.csv"):
        if name.endswith("metrics.csv"):  # per-epoch timings differ; everything learnt must not
            timing = ["images_per_s", "seconds"]
            assert pd.read_csv(a / name).drop(columns=timing).equals(pd.read_csv(b / name).drop(columns=timing))
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert _without_clocks(a / "metrics.json") == _without_clocks(b / "metrics.json")
    info = json.loads((a / "run.json").read_text())
    assert {p["dtype"] for p in info["training"]["precision"].values()} == {
        "fp32"
    }  # auto on a CPU: fp32, chosen, not timed
    assert all(p["chosen_by"].startswith("auto") for p in info["training"]["precision"].values())
    assert "Precision" in (a / "report.html").read_text() and "fp32" in (a / "report.html").read_text()


def test_a_model_file_that_would_run_code_is_refused_everywhere(
    twin_runs, cohorts, tiny_phantom, tiny_2d_settings, tmp_path, capsys
):
    marker = tmp_path / "payload-ran"
    run = tmp_path / "run"
    shutil.copytree(twin_runs["2d", "a"], run)
    torch.save({"model": Payload(marker)}, run / "fold0" / "model.pt")
    patient = sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]
    capsys.readouterr()
    assert main(["predict", str(run), str(patient)]) == 2
    error = capsys.readouterr().err
    assert "fold0/model.pt" in error and "refused" in error and "could run code" in error
    assert main(["evaluate", str(run), "--bootstrap", "20"]) == 0  # evaluation reads tables, never models
    # A killed fold resumed from a checkpoint that holds an object: refused before anything trains.
    (run / "fold1" / "predictions.csv").unlink()
    torch.save({"model": {}, "rng": Payload(marker)}, run / "fold1" / "checkpoint_last.pt")
    assert (
        main(["cv", "sdl", "--cohort", str(cohorts["sagittal"]), "-o", str(run), "--resume", *sets(tiny_2d_settings)])
        == 2
    )
    assert "checkpoint_last.pt" in capsys.readouterr().err
    # Pretrained weights named by path: an error, never a quiet fallback to training from scratch.
    weights = tmp_path / "weights.pth"
    torch.save(Payload(marker), weights)
    with pytest.raises(UnsafeFile, match="weights.pth"):
        create_model("alexnet", 3, weights=str(weights))
    assert (
        main(
            [
                "cv",
                "alexnet",
                "--cohort",
                str(cohorts["sagittal"]),
                "-o",
                str(tmp_path / "w"),
                *sets(tiny_2d_settings + [f"model.weights={weights}"]),
            ]
        )
        == 2
    )
    assert not marker.exists()  # the payload never ran


def test_checkpoints_hold_tensors_and_plain_values_only(twin_runs, cohorts, tiny_2d_settings, tmp_path, monkeypatch):
    def killed(folder, name, *args, **kwargs):  # a fold killed after its last epoch keeps its resume checkpoint
        raise KeyboardInterrupt

    monkeypatch.setattr(RunFolder, "save_model", killed)
    assert (
        main(
            ["cv", "sdl", "--cohort", str(cohorts["sagittal"]), "-o", str(tmp_path / "killed"), *sets(tiny_2d_settings)]
        )
        == 130
    )
    for path in (tmp_path / "killed" / "fold0" / "checkpoint_last.pt", twin_runs["2d", "a"] / "fold0" / "model.pt"):
        state = load_checkpoint(path)  # weights_only=True reads them whole
        assert "model" in state
    with pytest.raises(TypeError, match="plain values"):
        save_checkpoint(tmp_path / "x.pt", model={}, extra=Payload(tmp_path / "m"))
    assert not (tmp_path / "x.pt").exists()
