"""Ensemble recipes: members on one set of patient-level folds, a combiner per outer fold fit only on out-of-fold
predictions of that fold's training patients, applied anew by predict and batch prediction (glioscope.methods), and
exported as a model package with its members (glioscope.export)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from glioscope import cohort
from glioscope.batch import predict_batch
from glioscope.cli import main
from glioscope.errors import InputError, PatientLeakError
from glioscope.ingest import ingest
from glioscope.methods import METHODS, load_recipe, stacking
from glioscope.methods.ensemble_run import resolve_members
from glioscope.methods.radiomics import RadiomicsMethod
from glioscope.predict import predict
from glioscope.rundir import RUN_LOG, RunFolder
from glioscope.trained import TrainedRun
from glioscope.util.schema import SettingError

pytest.importorskip("radiomics", reason="the radiomics members need PyRadiomics (make installs it)")

# Two small forests on the T1c features (the tiny phantom has 9 patients): fast, and they differ.
RF = ["data.channels=[T1c]", "classifier.trees=10", "classifier.min_samples_leaf=[1]"]
MEMBERS = [
    {"recipe": "radiomics-rf", "name": "rf-a", "set": RF},
    {
        "recipe": "radiomics-rf",
        "name": "rf-b",
        "set": [*RF[:2], "classifier.min_samples_leaf=[2]", "classifier.seed=5"],
    },
]


def _recipe(folder: Path, name: str, members: list, combiner: str = "logistic") -> Path:
    path = folder / f"{name}.yaml"
    body = {"kind": "ensemble", "name": name, "members": members, "combiner": combiner}
    path.write_text(yaml.safe_dump({**body, "cv": {"folds": 2}, "evaluate": {"bootstrap": 10}}), encoding="utf-8")
    return path


def _cv(recipe: Path, cohort_dir: Path, out: Path, *extra: str) -> int:
    return main(["cv", str(recipe), "--cohort", str(cohort_dir), "-o", str(out), *extra])


@pytest.fixture(scope="module")
def stacked(tiny_phantom, module_tmp, monkeypatch_module):
    """A logistic ensemble of two radiomics forests on the tiny phantom's BraTS volumes, every combiner fit watched."""
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(module_tmp / "cache"))
    ingest([tiny_phantom / "brats"], module_tmp / "brats", progress=False, echo=None)
    fits = []

    def watched(fit, target, n_classes):
        fits.append((list(fit.patients), list(target.patients)))
        return real(fit, target, n_classes)

    real = stacking._fit_logistic
    monkeypatch_module.setattr(stacking, "_fit_logistic", watched)
    recipe = _recipe(module_tmp, "stack", MEMBERS)
    assert _cv(recipe, module_tmp / "brats", module_tmp / "runs" / "stack") == 0
    monkeypatch_module.setattr(stacking, "_fit_logistic", real)
    return {"run": module_tmp / "runs" / "stack", "cohort": module_tmp / "brats", "recipe": recipe, "fits": fits}


def _folds(folder: Path) -> pd.Series:
    splits = pd.read_csv(folder / "splits.csv", dtype={"patient_id": str})
    return splits.drop_duplicates("patient_id").set_index("patient_id")["fold"].sort_index()


def _rows(run: Path, model: str) -> pd.DataFrame:
    table = RunFolder(run).predictions(TrainedRun(run).class_names)
    return table[table["model"] == model].set_index("patient_id").sort_index()


def test_every_member_trains_on_the_ensembles_folds_and_every_patient_is_predicted_once(stacked):
    run = stacked["run"]
    folds = _folds(run)
    patients = sorted(cohort.load(stacked["cohort"])["patient_id"].unique())
    assert list(folds.index) == patients and folds.nunique() == 2
    for member in ("rf-a", "rf-b"):
        assert _folds(run / "members" / member).equals(folds)
        held = _rows(run / "members" / member, member)
        assert (held["fold"].astype(int) == folds.loc[held.index]).all()
    info = json.loads((run / "run.json").read_text())
    assert info["models"] == ["rf-a", "rf-b", "stack"] and info["ensemble"]["combiner"] == "logistic"
    table = RunFolder(run).predictions(info["class_names"])
    for model in info["models"]:  # every member beside the ensemble, each patient once, in its own fold
        rows = table[table["model"] == model]
        assert sorted(rows["patient_id"]) == patients
        assert (rows.set_index("patient_id")["fold"].astype(int) == folds.loc[rows["patient_id"]].to_numpy()).all()
    assert np.allclose(table.filter(like="prob_").sum(axis=1), 1.0)
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"rf-a", "rf-b", "stack"} <= set(json.dumps(metrics).split('"')) and (run / "report.html").is_file()


def test_each_folds_combiner_is_fit_only_on_out_of_fold_predictions_of_that_folds_training_patients(stacked):
    run, folds = stacked["run"], _folds(stacked["run"])
    assert len(stacked["fits"]) == 2
    for k, (fit, predicted) in enumerate(stacked["fits"]):
        held_out = set(folds[folds == k].index)
        assert set(predicted) == held_out and not set(fit) & held_out
        validation = pd.read_csv(run / "members" / "rf-a" / f"fold{k}" / "validation_predictions.csv", dtype=str)
        assert set(fit) == set(validation["patient_id"]) == set(folds[folds != k].index)
        with np.load(run / f"fold{k}" / "combiner.npz", allow_pickle=False) as saved:
            assert list(saved["members"]) == ["rf-a", "rf-b"] and saved["coef"].shape == (1, 4)


def test_a_combiner_whose_patients_meet_the_held_out_ones_is_refused(stacked, tmp_path):
    run = tmp_path / "stack"
    shutil.copytree(stacked["run"], run)
    folds = _folds(run)
    leaked = folds[folds == 0].index[0]  # a held-out patient of fold 0 among fold 0's out-of-fold predictions
    path = run / "members" / "rf-a" / "fold0" / "validation_predictions.csv"
    rows = pd.read_csv(path, dtype={"patient_id": str, "slice_id": str, "item_id": str, "fold": str})
    extra = rows.iloc[[0]].assign(patient_id=leaked, slice_id=leaked, item_id=leaked)
    pd.concat([rows, extra]).to_csv(path, index=False)
    method, recipe = load_recipe(stacked["recipe"])
    with pytest.raises(PatientLeakError, match=leaked):
        method.run(recipe, stacked["cohort"], run, resume=True, progress=False, report=False)


def test_a_trained_ensemble_applies_each_folds_combiner_as_cross_validation_did(stacked, tmp_path):
    run = TrainedRun(stacked["run"])
    assert [fold for fold, _ in run.model_files()] == ["fold0", "fold1"]
    frame = cohort.load(stacked["cohort"])
    result = run.predict_rows(frame, progress=False)
    cv = _rows(stacked["run"], "stack")
    patients = list(result.table["patient_id"])
    assert sorted(patients) == list(cv.index)
    for fold in ("0", "1"):
        held = cv[cv["fold"] == fold]
        rows = [patients.index(p) for p in held.index]
        assert np.allclose(result.per_fold[f"fold{fold}"][rows], held.filter(like="prob_").to_numpy(), atol=1e-9)
    # one study (the T1c volume and its mask) and batch prediction of the patient's rows give the same answer
    row = frame[frame["sequence"] == "T1c"].iloc[0]
    [by_study] = predict(stacked["run"], row["path"], row["mask_path"])["patients"]
    one = tmp_path / "one"
    cohort.save(one, frame[frame["patient_id"] == row["patient_id"]], cohort.summarise(frame))
    [by_batch] = predict_batch(stacked["run"], [one], progress=False)["patients"]
    expected = result.ensemble[patients.index(row["patient_id"])]
    for found in (by_study, by_batch):
        assert np.allclose([found["probabilities"][n] for n in run.class_names], expected, atol=2e-6)


def test_a_patient_that_a_member_cannot_take_is_skipped_with_the_reason(stacked):
    frame = cohort.load(stacked["cohort"])
    gone = sorted(frame["patient_id"])[0]
    frame.loc[(frame["patient_id"] == gone) & (frame["sequence"] == "T1c"), "mask_path"] = ""
    result = TrainedRun(stacked["run"]).predict_rows(frame, progress=False)
    assert gone not in set(result.table["patient_id"]) and len(result.table) == frame["patient_id"].nunique() - 1
    assert any(gone in s.reason for s in result.inputs.skipped)


def test_a_combiner_that_names_other_members_is_refused_and_not_exported(stacked, tmp_path):
    run = tmp_path / "stack"
    shutil.copytree(stacked["run"], run)
    combiner = stacking.Combiner.load(run / "fold1" / "combiner.npz")
    combiner.members = ["rf-b", "rf-a"]
    combiner.save(run / "fold1" / "combiner.npz")
    with pytest.raises(InputError, match="does not belong to these members"):
        TrainedRun(run)
    assert main(["export", str(run), "-o", str(tmp_path / "package")]) == 2
    assert not (tmp_path / "package").exists()


def test_an_exported_ensemble_holds_its_members_and_predicts_as_its_run(stacked, tmp_path):
    package = tmp_path / "package"
    assert main(["export", str(stacked["run"]), "-o", str(package)]) == 0
    for name in ("rf-a", "rf-b"):
        member = package / "members" / name
        assert {p.name for p in member.iterdir()} == {"config.yaml", "run.json", "fold0", "fold1"}
        assert all((member / f"fold{k}" / "classifier.npz").is_file() for k in (0, 1))
        info = json.loads((member / "run.json").read_text())
        assert info["cohort"] == "" and info["package"]["member_of"] == "stack"
    assert all((package / f"fold{k}" / "combiner.npz").is_file() for k in (0, 1))
    ids = set(cohort.load(stacked["cohort"])["patient_id"])
    assert "BraTS20_Training_001" in ids
    for path in package.rglob("*"):  # ids only hashed: in no text, and in no array (numpy keeps str as UTF-32)
        if path.is_file():
            data = path.read_bytes()
            assert not [i for i in ids if i.encode() in data or i.encode("utf-32-le") in data], path
    # the package predicts every patient, and one study, as the run folder does
    from_run = predict_batch(stacked["run"], [stacked["cohort"]], progress=False)["patients"]
    from_package = predict_batch(package, [stacked["cohort"]], progress=False)["patients"]
    assert [p["patient_id"] for p in from_package] == [p["patient_id"] for p in from_run] == sorted(ids)
    for run_says, package_says in zip(from_run, from_package):
        assert package_says["probabilities"] == run_says["probabilities"]
        assert package_says["seen_in_training"] is True  # told by the package's hashed ids
    frame = cohort.load(stacked["cohort"])
    row = frame[frame["sequence"] == "T1c"].iloc[0]
    [by_run] = predict(stacked["run"], row["path"], row["mask_path"])["patients"]
    [by_package] = predict(package, row["path"], row["mask_path"])["patients"]
    assert by_package["probabilities"] == by_run["probabilities"]
    # a member's classifier edited in the package: the manifest refuses the package
    path = package / "members" / "rf-a" / "fold0" / "classifier.npz"
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    edited = next(k for k, v in arrays.items() if v.dtype.kind == "f" and v.size)
    arrays[edited] = arrays[edited] + 1.0
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    with pytest.raises(InputError, match="members/rf-a/fold0/classifier.npz differs"):
        TrainedRun(package)


def test_a_resumed_run_reuses_finished_members(stacked, tmp_path, monkeypatch):
    run = tmp_path / "stack"
    shutil.copytree(stacked["run"], run)
    shutil.rmtree(run / "members" / "rf-b")
    (run / "run.json").unlink()
    kept = {p: p.stat().st_mtime_ns for p in (run / "members" / "rf-a").rglob("*") if p.is_file()}
    ran = []
    real = RadiomicsMethod.run
    monkeypatch.setattr(
        RadiomicsMethod, "run", lambda self, recipe, *a, **k: ran.append(a[1]) or real(self, recipe, *a, **k)
    )
    assert _cv(stacked["recipe"], stacked["cohort"], run, "--resume") == 0
    assert ran == [run / "members" / "rf-b"]
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert np.allclose(_rows(run, "stack").filter(like="prob_"), _rows(stacked["run"], "stack").filter(like="prob_"))
    info = json.loads((run / "run.json").read_text())
    assert [m["reused"] for m in info["ensemble"]["members"]] == [True, False]
    logged = [line.split(" ", 1)[1] for line in (run / RUN_LOG).read_text(encoding="utf-8").splitlines()]
    first = [line.split(" ", 1)[1] for line in (stacked["run"] / RUN_LOG).read_text(encoding="utf-8").splitlines()]
    assert logged[: len(first)] == first and logged[len(first)].startswith("resumed: ")  # the run's log goes on
    resumed = logged[len(first) :]
    assert "member rf-a reused" in resumed and "member rf-b started" in resumed and "member rf-b finished" in resumed
    assert [line for line in first if line.startswith("member ")] == [
        "member rf-a started",
        "member rf-a finished",
        "member rf-b started",
        "member rf-b finished",
    ]
    assert sum(line.endswith("combiner started") for line in resumed) == 2 and "report written" in resumed


def test_a_mean_of_two_identical_members_is_the_member(stacked, tmp_path):
    members = [{**MEMBERS[0], "name": "a"}, {**MEMBERS[0], "name": "b"}]
    recipe = _recipe(tmp_path, "twins", members, combiner="mean")
    assert _cv(recipe, stacked["cohort"], tmp_path / "twins") == 0
    ensemble, member = _rows(tmp_path / "twins", "twins"), _rows(tmp_path / "twins", "a")
    assert np.allclose(ensemble.filter(like="prob_"), member.filter(like="prob_"), atol=1e-12)
    assert np.allclose(member.filter(like="prob_"), _rows(tmp_path / "twins", "b").filter(like="prob_"))
    with np.load(tmp_path / "twins" / "fold0" / "combiner.npz", allow_pickle=False) as saved:
        assert "coef" not in saved.files and list(saved["members"]) == ["a", "b"]


def test_seeds_make_one_member_per_seed(tmp_path):
    recipe = _recipe(tmp_path, "seeds", [{"recipe": "radiomics-rf", "seeds": [0, 1]}], combiner="mean")
    _, loaded = load_recipe(recipe)
    members = resolve_members(loaded, METHODS)
    assert [m.name for m in members] == ["radiomics-rf@seed0", "radiomics-rf@seed1"]
    assert [m.recipe.classifier.seed for m in members] == [0, 1]
    _, shipped = load_recipe("stack-radiomics")
    assert [m.name for m in resolve_members(shipped, METHODS)] == ["radiomics", "radiomics-rf"]


def test_a_deep_member_without_inner_validation_is_refused_for_stacking(tmp_path):
    members = [{"recipe": "alexnet"}, {"recipe": "radiomics-rf"}]
    method, recipe = load_recipe(_recipe(tmp_path, "deep", members))
    with pytest.raises(SettingError, match=r"member alexnet .*train\.validation: inner.*combiner: mean"):
        method.run(recipe, tmp_path / "no-cohort", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    _, mean = load_recipe(_recipe(tmp_path, "deep-mean", members, combiner="mean"))
    assert [m.name for m in resolve_members(mean, METHODS)] == ["alexnet", "radiomics-rf"]
    inner = [{"recipe": "alexnet", "set": ["train.validation=inner"]}, {"recipe": "radiomics-rf"}]
    _, fixed = load_recipe(_recipe(tmp_path, "deep-inner", inner))
    assert len(resolve_members(fixed, METHODS)) == 2


def test_a_recipe_naming_an_unknown_member_is_refused_before_anything_runs(tmp_path, capsys):
    recipe = _recipe(tmp_path, "unknown", [{"recipe": "no-such-recipe"}, {"recipe": "radiomics-rf"}])
    assert _cv(recipe, tmp_path / "no-cohort", tmp_path / "out") == 2
    assert "no-such-recipe" in capsys.readouterr().err and not (tmp_path / "out").exists()
