"""The radiomics baseline: features in the tumour mask, a classifier per fold, a run folder like a deep run's."""

from __future__ import annotations

import json
import re
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from glioscope import split
from glioscope.cli import main
from glioscope.demo import GRADES, PATIENT_REGEX, _radiomics_cohort
from glioscope.ingest import ingest
from glioscope.methods import find, load_recipe
from glioscope.report import comparison_rows
from glioscope.rundir import RUN_LOG

FAST = ["--set", "evaluate.bootstrap=30", "--set", "classifier.trees=25", "--set", "evaluate.permutations=0"]
SHAPE, PER_CHANNEL = 14, 18 + 24 + 16 + 16  # firstorder, glcm, glrlm, glszm per channel; shape once


@pytest.fixture(scope="module")
def phantom(tiny_phantom, module_tmp, monkeypatch_module):
    """The tiny phantom's graded patients: image-folder cohort and folds, and their BraTS T1c volumes with masks."""
    root = module_tmp
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(root / "cache"))
    frame, _ = ingest(
        [tiny_phantom / "imagefolder"],
        root / "cohort",
        format="imagefolder",
        patient_regex=PATIENT_REGEX,
        select=GRADES,
        progress=False,
        echo=None,
    )
    table, meta = split.make_splits(frame, folds=3, seed=0)
    split.save(root / "splits", table, meta)
    return {
        "root": root,
        "cohort": root / "cohort",
        "splits": root / "splits",
        "table": table,
        "masks": _radiomics_cohort(tiny_phantom, root),
    }


@pytest.fixture(scope="module")
def radiomics_run(phantom):
    out = phantom["root"] / "runs" / "radiomics"
    assert (
        main(
            [
                "cv",
                "radiomics",
                "--cohort",
                str(phantom["masks"]),
                "--splits",
                str(phantom["splits"]),
                "-o",
                str(out),
                *FAST,
            ]
        )
        == 0
    )
    return out


def test_a_radiomics_run_folder_predicts_every_patient_once_on_the_given_folds(radiomics_run, phantom):
    for name in (
        "config.yaml",
        "run.json",
        "cohort.csv",
        "splits.csv",
        "features.csv",
        "predictions.csv",
        "validation_predictions.csv",
        "metrics.json",
        "predictions_patients.csv",
        "report.html",
        "fold0/inner_cv.csv",
        "fold0/features_used.csv",
    ):
        assert (radiomics_run / name).is_file(), name
    predictions = pd.read_csv(radiomics_run / "predictions.csv", dtype={"fold": str})
    patients = sorted(phantom["table"]["patient_id"].unique())
    assert sorted(predictions["patient_id"]) == patients  # every patient exactly once
    given = phantom["table"].drop_duplicates("patient_id").set_index("patient_id")["fold"].astype(str)
    assert (predictions.set_index("patient_id")["fold"] == given.loc[predictions["patient_id"]]).all()
    assert np.allclose(predictions.filter(like="prob_").sum(axis=1), 1.0)
    features = pd.read_csv(radiomics_run / "features.csv")
    assert len(features) == len(patients) and features.shape[1] - 2 == SHAPE + PER_CHANNEL  # one channel: T1c
    assert {"shape_VoxelVolume", "T1c_glcm_Contrast", "T1c_firstorder_Mean"} <= set(features.columns)
    info = json.loads((radiomics_run / "run.json").read_text())
    assert info["models"] == ["radiomics"] and info["radiomics"]["features_per_patient"] == SHAPE + PER_CHANNEL
    assert info["radiomics"]["extraction"]["pyradiomics"]["binWidth"] == 25
    chosen = info["radiomics"]["folds"]["fold0"]["chosen"]
    assert chosen["penalty"] in ("l1", "l2") and chosen["C"] in (0.01, 0.1, 1.0, 10.0)
    assert any(n.startswith("fold0: the inner") and "chose" in n for n in info["notes"])
    grid = pd.read_csv(radiomics_run / "fold0" / "inner_cv.csv")
    assert len(grid) == 2 * 4 * 2 and "inner_macro_auc" in grid
    validation = pd.read_csv(radiomics_run / "validation_predictions.csv", dtype={"fold": str})
    held_out = predictions.set_index("patient_id")["fold"]
    assert not (validation["fold"].to_numpy() == held_out.loc[validation["patient_id"]].to_numpy()).any()


def test_compare_and_fuse_take_a_radiomics_run_beside_a_deep_run_on_the_same_folds(radiomics_run, phantom, capsys):
    deep = phantom["root"] / "runs" / "alexnet"
    assert (
        main(
            [
                "cv",
                "alexnet",
                "--cohort",
                str(phantom["cohort"]),
                "--splits",
                str(phantom["splits"]),
                "-o",
                str(deep),
                "--set",
                "data.select={}",
                "--set",
                "train.epochs=1",
                "--set",
                "data.slices.size=64",
                "--set",
                "model.weights=none",
                "--set",
                "evaluate.bootstrap=30",
                "--set",
                "evaluate.gradcam_per_class=0",
                "--quick",
            ]
        )
        == 0
    )
    rows = comparison_rows([deep, radiomics_run])
    assert {"alexnet", "radiomics"} <= set(rows["model"])
    assert main(["compare", str(deep), str(radiomics_run), "-o", str(phantom["root"] / "comparison.html")]) == 0
    forest = phantom["root"] / "runs" / "radiomics-rf"
    assert (
        main(
            [
                "cv",
                "radiomics-rf",
                "--cohort",
                str(phantom["masks"]),
                "--splits",
                str(phantom["splits"]),
                "-o",
                str(forest),
                *FAST,
            ]
        )
        == 0
    )
    fused = phantom["root"] / "runs" / "fused"
    assert main(["fuse", str(radiomics_run), str(forest), "-o", str(fused), "--bootstrap", "30"]) == 0
    assert {"fusion/mean", "fusion/logistic"} <= set(pd.read_csv(fused / "predictions.csv")["model"])


def test_the_same_seed_gives_the_same_predictions_from_the_feature_cache(radiomics_run, phantom, capsys):
    again = phantom["root"] / "runs" / "radiomics-again"
    capsys.readouterr()
    assert (
        main(
            [
                "cv",
                "radiomics",
                "--cohort",
                str(phantom["masks"]),
                "--splits",
                str(phantom["splits"]),
                "-o",
                str(again),
                *FAST,
            ]
        )
        == 0
    )
    assert "9 from the cache, 0 computed" in capsys.readouterr().out
    assert (again / "predictions.csv").read_bytes() == (radiomics_run / "predictions.csv").read_bytes()
    assert (again / "features.csv").read_bytes() == (radiomics_run / "features.csv").read_bytes()


def test_a_cohort_without_masks_or_without_pyradiomics_is_a_clear_error(phantom, capsys, monkeypatch):
    out = phantom["root"] / "runs" / "no-masks"
    assert main(["cv", "radiomics", "--cohort", str(phantom["cohort"]), "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert "has no tumour masks" in error and "mask_path" in error and "Traceback" not in error
    assert not out.exists()
    monkeypatch.setitem(sys.modules, "radiomics", None)  # import radiomics now fails
    assert main(["cv", "radiomics", "--cohort", str(phantom["masks"]), "--folds", "3", "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert "PyRadiomics is not installed" in error and "--no-build-isolation" in error
    assert not out.exists()


def test_an_empty_mask_leaves_the_patient_out_with_its_reason(phantom, tmp_path, capsys):
    cohort = pd.read_csv(phantom["masks"] / "cohort.csv", dtype=str, keep_default_na=False)
    first = cohort.iloc[0]
    seg = nib.load(first["mask_path"])
    empty = tmp_path / "empty_seg.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(seg.shape, np.uint8), seg.affine), empty)
    manifest = cohort[["path", "patient_id", "label", "sequence", "mask_path"]].copy()
    manifest.loc[0, "mask_path"] = str(empty)
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    ingest([tmp_path / "manifest.csv"], tmp_path / "cohort", format="manifest", progress=False, echo=None)
    out = tmp_path / "run"
    assert (
        main(
            [
                "cv",
                "radiomics",
                "--cohort",
                str(tmp_path / "cohort"),
                "--splits",
                str(phantom["splits"]),
                "-o",
                str(out),
                *FAST,
            ]
        )
        == 0
    )
    skipped = pd.read_csv(out / "features_skipped.csv")
    assert skipped["patient_id"].tolist() == [first["patient_id"]]
    assert "the tumour mask is empty" in skipped["reason"].iloc[0] and "empty_seg" in skipped["reason"].iloc[0]
    assert first["patient_id"] not in set(pd.read_csv(out / "predictions.csv")["patient_id"])
    assert any("have no features" in n for n in json.loads((out / "run.json").read_text())["notes"])
    assert "the tumour mask is empty" in capsys.readouterr().out


def _kaggle_case(root, case, grade_blob, slices=(1, 2, 10)):
    """kaggle_3m slices: 3-channel tifs whose channel k is (k+1) * 40 plus a disc, and the disc as _mask.tif."""
    yy, xx = np.mgrid[:32, :32]
    for position, index in enumerate(slices):
        disc = (yy - 16) ** 2 + (xx - 16) ** 2 <= (4 + grade_blob + position) ** 2
        pixels = np.stack([(k + 1) * 40 + disc * (30 + 20 * grade_blob) + (xx % 3) * (k + 1) for k in range(3)], -1)
        Image.fromarray(pixels.astype(np.uint8)).save(root / case / f"{case}_{index}.tif")
        Image.fromarray((disc * 255).astype(np.uint8)).save(root / case / f"{case}_{index}_mask.tif")


def test_kaggle3m_slices_are_stacked_per_patient_in_slice_order_and_featurised(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIOSCOPE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "kaggle_3m"
    rows = ["Patient,neoplasm_histologic_grade"]
    for k in range(8):
        case = f"TCGA_CS_{4940 + k}_19960909"
        (root / case).mkdir(parents=True)
        _kaggle_case(root, case, k % 2)
        rows.append(f"TCGA_CS_{4940 + k},{1 + k % 2}.0")
    (root / "data.csv").write_text("\n".join(rows) + "\n")
    ingest([root], tmp_path / "cohort", progress=False, echo=None)
    from glioscope import cohort as cohort_table
    from glioscope.radiomics.extract import _stack
    from glioscope.radiomics.inputs import patient_inputs

    _, recipe = load_recipe("radiomics")
    inputs = patient_inputs(cohort_table.load(tmp_path / "cohort"), recipe.data)
    assert inputs.channels == ["T1", "T1c", "FLAIR"]
    t1c = inputs.patients[0].channels[1]
    assert [p.rsplit("_", 1)[-1] for p in t1c.paths] == ["1.tif", "2.tif", "10.tif"]  # by slice number, not name
    pixels, mask = _stack(t1c, "non-zero")
    assert pixels.shape == (3, 32, 32) and np.allclose(pixels[0, 0, 0], 120)  # T1c is the third channel: 3 * 40
    assert mask.sum(axis=(1, 2)).tolist() == sorted(mask.sum(axis=(1, 2)).tolist())  # discs grow with the slice
    out = tmp_path / "run"
    assert (
        main(["cv", "radiomics-rf", "--cohort", str(tmp_path / "cohort"), "--folds", "2", "-o", str(out), *FAST]) == 0
    )
    features = pd.read_csv(out / "features.csv")
    assert len(features) == 8 and features.shape[1] - 2 == SHAPE + 3 * PER_CHANNEL
    assert {"FLAIR_glcm_Contrast", "T1_firstorder_Mean", "T1c_glszm_ZonePercentage"} <= set(features.columns)
    assert sorted(pd.read_csv(out / "predictions.csv")["patient_id"]) == sorted(features["patient_id"])


def test_radiomics_recipes_are_checked_and_extendable(tmp_path, capsys):
    assert [find(name)[0].kind for name in ("radiomics", "radiomics-rf", "sdl")] == ["radiomics", "radiomics", "deep"]
    own = tmp_path / "mine.yaml"
    own.write_text("base: radiomics-rf\nclassifier:\n  min_samples_leaf: [2]\n", encoding="utf-8")
    method, recipe = load_recipe(own, ["features.bin_width=10"], quick=True)
    assert method.kind == "radiomics" and recipe.name == "mine" and recipe.classifier.model == "forest"
    assert (
        recipe.classifier.min_samples_leaf == (2,)
        and recipe.classifier.trees == 200
        and recipe.features.bin_width == 10
    )
    assert load_recipe("radiomics")[1].cv.folds == 5
    assert main(["cv", "radiomics", "--cohort", str(tmp_path), "--set", "classifier.modle=forest"]) == 2
    assert "unknown setting 'classifier.modle'" in capsys.readouterr().err
    assert main(["cv", "radiomics", "--cohort", str(tmp_path), "--set", "classifier.model=svm"]) == 2
    assert "classifier.model: got 'svm', expected one of logistic, forest" in capsys.readouterr().err


def test_the_kaggle3m_sample_runs_end_to_end(shared_data, tmp_path, monkeypatch, capsys):
    source = shared_data / "lgg-kaggle3m-sample" / "kaggle_3m"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    monkeypatch.setenv("GLIOSCOPE_CACHE", str(tmp_path / "cache"))
    ingest([source], tmp_path / "cohort", progress=False, echo=None)
    out = tmp_path / "run"
    assert main(["cv", "radiomics", "--cohort", str(tmp_path / "cohort"), "--folds", "3", "-o", str(out), *FAST]) == 0
    features = pd.read_csv(out / "features.csv")
    assert len(features) == 6 and features.shape[1] - 2 == SHAPE + 3 * PER_CHANNEL
    assert "236 features per patient (T1, T1c, FLAIR) for 6 patient(s)" in capsys.readouterr().out
    assert len(pd.read_csv(out / "predictions.csv")) == 6


def test_a_class_of_one_training_patient_leaves_an_inner_part_with_one_class_and_no_crash():
    from glioscope.radiomics.classifier import fit_with_inner_cv

    rng = np.random.default_rng(0)
    y = np.array([0, 0, 0, 0, 0, 1])  # the one patient of class 1 is in one inner validation part only
    X = rng.normal(size=(len(y), 4)) + y[:, None]
    for model in ("logistic", "forest"):
        settings = load_recipe("radiomics", [f"classifier.model={model}", "classifier.trees=10"])[1].classifier
        fitted = fit_with_inner_cv(X, y, [f"p{k}" for k in range(len(y))], ["a", "b", "c", "d"], 2, settings)
        assert fitted.validation.shape == (6, 2) and np.allclose(fitted.validation.sum(axis=1), 1.0)
        # the part trained without class 1 predicts the class frequencies of its training patients: all class 0
        assert (fitted.validation[y == 1, 0] == 1.0).all()


def test_the_inner_cv_never_chooses_a_setting_whose_model_keeps_no_feature():
    from glioscope.radiomics.classifier import fit_with_inner_cv

    settings = load_recipe("radiomics", ["classifier.penalties=[l1]", "classifier.C=[0.001,0.01,1.0]"])[1].classifier
    ids, names = [f"p{k}" for k in range(24)], [f"f{j}" for j in range(12)]
    y = np.repeat([0, 1], 12)
    would_have_chosen_none = 0
    for seed in range(8):  # pure noise: the weak-signal case where a constant model can win the inner CV
        X = np.random.default_rng(seed).normal(size=(len(y), len(names)))
        fitted = fit_with_inner_cv(X, y, ids, names, 2, settings)
        grid = fitted.grid
        assert (grid.loc[grid["C"] == 0.001, "fewest_features_kept"] == 0).all()  # the strong penalty keeps none
        assert len(fitted.weights) > 0 and fitted.params["C"] != 0.001
        best = grid["inner_macro_auc"].fillna(-1).idxmax()
        if grid.at[best, "fewest_features_kept"] == 0:
            would_have_chosen_none += 1
            assert "kept no feature" in fitted.note
        else:
            assert fitted.note == "" and fitted.params["C"] == grid.at[best, "C"]
    assert would_have_chosen_none > 0  # the rule mattered on some of these seeds
    only_none = load_recipe("radiomics", ["classifier.penalties=[l1]", "classifier.C=[0.0001]"])[1].classifier
    fitted = fit_with_inner_cv(X, y, ids, names, 2, only_none)
    assert len(fitted.weights) == 0 and "every setting of the grid kept no feature" in fitted.note


def test_a_recipe_forced_to_keep_no_feature_is_named_degenerate_in_metrics_terminal_and_report(
    radiomics_run, phantom, capsys
):
    out = phantom["root"] / "runs" / "no-feature"
    forced = ["--set", "classifier.penalties=[l1]", "--set", "classifier.C=[0.00001]"]
    args = ["cv", "radiomics", "--cohort", str(phantom["masks"]), "--splits", str(phantom["splits"]), "-o", str(out)]
    assert main([*args, *FAST, *forced]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    found = {(d["set"], d["fold"]): d["finding"] for d in metrics["degenerate"]}
    assert found == {("cv", k): "one score" for k in range(3)}
    for k in range(3):
        assert f"warning: radiomics, fold {k}: every patient gets the same probabilities" in printed
    assert "every setting of the grid kept no feature" in printed and "uses 0 of" in printed
    (row,) = metrics["pooled_vs_folds"]
    assert row["fold_mean"] == 0.5 and row["fold_sd"] == 0.0 and row["differs"] == (row["pooled"] != 0.5)
    report = (out / "report.html").read_text()
    assert report.count("every patient gets the same probabilities") == 3
    # the normal run of the same folds is not flagged
    assert json.loads((radiomics_run / "metrics.json").read_text())["degenerate"] == []


def test_a_radiomics_run_log_has_a_line_per_stage_and_its_notes(radiomics_run):
    logged = [line.split(" ", 1)[1] for line in (radiomics_run / RUN_LOG).read_text(encoding="utf-8").splitlines()]
    assert logged[0].startswith("started: recipe radiomics") and logged[1].startswith("cohort read: ")
    assert any(line.startswith("features extracted: ") for line in logged)
    folds = sorted({line.split(" ")[0] for line in logged if re.match(r"fold\d+ \(\d+ of \d+\) started$", line)})
    splits = pd.read_csv(radiomics_run / "splits.csv")
    assert folds == sorted(f"fold{k}" for k in splits.loc[splits["partition"] == "cv", "fold"].unique())
    for fold in folds:  # each fold timed, then the note naming what its inner CV chose
        finished = next(k for k, line in enumerate(logged) if re.match(rf"{fold} \(.*\) finished in \d", line))
        assert logged[finished + 1].startswith(f"note: {fold}: the inner ")
    assert logged.index("report written") < logged.index(next(line for line in logged if line.startswith("finished")))
