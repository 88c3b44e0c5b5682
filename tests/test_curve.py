"""`glioscope curve`: nested, stratified subsamples of each fold's training patients, the same held-out patients for
every fraction, the curve's files, refusals, resume, and a curve that does not fall where the signal is strong."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from glioscope import cohort
from glioscope.cli import main
from glioscope.curve import folds, summary
from glioscope.curve.run import Layout, _held_out_predictions
from glioscope.errors import InputError, PatientLeakError
from glioscope.ingest import ingest
from glioscope.methods.radiomics import RadiomicsMethod
from glioscope.split import SPLITS

pytest.importorskip("radiomics", reason="the curve's runs here are radiomics (make installs PyRadiomics)")

FAST = ["--set", "classifier.trees=15", "--set", "classifier.min_samples_leaf=[1]", "--set", "data.min_voxels=5"]
FIRST = [0.25, 1.0]


def _patients(counts: dict[str, int]) -> pd.DataFrame:
    """Cohort rows of patients with these class counts, two items each."""
    rows = []
    for label, n in counts.items():
        for k in range(n):
            rows += [{"item_id": f"{label}{k}-{i}", "patient_id": f"{label}{k}", "label": label} for i in range(2)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("counts", [{"A": 23, "B": 11, "C": 7}, {"II": 15, "III": 15}, {"x": 40, "y": 9}])
@pytest.mark.parametrize("k, seed", [(2, 0), (3, 1), (5, 7)])
def test_subsamples_are_nested_stratified_and_disjoint_from_the_same_held_out_patients(counts, k, seed):
    frame = _patients(counts)
    table, _ = folds.outer_folds(frame, k, seed)
    labels = folds.patients_of(frame)
    fractions = [0.4, 0.6, 0.8, 1.0]
    made = folds.plan_subsamples(table, labels, fractions, seed)
    for fold in range(k):
        training = folds.training_patients(table, fold)
        held_out = folds.held_out_patients(table, fold)
        assert set(training) | set(held_out) == set(labels.index) and not set(training) & set(held_out)
        previous: set[str] = set()
        for fraction in fractions:
            chosen = made[fold, fraction]
            assert previous <= set(chosen) <= set(training) and not set(chosen) & set(held_out)
            for name in counts:
                in_fold = int((labels.loc[training] == name).sum())
                assert int((labels.loc[chosen] == name).sum()) == math.ceil(fraction * in_fold - 1e-9)
            previous = set(chosen)
        assert made[fold, 1.0] == training
        split_table, meta = folds.subsample_table(frame, made[fold, 0.4], held_out)
        assert set(split_table.loc[split_table["partition"] == "test", "patient_id"]) == set(held_out)
        assert set(split_table.loc[split_table["partition"] == "cv", "patient_id"]) == set(made[fold, 0.4])
        assert meta["mode"] == "holdout" and set(split_table.loc[split_table["partition"] == "cv", "fold"]) == {0}


def test_the_same_seed_gives_the_same_subsamples_and_another_seed_others():
    frame = _patients({"A": 20, "B": 20})
    table, _ = folds.outer_folds(frame, 3, 0)
    labels = folds.patients_of(frame)
    first, again = (folds.plan_subsamples(table, labels, [0.5], 0) for _ in range(2))
    other = folds.plan_subsamples(table, labels, [0.5], 1)
    assert first == again and first != other


@pytest.mark.parametrize("fraction", ["0", "-0.5", "1.5", "nan"])
def test_a_fraction_outside_0_1_is_refused_before_anything_is_written(fraction, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(["curve", "radiomics-rf", "--cohort", str(tmp_path), "--fractions", "0.5", fraction, "-o", str(out)]) == 2
    )
    assert "outside (0, 1]" in capsys.readouterr().err and not out.exists()


def test_a_cohort_without_labels_is_refused(tmp_path, capsys):
    folder = tmp_path / "cohort"
    folder.mkdir()
    frame = _patients({"": 6}).assign(path="x.png", kind="image", mask_path="m.png", rows=64, cols=64)
    cohort.to_frame(frame.to_dict("records")).to_csv(folder / "cohort.csv", index=False)
    assert main(["curve", "radiomics-rf", "--cohort", str(folder), "-o", str(tmp_path / "out")]) == 2
    assert "no patient has a 'label'" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def phantom(module_tmp, monkeypatch_module):
    """A 24-patient phantom (16 LGG, 8 HGG) in the BraTS layout, with tumour masks: radiomics in seconds."""
    from glioscope.synth import PRESETS, synthesize

    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(module_tmp / "cache"))
    synthesize(
        module_tmp / "phantom",
        preset=replace(PRESETS["tiny"], name="tiny24", n_per_grade=8, n_healthy=0),
        seed=0,
        progress=False,
        layouts=["brats"],
    )
    ingest([module_tmp / "phantom" / "brats"], module_tmp / "brats", progress=False, echo=None)
    return module_tmp / "brats"


def _curve(phantom, out, *extra: str) -> int:
    fractions = [f"{f:g}" for f in FIRST]
    return main(
        ["curve", "radiomics-rf", "--cohort", str(phantom), "--folds", "3", "--fractions", *fractions, "-o", str(out)]
        + ["--bootstrap", "100", *FAST, *extra]
    )


@pytest.fixture(scope="module")
def curve(phantom, module_tmp):
    out = module_tmp / "curve"
    assert _curve(phantom, out) == 0
    return out


def test_a_too_small_subsample_is_refused_naming_the_fraction_and_the_fold(phantom, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["curve", "radiomics-rf", "--cohort", str(phantom), "--folds", "3", "--fractions", "0.1", "-o", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "fraction 0.1 of fold 0 holds 1 training patient(s) of class" in err and not out.exists()


def test_the_curve_writes_its_table_figure_report_and_log(curve):
    layout = Layout(curve)
    table = pd.read_csv(layout.csv)
    assert table["fraction"].tolist() == FIRST and (table["held_out_patients"] == 24).all()
    assert table["train_patients_mean"].is_monotonic_increasing and (table["folds"] == 3).all()
    assert ((table["auc_low"] <= table["auc"]) & (table["auc"] <= table["auc_high"])).all()
    found = json.loads(layout.json.read_text())
    assert found["verdict"] in layout.report.read_text() and found["verdict"].startswith("The curve")
    assert len(found["runs"]) == 3 * len(FIRST) and set(found["steps"]) == {"last", "whole"}
    assert layout.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "data:image/png;base64," in layout.report.read_text()
    lines = layout.log.read_text().splitlines()
    assert sum("held-out AUC" in line for line in lines) == 3 * len(FIRST) and found["verdict"] in lines[-2]


def test_every_run_trained_on_its_subsample_and_predicted_its_folds_held_out_patients(curve):
    layout = Layout(curve)
    roles = pd.read_csv(layout.subsamples, dtype={"patient_id": str})
    predicted = pd.read_csv(layout.held_out, dtype={"patient_id": str})
    outer = pd.read_csv(layout.folds / SPLITS, dtype={"patient_id": str}).drop_duplicates("patient_id")
    for (fold, fraction), given in roles.groupby(["fold", "fraction"]):
        train = set(given.loc[given["role"] == "train", "patient_id"])
        held_out = set(given.loc[given["role"] == "held_out", "patient_id"])
        assert held_out == set(outer.loc[outer["fold"] == fold, "patient_id"]) and not train & held_out
        ran = pd.read_csv(layout.run(fold, fraction) / SPLITS, dtype={"patient_id": str})
        assert set(ran.loc[ran["partition"] == "cv", "patient_id"]) == train
        got = predicted[(predicted["fold"] == fold) & (predicted["fraction"] == fraction)]
        assert set(got["patient_id"]) == held_out and len(got) == len(held_out)
    small = roles[(roles["fraction"] == FIRST[0]) & (roles["role"] == "train")]
    full = roles[(roles["fraction"] == 1.0) & (roles["role"] == "train")]
    assert set(zip(small["fold"], small["patient_id"])) < set(zip(full["fold"], full["patient_id"]))


def test_where_the_signal_is_strong_the_full_curve_learns_it_and_does_not_fall(curve):
    found = json.loads(Layout(curve).json.read_text())
    full = found["curve"][-1]
    assert full["fraction"] == 1.0 and full["auc_low"] > 0.5  # the phantom's grade is learnt, beyond chance
    # More patients never make the AUC established worse: the paired interval of AUC(1) - AUC(smallest) reaches 0.
    assert found["steps"]["whole"]["high"] >= 0


def test_a_run_that_predicts_a_patient_it_trained_on_is_caught(curve, tmp_path):
    layout = Layout(curve)
    run = tmp_path / "run"
    shutil.copytree(layout.run(0, 1.0), run)
    splits = pd.read_csv(run / SPLITS, dtype={"patient_id": str})
    held_out = sorted(set(splits.loc[splits["partition"] == "test", "patient_id"]))
    trained = sorted(set(splits.loc[splits["partition"] == "cv", "patient_id"]))
    names = json.loads(layout.json.read_text())["class_names"]
    assert len(_held_out_predictions(run, trained, held_out, names)) == len(held_out)
    splits.loc[splits["patient_id"] == held_out[0], "partition"] = "cv"
    splits.to_csv(run / SPLITS, index=False)
    with pytest.raises((PatientLeakError, InputError)):
        _held_out_predictions(run, trained + held_out[:1], held_out, names)


def test_resume_reuses_finished_runs_and_refuses_other_settings(curve, phantom, tmp_path, monkeypatch, capsys):
    out = tmp_path / "curve"
    shutil.copytree(curve, out)
    before = pd.read_csv(Layout(out).csv)
    calls = []
    real = RadiomicsMethod.run
    monkeypatch.setattr(RadiomicsMethod, "run", lambda self, *a, **k: calls.append(k) or real(self, *a, **k))
    assert _curve(phantom, out) == 2 and "--resume" in capsys.readouterr().err  # a used folder needs --resume
    assert _curve(phantom, out, "--resume", "--fractions", "0.25", "0.5", "1") == 0
    assert len(calls) == 3  # fraction 0.5 of each fold; 0.25 and 1 were finished
    after = pd.read_csv(Layout(out).csv)
    assert after["fraction"].tolist() == [0.25, 0.5, 1.0]
    pd.testing.assert_frame_equal(after[after["fraction"] != 0.5].reset_index(drop=True), before, check_exact=False)
    state = json.loads(Layout(out).state.read_text())
    del state["runs"][Layout.key(2, 0.25)]  # as if killed during that run
    Layout(out).state.write_text(json.dumps(state))
    calls.clear()
    assert _curve(phantom, out, "--resume") == 0 and len(calls) == 1
    assert np.allclose(pd.read_csv(Layout(out).csv)["auc"], before["auc"])  # the same seed, the same curve
    assert _curve(phantom, out, "--resume", "--set", "classifier.trees=20") == 2
    assert "resumed was made with" in capsys.readouterr().err


@pytest.mark.parametrize(
    "last, whole, words",
    [
        ((0.05, 0.01, 0.09), (0.2, 0.1, 0.3), "still rises"),
        ((0.05, 0.01, 0.09), (0.02, -0.1, 0.12), "is noisy: its last step rose"),
        ((-0.08, -0.12, -0.02), (-0.1, -0.2, -0.01), "falls at its last step"),
        ((-0.08, -0.12, -0.02), (0.1, -0.05, 0.2), "is noisy: its last step fell"),
        ((0.01, -0.05, 0.07), (0.2, 0.1, 0.3), "rose overall"),
        ((0.01, -0.05, 0.07), (0.02, -0.1, 0.12), "flat within noise"),
    ],
)
def test_the_verdict_reads_the_paired_intervals(last, whole, words):
    curve = pd.DataFrame({"fraction": [0.25, 0.5, 1.0], "train_patients_mean": [5, 10, 20], "held_out_patients": 30})
    steps = {
        name: {"from": a, "to": 1.0, "difference": d, "low": lo, "high": hi}
        for name, a, (d, lo, hi) in (("last", 0.5, last), ("whole", 0.25, whole))
    }
    sentence = summary.verdict(curve, steps)
    assert words in sentence and "30 held-out patients" in sentence
