"""Recipes end to end on the tiny phantom: cv, evaluate, compare, predict, and the leak checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from glioscope import split
from glioscope.cli import main
from glioscope.models.build import build_model
from glioscope.plan import plan_jobs
from glioscope.recipe import load_recipe
from glioscope.rundir import RunFolder
from glioscope.errors import GlioscopeError, InputError, PatientLeakError
from glioscope.ingest import ingest

FAST = [
    "train.epochs=1",
    "cv.folds=2",
    "data.slices.size=64",
    "evaluate.bootstrap=50",
    "evaluate.gradcam_per_class=1",
    "train.precision=fp32",
    "train.channels_last=false",
    "model.weights=none",
]


def sets(*items):
    return [arg for item in list(FAST) + list(items) for arg in ("--set", item)]


@pytest.fixture(scope="module")
def sagittal_cohort(tiny_phantom, module_tmp):
    out = module_tmp / "cohort" / "sdl"
    ingest([tiny_phantom / "dicom"], out, select={"plane": ["sagittal"], "sequence": ["T1"]}, progress=False, echo=None)
    return out


@pytest.fixture(scope="module")
def sdl_and_alexnet_runs(sagittal_cohort, module_tmp, monkeypatch_module):
    root = module_tmp / "runs"
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(root / "cache"))
    assert main(["cv", "sdl", "--cohort", str(sagittal_cohort), "-o", str(root / "sdl"), *sets()]) == 0
    assert main(["cv", "alexnet", "--cohort", str(sagittal_cohort), "-o", str(root / "alexnet"), *sets()]) == 0
    return root / "sdl", root / "alexnet"


def test_cv_writes_a_complete_run(sdl_and_alexnet_runs, tiny_phantom):
    run, _ = sdl_and_alexnet_runs
    for name in (
        "config.yaml",
        "run.json",
        "cohort.csv",
        "splits.csv",
        "predictions.csv",
        "metrics.json",
        "report.html",
    ):
        assert (run / name).is_file(), name
    for fold in ("fold0", "fold1"):
        assert (run / fold / "model.pt").is_file()
        assert not list((run / fold).rglob("checkpoint_*.pt"))  # a finished fold needs no resume state
        history = pd.read_csv(run / fold / "metrics.csv")
        assert {"train_loss/net1", "train_loss/net2", "synergic_loss", "synergic_accuracy"} <= set(history.columns)
    predictions = pd.read_csv(run / "predictions.csv", dtype={"fold": str})
    assert set(predictions["model"]) == {"sdl/net1", "sdl/net2", "sdl/mean"}
    splits = pd.read_csv(run / "splits.csv", dtype={"patient_id": str})
    # Each patient is predicted once, by the fold that held it out.
    held_out = predictions[predictions["model"] == "sdl/mean"].merge(
        splits[["item_id", "fold"]], on="item_id", suffixes=("", "_split")
    )
    assert (held_out["fold"].astype(int) == held_out["fold_split"]).all()
    metrics = json.loads((run / "metrics.json").read_text())
    patients = pd.read_csv(tiny_phantom / "truth.csv").query("grade != 'healthy'")
    assert metrics["cv"]["sdl/mean"]["patient"]["n"] == len(patients)
    html = (run / "report.html").read_text()
    assert "no patient has items in two partitions" in html and "Grad-CAM" in html


def test_compare_needs_and_uses_the_same_folds(sdl_and_alexnet_runs, tmp_path, capsys):
    sdl, alexnet = sdl_and_alexnet_runs
    assert main(["compare", str(sdl), str(alexnet), "-o", str(tmp_path / "comparison.html")]) == 0
    out = capsys.readouterr().out
    assert "sdl/mean" in out and "alexnet" in out
    assert (tmp_path / "comparison.html").is_file() and (tmp_path / "comparison.csv").is_file()


def test_evaluate_rewrites_metrics(sdl_and_alexnet_runs, capsys):
    _, alexnet = sdl_and_alexnet_runs
    (alexnet / "metrics.json").unlink()
    assert main(["evaluate", str(alexnet), "--bootstrap", "20", "--no-report"]) == 0
    printed = capsys.readouterr().out.splitlines()
    metrics = json.loads((alexnet / "metrics.json").read_text())
    level = metrics["cv"]["alexnet"]["patient"]
    # the pooled value with its own interval, and the folds' mean ± SD on a line of its own: never one bracket for both
    at = printed.index(
        "cv set, patient level: pooled over folds [95% bootstrap CI over patients]; below it, mean ± SD of the 2 folds' values"
    )
    pooled, low, high = level["pooled"]["macro_auc"], *level["ci"]["macro_auc"]
    assert printed[at + 2].split()[0] == "alexnet" and printed[at + 2].endswith(f"{pooled:.3f} [{low:.3f}, {high:.3f}]")
    mean, sd = level["summary"]["macro_auc"]
    assert printed[at + 3].split()[0] == "folds" and printed[at + 3].endswith(f"folds {mean:.3f} ± {sd:.3f}")


def test_predict_prints_valid_json_for_a_dicom_study(sdl_and_alexnet_runs, tiny_phantom, capsys, tmp_path):
    run, _ = sdl_and_alexnet_runs
    patient = sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]
    assert main(["predict", str(run), str(patient), "-o", str(tmp_path / "p.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["classes"] == ["II", "III", "IV"]
    [entry] = result["patients"]
    assert entry["patient_id"] == patient.name and entry["seen_in_training"] is True
    assert abs(sum(entry["probabilities"].values()) - 1) < 1e-4
    assert len(result["slices"]) == entry["n_samples"] > 1
    assert json.loads((tmp_path / "p.json").read_text()) == result


def test_predict_on_a_png_and_on_a_bad_input(sdl_and_alexnet_runs, tiny_phantom, capsys):
    _, alexnet = sdl_and_alexnet_runs
    png = sorted((tiny_phantom / "imagefolder" / "IV").glob("*.png"))[0]
    assert main(["predict", str(alexnet), str(png)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["slices"]) == 1 and result["patients"][0]["seen_in_training"] is False
    assert main(["predict", str(alexnet), str(png.parent / "missing.png")]) == 2
    assert "missing.png" in capsys.readouterr().err


def test_resume_finishes_a_killed_run(sagittal_cohort, sdl_and_alexnet_runs, tmp_path, monkeypatch, capsys):
    _, alexnet = sdl_and_alexnet_runs
    killed = tmp_path / "alexnet"
    save_model = RunFolder.save_model

    def killed_in_fold1(folder, name, *args, **kwargs):  # as if killed after fold 1's last epoch was saved
        if name == "fold1":
            raise KeyboardInterrupt
        return save_model(folder, name, *args, **kwargs)

    monkeypatch.setattr(RunFolder, "save_model", killed_in_fold1)
    assert main(["cv", "alexnet", "--cohort", str(sagittal_cohort), "-o", str(killed), *sets()]) == 130
    assert (killed / "fold1" / "checkpoint_last.pt").is_file() and not (killed / "fold1" / "predictions.csv").exists()
    assert not (killed / "fold0" / "checkpoint_last.pt").exists()  # finished: its resume state is gone
    monkeypatch.setattr(RunFolder, "save_model", save_model)
    capsys.readouterr()
    assert main(["cv", "alexnet", "--cohort", str(sagittal_cohort), "-o", str(killed), "--resume", *sets()]) == 0
    out = capsys.readouterr().out
    assert "fold0: already finished" in out and "fold1: already finished" not in out
    before, after = pd.read_csv(alexnet / "predictions.csv"), pd.read_csv(killed / "predictions.csv")
    assert len(after) == len(before) and (killed / "fold1" / "model.pt").is_file()
    assert not (killed / "fold1" / "checkpoint_last.pt").exists()
    probs = [c for c in before.columns if c.startswith("prob_")]
    assert np.allclose(after[probs], before[probs], atol=1e-5)  # the same weights as a run never killed
    assert (
        main(
            ["cv", "alexnet", "--cohort", str(sagittal_cohort), "-o", str(alexnet), "--resume", *sets("train.epochs=2")]
        )
        == 2
    )  # another recipe cannot continue this run
    assert "differs from the run being resumed" in capsys.readouterr().err


@pytest.mark.parametrize("best_is_kept", [True, False])
def test_a_finished_fold_keeps_its_model_and_drops_its_resume_state(tmp_path, best_is_kept):
    fold = tmp_path / "fold0"
    files = [
        "model.pt",
        "predictions.csv",
        "metrics.csv",
        "checkpoint_last.pt",
        "checkpoint_best.pt",
        "head/checkpoint_last.pt",
        "head/checkpoint_best.pt",
        "finetune/checkpoint_last.pt",
    ]  # two phases
    for name in files:
        (fold / name).parent.mkdir(parents=True, exist_ok=True)
        (fold / name).write_bytes(b"x")
    RunFolder(tmp_path).finish_fold("fold0", best_is_kept=best_is_kept)
    left = sorted(str(path.relative_to(fold)) for path in fold.rglob("*") if path.is_file())
    best = [] if best_is_kept else ["checkpoint_best.pt", "head/checkpoint_best.pt"]  # model.pt is the last epoch
    assert left == sorted(["metrics.csv", "model.pt", "predictions.csv", *best])


def test_a_run_folder_is_not_overwritten(sagittal_cohort, sdl_and_alexnet_runs, capsys):
    run, _ = sdl_and_alexnet_runs
    assert main(["cv", "sdl", "--cohort", str(sagittal_cohort), "-o", str(run), *sets()]) == 2
    assert "--resume" in capsys.readouterr().err


def test_axt_recipe_representative_roi_slices_with_svhn_expansion(tiny_phantom, tmp_path, monkeypatch):
    monkeypatch.setenv("GLIOSCOPE_CACHE", str(tmp_path / "cache"))
    ingest([tiny_phantom / "brats"], tmp_path / "cohort", select={"sequence": ["T1c"]}, progress=False, echo=None)
    extra = ["train.epochs=1", "train.batch_size=64"]
    assert (
        main(
            [
                "cv",
                "axt",
                "--cohort",
                str(tmp_path / "cohort"),
                "-o",
                str(tmp_path / "run"),
                "--set",
                "task.classes=[LGG, HGG]",
                *sets(*extra),
            ]
        )
        == 0
    )
    slices = pd.read_csv(tmp_path / "run" / "slices.csv")
    assert slices["patient_id"].is_unique  # one representative slice per patient
    assert (slices["tumour_area"] > 0).all() and slices["crop"].notna().all()
    history = pd.read_csv(tmp_path / "run" / "fold0" / "metrics.csv")
    assert history["images_per_s"].iloc[0] > 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["class_names"] == ["LGG", "HGG"]


def test_every_shipped_recipe_resolves_and_quick_shortens_it():
    for name in ("sdl", "sdl-n", "r18", "axt", "alexnet", "vgg19", "resnet50", "resnet152"):
        full, quick = load_recipe(name), load_recipe(name, quick=True)
        assert quick.train.epochs < full.train.epochs
    assert load_recipe("sdl").train.epochs == 250 and load_recipe("sdl").train.synergic_lambda == 3
    assert load_recipe("sdl-n").model.members == 3
    with pytest.raises(InputError, match="unknown setting 'train.epoch'"):
        load_recipe("sdl", ["train.epoch=3"])


def test_jobs_refuse_a_split_where_a_patient_sits_in_two_folds():
    recipe = load_recipe("sdl")
    table = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "patient_id": ["p1", "p1", "p2", "p3"],
            "label": ["II"] * 4,
            "partition": ["cv"] * 4,
            "fold": [0, 1, 0, 1],
            "leaky": [False] * 4,
        }
    )
    with pytest.raises(PatientLeakError, match="p1"):
        plan_jobs(table, recipe.cv.mode, recipe.train.inner_validation)
    table["leaky"] = True  # stamped leaky: accepted, for reproducing slice-level papers
    assert len(plan_jobs(table, recipe.cv.mode, recipe.train.inner_validation)) == 2
    split.check_splits(table, allow_leaky=True)


def test_given_kfold_splits_win_over_a_holdout_recipe():
    recipe = load_recipe("eff", ["train.validation=none"])  # cv.mode: holdout
    table = pd.DataFrame(
        {
            "item_id": list("abcdef"),
            "patient_id": ["p1", "p2", "p3", "p4", "p5", "p6"],
            "label": ["0", "1"] * 3,
            "partition": ["cv"] * 6,
            "fold": [0, 0, 1, 1, 2, 2],
            "leaky": [False] * 6,
        }
    )
    jobs = plan_jobs(table, "kfold", recipe.train.inner_validation)  # splits from `glioscope split --folds 3`
    assert [job.name for job in jobs] == ["fold0", "fold1", "fold2"]
    assert all(set(job.evaluate) == {str(k)} for k, job in enumerate(jobs))
    with pytest.raises(InputError, match="has none"):  # holdout needs test patients to evaluate on
        plan_jobs(table, recipe.cv.mode, recipe.train.inner_validation)


def test_missing_weights_fall_back_to_scratch_and_unfreeze_the_backbone(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache: no ImageNet weights on disk
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch" / "hub"))
    recipe = load_recipe("eff", ["model.weights=imagenet"])  # phase 1 freezes the backbone
    built = build_model(recipe.model, 2, 3)
    assert built.model.fc.out_features == 1  # one sigmoid unit
    notes = built.notes
    assert built.from_scratch and recipe.train.from_scratch(notes).freeze == "none"
    assert any("from scratch" in n for n in notes) and any("freeze" in n for n in notes)
    recipe = load_recipe("eff", ["model.weights=none"])  # scratch asked for: the recipe is left as it is
    built = build_model(recipe.model, 2, 3)
    assert not built.from_scratch and recipe.train.freeze == "backbone" and not built.notes


def test_model_options_reach_the_builder():
    torch.manual_seed(0)
    recipe = load_recipe("r18-mgmt", ["model.name=smallcnn", "model.weights=none", "model.options={pool: max}"])
    model = build_model(recipe.model, 2, 1).model
    assert isinstance(model.backbone[-2], torch.nn.AdaptiveMaxPool2d)
    # Max pooling answers to one bright spot wherever it is; the default average barely does.
    x = torch.zeros(1, 1, 64, 64)
    spot = x.clone()
    spot[..., 40:43, 10:13] = 5.0
    with torch.no_grad():
        model.eval()
        moved = model.backbone(spot) - model.backbone(x)
        average = build_model(
            load_recipe("r18-mgmt", ["model.name=smallcnn", "model.weights=none"]).model, 2, 1
        ).model.eval()
        diluted = average.backbone(spot) - average.backbone(x)
    assert moved.abs().max() > 3 * diluted.abs().max()
    with pytest.raises(GlioscopeError, match="pool"):
        build_model(
            load_recipe("r18-mgmt", ["model.name=smallcnn", "model.weights=none", "model.options={pool: min}"]).model,
            2,
            1,
        )
