"""`glioscope cv --seeds`: one run folder per split and training seed, the spread over repeats, resume, and compare."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from glioscope.cli import main
from glioscope.demo import _radiomics_cohort
from glioscope.rundir import METRICS, PREDICTIONS, REPEATS, REPEATS_REPORT, REPEATS_TABLE
from glioscope.split import SPLITS

FAST = ["--set", "evaluate.bootstrap=30", "--set", "classifier.trees=25", "--folds", "3", "--permutations", "0"]


@pytest.fixture(scope="module")
def cohort(tiny_phantom, module_tmp, monkeypatch_module):
    """The tiny phantom's graded patients as BraTS T1c volumes with their tumour masks (9 patients)."""
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(module_tmp / "cache"))
    return _radiomics_cohort(tiny_phantom, module_tmp)


@pytest.fixture(scope="module")
def repeats(cohort, module_tmp):
    out = module_tmp / "radiomics"
    assert main(["cv", "radiomics", "--cohort", str(cohort), "-o", str(out), "--seeds", "0", "1", "2", *FAST]) == 0
    return out


def test_each_seed_is_a_run_with_its_own_split_and_the_spread_is_over_their_pooled_values(repeats):
    record = json.loads((repeats / REPEATS).read_text())
    assert record["seeds"] == [0, 1, 2] and record["settings"] == {"split": "cv.seed", "training": "classifier.seed"}
    folds = {}
    for seed in (0, 1, 2):
        run = repeats / f"seed{seed}"
        assert (run / METRICS).is_file() and (run / "report.html").is_file()
        config = (run / "config.yaml").read_text()
        assert f"seed: {seed}" in config
        folds[seed] = pd.read_csv(run / SPLITS, dtype={"patient_id": str}).set_index("item_id")["fold"]
    assert not folds[0].equals(folds[1]) or not folds[1].equals(folds[2])  # the split seed moves the folds
    table = pd.read_csv(repeats / REPEATS_TABLE)
    accuracy = table[(table["model"] == "radiomics") & (table["metric"] == "accuracy")].iloc[0]
    pooled = [json.loads((repeats / f"seed{s}" / METRICS).read_text()) for s in (0, 1, 2)]
    values = pd.Series([m["cv"]["radiomics"]["patient"]["pooled"]["accuracy"] for m in pooled])
    assert [accuracy[f"seed{s}_pooled"] for s in (0, 1, 2)] == pytest.approx(list(values))
    assert accuracy["mean"] == pytest.approx(values.mean()) and accuracy["sd"] == pytest.approx(values.std(ddof=1))
    assert (accuracy["min"], accuracy["max"]) == pytest.approx((values.min(), values.max()))
    assert accuracy["seed0_ci_low"] <= accuracy["seed0_pooled"] <= accuracy["seed0_ci_high"]
    assert {r["metric"] for r in record["spread"]} >= {"accuracy", "macro_auc"}
    page = (repeats / REPEATS_REPORT).read_text()
    assert "mean ± SD over repeats" in page and "seed 2" in page


def test_resume_reuses_the_finished_repeats_and_runs_the_missing_ones(repeats, cohort, capsys):
    before = {s: (repeats / f"seed{s}" / PREDICTIONS).stat().st_mtime_ns for s in (0, 1, 2)}
    capsys.readouterr()
    args = ["cv", "radiomics", "--cohort", str(cohort), "-o", str(repeats), *FAST]
    assert main([*args, "--seeds", "0", "1", "2", "3", "--resume"]) == 0
    out = capsys.readouterr().out
    assert out.count("finished earlier, reused") == 3 and "Repeat seed 3: cv.seed=3, classifier.seed=3" in out
    assert {s: (repeats / f"seed{s}" / PREDICTIONS).stat().st_mtime_ns for s in (0, 1, 2)} == before
    assert json.loads((repeats / REPEATS).read_text())["runs"]["3"] == "seed3"
    assert "seed3_pooled" in pd.read_csv(repeats / REPEATS_TABLE).columns
    # Without --resume a used folder is refused; other options are refused on resume.
    assert main([*args, "--seeds", "0"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main([*args, "--seeds", "0", "--resume", "--set", "classifier.trees=30"]) == 2
    assert "give the same recipe" in capsys.readouterr().err


def test_seeds_are_refused_with_fixed_splits_or_a_seed_setting(cohort, module_tmp, capsys):
    splits = module_tmp / "radiomics" / "seed0"  # a run folder holds its splits.csv, as a split folder does
    args = ["cv", "radiomics", "--cohort", str(cohort), "-o", str(module_tmp / "refused"), "--seeds", "0", "1"]
    assert main([*args, "--splits", str(splits)]) == 2
    assert "a fixed --splits folder cannot" in capsys.readouterr().err
    assert main([*args, "--set", "cv.seed=4"]) == 2
    assert "--seeds sets cv.seed" in capsys.readouterr().err
    assert not (module_tmp / "refused").exists()


def test_compare_of_repeats_gives_the_spread_and_the_paired_tests_seed_by_seed(repeats, cohort, module_tmp, capsys):
    forest = module_tmp / "radiomics-rf"
    args = ["--cohort", str(cohort), "-o", str(forest), "--seeds", "0", "1", "2", *FAST]
    assert main(["cv", "radiomics-rf", *args]) == 0
    capsys.readouterr()
    out = module_tmp / "comparison.html"
    assert main(["compare", str(repeats), str(forest), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Paired differences A - B over repeats" in printed
    spread = pd.read_csv(out.with_suffix(".csv"))
    assert set(spread["run"]) == {"radiomics", "radiomics-rf"} and set(spread["n_repeats"]) == {3}  # seeds shared
    paired = pd.read_csv(out.with_name("comparison_paired.csv"))
    assert sorted(paired["seed"]) == [0, 1, 2] and set(paired["a"]) == {"radiomics: radiomics"}
    text = out.read_text()
    assert "Spread over repeats" in text and "Paired tests over repeats" in text and " of 3</td>" in text
    # The same repeats twice: no difference in any repeat.
    assert main(["compare", str(repeats), str(repeats), "-o", str(module_tmp / "same.html")]) == 0
    same = pd.read_csv(module_tmp / "same_paired.csv")
    assert (same["auc_difference"] == 0).all() and (same["auc_p"] == 1).all() and not same["auc_established"].any()
    # A run folder beside repeats is refused with the reason.
    assert main(["compare", str(repeats), str(repeats / "seed0"), "-o", str(module_tmp / "mixed.html")]) == 2
    assert "compare run folders with run folders" in capsys.readouterr().err
