"""`train RECIPE --all --from-cv RUN`: one model on every patient, carrying its cross-validation's figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from glioscope.cli import main
from glioscope.final import chosen_epochs
from glioscope.rundir import PREDICTIONS, RunFolder
from glioscope.train.checkpoint import save_checkpoint

N = 24


@pytest.fixture(scope="module")
def runs(module_tmp, monkeypatch_module, mgmt_cohort):
    """A radiomics CV on one MGMT phantom with a strong signal, its final model, and another phantom to test it on."""
    root = module_tmp
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(root / "cache"))
    whole, _ = mgmt_cohort(root, "whole", 2 * N, seed=5, effect=2.0)
    table = pd.read_csv(whole / "cohort.csv", dtype=str, keep_default_na=False)
    patients = sorted(table["patient_id"].unique())
    cohort, other = root / "cohort-train", root / "cohort-other"  # one phantom's patients, half of them held out
    for folder, part in ((cohort, patients[::2]), (other, patients[1::2])):
        folder.mkdir()
        table[table["patient_id"].isin(part)].to_csv(folder / "cohort.csv", index=False)
    cv = root / "cv"
    args = ["cv", "radiomics", "--quick", "--cohort", str(cohort), "--folds", "3", "-o", str(cv)]
    assert main([*args, "--set", "evaluate.bootstrap=200", "--permutations", "0"]) == 0
    final = root / "final"
    assert main(["train", "radiomics", "--cohort", str(cohort), "--all", "--from-cv", str(cv), "-o", str(final)]) == 0
    return {"root": root, "cohort": cohort, "other": other, "cv": cv, "final": final}


def test_the_final_model_trains_on_every_patient_and_carries_its_cvs_figures(runs, capsys):
    final, cv = runs["final"], runs["cv"]
    info = RunFolder(final).info()
    assert info["final"]["from_cv"] == "cv" and info["final"]["patients"] == N
    assert "no held-out figure of its own" in info["final"]["statement"]
    assert sorted(p.parent.name for p in final.glob("*/classifier.npz")) == ["all"]  # one model, no fold models
    splits = pd.read_csv(final / "splits.csv")
    assert splits["patient_id"].nunique() == N and set(splits["partition"]) == {"cv"}
    # the figures are the CV's, and said to be
    assert (final / PREDICTIONS).read_bytes() == (cv / PREDICTIONS).read_bytes()
    ours, theirs = (json.loads((d / "metrics.json").read_text()) for d in (final, cv))
    assert ours["cv"]["radiomics"]["patient"]["pooled"] == theirs["cv"]["radiomics"]["patient"]["pooled"]
    assert "No held-out figure of its own" in (final / "report.html").read_text().replace("no held-out", "No held-out")
    assert json.loads((final / "conformal.json").read_text()) == json.loads((cv / "conformal.json").read_text())


def test_the_final_models_accuracy_on_other_patients_lies_in_its_cvs_interval(runs, capsys):
    out = runs["root"] / "external"
    assert main(["test", str(runs["final"]), "--cohort", str(runs["other"]), "-o", str(out), "--bootstrap", "50"]) == 0
    external = json.loads((out / "metrics.json").read_text())["test"]["radiomics"]["patient"]["pooled"]
    cv = json.loads((runs["cv"] / "metrics.json").read_text())["cv"]["radiomics"]["patient"]
    for key in ("accuracy", "macro_auc"):
        low, high = cv["ci"][key]
        assert low - 0.05 <= external[key] <= high + 0.05, (key, external[key], (low, high))
    point = json.loads((out / "metrics.json").read_text())["operating_point"]
    assert point["threshold"] is not None  # the CV's operating point, carried
    # exported and applied like any run
    package = runs["root"] / "package"
    assert main(["export", str(runs["final"]), "-o", str(package)]) == 0
    assert "Final model: trained on every patient of the cross-validation cv" in (package / "README.md").read_text()
    packaged = json.loads((package / "run.json").read_text())["final"]
    assert packaged["from_cv"] == "cv" and "cv_path" not in packaged  # no path of this machine in a package
    volume = pd.read_csv(runs["other"] / "cohort.csv").iloc[0]
    capsys.readouterr()
    assert main(["predict", str(package), volume["path"], "--mask", volume["mask_path"]]) == 0
    assert json.loads(capsys.readouterr().out)["patients"][0]["prediction"] in ("0", "1")


def test_final_model_requests_that_cannot_work_are_clear_errors(runs, tmp_path, capsys):
    cohort, cv = runs["cohort"], runs["cv"]
    base = ["train", "radiomics", "--cohort", str(cohort)]
    cases = [
        (["--all", "-o", str(tmp_path / "a")], "--all and --from-cv go together"),
        (["--all", "--from-cv", str(cv), "--set", "classifier.C=[1]", "-o", str(tmp_path / "b")], "--set would train"),
        (["--all", "--from-cv", str(runs["final"]), "-o", str(tmp_path / "c")], "is a final model"),
    ]
    for extra, message in cases:
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    assert (
        main(
            ["train", "radiomics-rf", "--cohort", str(cohort), "--all", "--from-cv", str(cv), "-o", str(tmp_path / "d")]
        )
        == 2
    )
    assert "a cross-validation of recipe 'radiomics', not 'radiomics-rf'" in capsys.readouterr().err
    table = pd.read_csv(cohort / "cohort.csv", dtype=str, keep_default_na=False)
    for name, change, message in (
        ("one-class", lambda t: t.assign(label="1"), "hold one class"),
        ("unlabelled", lambda t: t.assign(label=""), "no labelled rows"),
        ("fewer", lambda t: t.iloc[2:], "holds other patients than the cross-validation"),
    ):
        (tmp_path / name).mkdir()
        change(table).to_csv(tmp_path / name / "cohort.csv", index=False)
        args = ["train", "radiomics", "--cohort", str(tmp_path / name), "--all", "--from-cv", str(cv)]
        assert main([*args, "-o", str(tmp_path / f"out-{name}")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / f"out-{name}").exists()


def test_a_deep_final_model_trains_for_the_median_of_its_folds_best_epochs(
    tmp_path, tiny_2d_run, sagittal_cohort, capsys
):
    config = {"train": {"keep_best": True, "validation": "inner", "monitor": "val_loss", "epochs": 30}}
    for k, best in enumerate((3, 7, 4)):
        save_checkpoint(tmp_path / f"fold{k}" / "model.pt", model={"w": torch.zeros(1)}, best_epoch=best, precision={})
    overrides, words = chosen_epochs(RunFolder(tmp_path), config)
    assert (
        "train.epochs=4" in overrides
        and "train.validation=none" in overrides
        and "train.monitor=train_loss" in overrides
    )
    assert words.startswith("4 epochs: the median of the CV folds' best epochs (3, 7, 4)")
    fixed, words = chosen_epochs(RunFolder(tmp_path), {"train": {"keep_best": True, "validation": "none", "epochs": 9}})
    assert not any(o.startswith("train.epochs") for o in fixed) and words.startswith("9 epochs")
    # end to end: the tiny sdl run's final model, one training on every patient, applied like any run
    out = tmp_path / "final"
    assert (
        main(
            [
                "train",
                "sdl",
                "--cohort",
                str(sagittal_cohort),
                "--all",
                "--from-cv",
                str(tiny_2d_run),
                "-o",
                str(out),
                "--no-report",
            ]
        )
        == 0
    )
    assert [p.parent.name for p in out.glob("*/model.pt")] == ["all"]
    assert RunFolder(out).info()["final"]["from_cv"] == tiny_2d_run.name
    series = pd.read_csv(sagittal_cohort / "cohort.csv").iloc[0]["path"]
    capsys.readouterr()
    assert main(["predict", str(out), str(series)]) == 0
    assert json.loads(capsys.readouterr().out)["patients"][0]["prediction"] in RunFolder(out).info()["class_names"]
    assert RunFolder(out).info()["final"]["epochs"].startswith("1 epochs, as the CV's folds trained")
    assert np.isclose(json.loads((out / "metrics.json").read_text())["cv"]["sdl/mean"]["patient"]["pooled"]["accuracy"],
                      json.loads((tiny_2d_run / "metrics.json").read_text())["cv"]["sdl/mean"]["patient"]["pooled"]["accuracy"])  # fmt: skip
