"""`cv --permutations`: is a cross-validated AUC better than chance? (glioscope.permutation)

On an MGMT phantom without MGMT signal the test must not call the model better than chance and the null of the
fold-mean AUC sits at 0.5; with a strong signal the strong run's test is in tests/test_paired_phantom.py."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from glioscope.cli import main
from glioscope.evaluate.permutation import labellings, p_value, shuffled
from glioscope.rundir import PERMUTATION, PERMUTATION_LOG, PERMUTATIONS


def test_the_p_value_counts_the_observed_run_among_the_null():
    assert p_value(0.9, [0.5] * 19) == pytest.approx(1 / 20)  # never 0
    assert p_value(0.5, [0.5] * 19) == 1.0  # ties count against the model
    assert p_value(0.7, [0.8, 0.6, 0.75, 0.2]) == pytest.approx(3 / 5)
    assert p_value(0.7, [0.8, None, float("nan"), 0.2]) == pytest.approx(2 / 3)  # undefined null values left out
    assert np.isnan(p_value(float("nan"), [0.5])) and np.isnan(p_value(0.5, [])) and np.isnan(p_value(None, [0.5]))


def test_labels_are_shuffled_by_patient_within_each_group_the_same_way_each_time():
    patients = pd.DataFrame(
        {"patient_id": [f"p{k:02d}" for k in range(12)], "group": ["A"] * 8 + ["B"] * 4,
         "label": ["II"] * 6 + ["III"] * 2 + ["II", "III", "III", "III"]}
    )  # fmt: skip
    labels = patients.set_index("patient_id")["label"]
    group = patients.set_index("patient_id")["group"]
    seen = set()
    for k in range(1, 30):
        donor = shuffled(patients, seed=0, permutation=k)
        assert sorted(donor.index) == sorted(donor.to_numpy())  # a permutation: every patient gives its labels once
        assert (group[donor.index].to_numpy() == group[donor.to_numpy()].to_numpy()).all()  # within its group
        moved = labels[donor.to_numpy()].set_axis(donor.index)
        for name in ("A", "B"):  # each group keeps its class shares
            assert sorted(moved[group == name]) == sorted(labels[group == name])
        assert donor.equals(shuffled(patients, seed=0, permutation=k))
        seen.add(tuple(moved.sort_index()))
    assert len(seen) > 10
    assert labellings({"A": ["II"] * 6 + ["III"] * 2, "B": ["II", "III", "III", "III"]}) == 28 * 4
    assert labellings({"all": ["a", "a", "b", "b"]}) == 6


@pytest.fixture(scope="module")
def no_signal(module_tmp, monkeypatch_module, mgmt_cohort):
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(module_tmp / "cache"))
    cohort, _ = mgmt_cohort(module_tmp, "none", 24, seed=1, effect=0.0)
    return cohort


def test_without_signal_the_model_is_not_called_better_than_chance(no_signal, module_tmp, capsys):
    out = module_tmp / "run"
    args = ["cv", "radiomics", "--quick", "--cohort", str(no_signal), "--folds", "3", "-o", str(out)]
    assert main([*args, "--set", "evaluate.bootstrap=20", "--permutations", "19"]) == 0
    printed = capsys.readouterr().out
    assert "Permutation test: 19 permutation(s) of 19 to run, each retraining radiomics" in printed
    assert "at most about" in printed and "19 times the run's" in printed  # said before the first starts
    assert "permutation 19 (19/19)" in printed and "Better than chance? permutation p = " in printed
    record = json.loads((out / PERMUTATION).read_text())
    assert record["done"] == 19 and record["within"] is None  # the phantom's ids tell no site
    assert record["p_pooled"] > 0.05 and record["p_fold_mean"] > 0.05
    folds = np.array([v["fold_mean"] for v in record["null"].values()])
    assert abs(np.median(folds) - 0.5) < 0.1  # no signal: the null of the fold AUCs sits at chance
    assert len({v["pooled"] for v in record["null"].values()}) > 10  # the labellings differ
    assert not (out / PERMUTATIONS).exists() and len((out / PERMUTATION_LOG).read_text().splitlines()) >= 19
    report = (out / "report.html").read_text()
    assert "Better than chance? Permutation test" in report and (out / "figures" / "permutation_null.png").is_file()
    # resumed with more permutations: the 19 are kept, one more is run, and the same seed gives the same values
    assert main([*args, "--set", "evaluate.bootstrap=20", "--permutations", "20", "--resume"]) == 0
    assert "Permutation test: 1 permutation(s) of 20 to run" in capsys.readouterr().out
    resumed = json.loads((out / PERMUTATION).read_text())
    assert resumed["done"] == 20 and all(resumed["null"][k] == v for k, v in record["null"].items())
    # compare shows the p-value of the headline model
    assert main(["compare", str(out), "-o", str(module_tmp / "comparison.html")]) == 0
    rows = pd.read_csv(module_tmp / "comparison.csv")
    chance = rows[(rows["set"] == "cv") & (rows["level"] == "patient")]
    assert chance["permutation_p"].iloc[0] == pytest.approx(resumed["p_pooled"])
    assert "Permutation p" in (module_tmp / "comparison.html").read_text()


def test_bad_permutation_requests_are_clear_errors(no_signal, module_tmp, tmp_path, capsys):
    base = ["cv", "radiomics", "--quick", "--cohort", str(no_signal), "--folds", "3"]
    assert main([*base, "-o", str(tmp_path / "a"), "--permutations", "-1"]) == 2
    assert "--permutations must be at least 0, got -1" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "b"), "--seeds", "0", "1", "--permutations", "5"]) == 2
    assert "--seeds repeats the run" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # refused before anything is written
    # a cohort too small for a test that can reach p = 0.05: 5 patients, 3 and 2 of the classes, allow 10 labellings
    table = pd.read_csv(no_signal / "cohort.csv", dtype=str, keep_default_na=False)
    keep = [
        *table[table["label"] == "0"]["patient_id"].unique()[:3],
        *table[table["label"] == "1"]["patient_id"].unique()[:2],
    ]
    small = tmp_path / "small"
    small.mkdir()
    table[table["patient_id"].isin(keep)].to_csv(small / "cohort.csv", index=False)
    args = ["cv", "radiomics", "--quick", "--cohort", str(small), "--folds", "2", "-o", str(tmp_path / "c")]
    assert main([*args, "--set", "classifier.inner_folds=2", "--permutations", "19"]) == 2
    assert "allow only 10 distinct labelling(s)" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_a_labelling_that_leaves_a_folds_training_patients_one_class_is_drawn_again():
    from glioscope.evaluate.permutation import trainable
    from glioscope.permutation import _draw

    # 6 patients, 2 of class III, 3 folds of 2: a labelling that puts both III in one fold leaves that fold's
    # training patients (the other two folds) all II, which no classifier can be trained on
    patients = pd.DataFrame(
        {"patient_id": [f"p{k}" for k in range(6)], "label": ["III", "III", "II", "II", "II", "II"],
         "fold": [0, 0, 1, 1, 2, 2], "group": "all"}
    )  # fmt: skip
    identity = pd.Series({p: p for p in patients["patient_id"]})
    assert not trainable(patients, identity)  # fold 0 holds both III: its training part is all II
    swapped = identity.copy()
    swapped["p1"], swapped["p2"] = "p2", "p1"  # p1 takes II, p2 takes III: every training part has both
    assert trainable(patients, swapped)
    for k in range(1, 40):
        donor = _draw(patients, seed=0, k=k)
        assert trainable(patients, donor) and donor.equals(_draw(patients, seed=0, k=k))
