"""Paired tests end to end on a phantom whose truth is known: a radiomics run on an MGMT phantom with a strong
MGMT signal, the same run made twice, and the same recipe trained on the same folds with the labels permuted by
patient, its held-out predictions then scored against the true labels (as every run of the comparison is). The two
identical runs must not be called different; each against the shuffled-label run must be."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from glioscope.cli import main
from glioscope.cohort import COHORT_FILE
from glioscope.report.paired import paired_csv_path
from glioscope.rundir import PERMUTATION, PREDICTIONS, RunFolder
from glioscope.rundir.tables import read_predictions
from glioscope.util import atomic

N = 30


@pytest.fixture(scope="module")
def runs(module_tmp, monkeypatch_module, mgmt_cohort):
    root = module_tmp
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(root / "cache"))
    cohort, _ = mgmt_cohort(root, "strong", N, seed=3, effect=5.0)
    assert main(["split", str(cohort), "--folds", "3", "-o", str(root / "splits")]) == 0
    shuffled = root / "cohort-shuffled"
    shutil.copytree(cohort, shuffled)
    table = pd.read_csv(shuffled / COHORT_FILE, dtype=str, keep_default_na=False)
    labels = table.groupby("patient_id")["label"].first()
    permuted = pd.Series(np.random.default_rng(0).permutation(labels.to_numpy()), index=labels.index)
    assert (permuted != labels).any()
    table["label"] = table["patient_id"].map(permuted)
    atomic.write_csv(shuffled / COHORT_FILE, table)
    made = {}
    for name, source in (("a", cohort), ("b", cohort), ("shuffled", shuffled)):
        made[name] = root / "runs" / name
        args = ["cv", "radiomics", "--quick", "--cohort", str(source), "--splits", str(root / "splits")]
        chance = [] if name == "a" else ["--permutations", "0"]  # run a: the radiomics recipe's own permutation test
        assert main([*args, "-o", str(made[name]), "--set", "evaluate.bootstrap=20", *chance]) == 0
    predictions = read_predictions(made["shuffled"] / PREDICTIONS)
    names = RunFolder(made["shuffled"]).info()["class_names"]
    predictions["target"] = [names.index(labels[p]) for p in predictions["patient_id"]]  # scored on the truth
    atomic.write_csv(made["shuffled"] / PREDICTIONS, predictions)
    assert main(["evaluate", str(made["shuffled"]), "--no-report"]) == 0
    return made


def test_identical_runs_are_not_called_different_and_a_shuffled_label_run_is(runs, capsys):
    out = runs["a"].parent / "comparison.html"
    assert main(["compare", str(runs["a"]), str(runs["b"]), str(runs["shuffled"]), "-o", str(out)]) == 0
    pairs = pd.read_csv(paired_csv_path(out)).set_index(["a", "b"])
    same = pairs.loc[("a: radiomics", "b: radiomics")]
    assert same["auc_difference"] == 0 and same["accuracy_difference"] == 0
    assert same["auc_p"] == 1 and same["accuracy_p"] == 1
    assert not same["auc_established"] and not same["accuracy_established"]
    for first in ("a", "b"):
        against = pairs.loc[(f"{first}: radiomics", "shuffled: radiomics")]
        assert against["auc_difference"] > 0 and against["auc_ci_low"] > 0
        assert against["auc_established"], against
    assert "established" in capsys.readouterr().out


def test_with_a_strong_signal_the_recipes_own_permutation_test_calls_it_better_than_chance(runs):
    record = json.loads((runs["a"] / PERMUTATION).read_text())
    assert record["done"] == 20  # the radiomics recipes' default: on without asking
    assert record["p_pooled"] == pytest.approx(1 / 21) and record["p_fold_mean"] == pytest.approx(1 / 21)
    null = np.array([v["pooled"] for v in record["null"].values()])
    assert record["observed"]["pooled"] > null.max() and np.median(null) < 0.65
    assert not (runs["b"] / PERMUTATION).exists()  # --permutations 0
