"""Paired comparisons: DeLong against its definition, McNemar, Holm, and the comparison page's paired tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from glioscope.evaluate.paired import compare_pair, delong, holm, mcnemar
from glioscope.evaluate.run import evaluate_run
from glioscope.report import write_comparison
from glioscope.report.paired import paired_csv_path, paired_rows
from glioscope.report.repeats import comparison_text
from glioscope.report.testing import fake_run, fake_splits


def slow_delong(targets, score_a, score_b) -> tuple[float, float]:
    """DeLong, DeLong & Clarke-Pearson (1988) as written: the Mann-Whitney kernel over every pair of patients."""
    positive = np.asarray(targets) == 1
    components = []
    for scores in (np.asarray(score_a, float), np.asarray(score_b, float)):
        x, y = scores[positive][:, None], scores[~positive][None, :]
        kernel = (x > y) + 0.5 * (x == y)
        components.append((kernel.mean(axis=1), kernel.mean(axis=0), kernel.mean()))
    m, n = positive.sum(), (~positive).sum()
    s10 = np.cov(np.vstack([components[0][0], components[1][0]]))
    s01 = np.cov(np.vstack([components[0][1], components[1][1]]))
    covariance = s10 / m + s01 / n
    difference = components[0][2] - components[1][2]
    return difference, float(np.sqrt(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]))


@pytest.mark.parametrize("seed", range(6))
def test_fast_delong_matches_the_definition_with_ties_and_unbalanced_classes(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 80))
    targets = (rng.random(n) < rng.uniform(0.2, 0.8)).astype(int)
    targets[:2], targets[2:4] = 1, 0
    score_a = np.round(targets * rng.uniform(0, 2) + rng.normal(size=n), int(rng.integers(0, 3)))  # rounding: ties
    score_b = 0.5 * score_a + rng.normal(size=n)
    fast = delong(targets, score_a, score_b)
    difference, se = slow_delong(targets, score_a, score_b)
    assert fast["auc_a"] == pytest.approx(roc_auc_score(targets, score_a))
    assert fast["auc_b"] == pytest.approx(roc_auc_score(targets, score_b))
    assert fast["difference"] == pytest.approx(difference) and fast["se"] == pytest.approx(se)
    assert fast["z"] == pytest.approx(difference / se)


def test_delong_and_mcnemar_hold_their_level_and_find_a_real_difference():
    """Under no difference about 5% of p-values fall below 0.05; with one, nearly all do."""
    rng = np.random.default_rng(0)
    null, real = [], []
    for _ in range(300):
        targets = rng.integers(0, 2, 80)
        shared = rng.normal(size=80)  # correlated models, as two models of the same patients are
        a = targets + shared + rng.normal(size=80)
        b = targets + shared + rng.normal(size=80)
        null.append((delong(targets, a, b)["p"], mcnemar((a > 0.5) == targets, (b > 0.5) == targets)["p"]))
        strong, useless = 2 * targets + rng.normal(size=80), shared + rng.normal(size=80)
        real.append(
            (delong(targets, strong, useless)["p"], mcnemar((strong > 1) == targets, (useless > 0) == targets)["p"])
        )
    null, real = np.array(null), np.array(real)
    assert ((null < 0.05).mean(axis=0) <= 0.08).all()  # 5% nominal; McNemar's exact test is conservative
    assert ((real < 0.05).mean(axis=0) >= 0.95).all()


def test_delong_of_identical_or_monotone_scores_is_no_difference():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, 40)
    score = targets + rng.normal(size=40)
    for other in (score, np.exp(score), 3 * score - 1):
        result = delong(targets, score, other)
        assert result["difference"] == 0 and result["p"] == 1.0
    with pytest.raises(ValueError, match="two patients of each class"):
        delong(np.r_[1, np.zeros(10, int)], score[:11], score[:11])


def test_mcnemar_counts_the_discordant_patients_only():
    a = np.array([1, 1, 1, 1, 1, 1, 1, 0, 1, 0], bool)
    b = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1], bool)
    result = mcnemar(a, b)
    assert (result["only_a"], result["only_b"]) == (7, 1)
    assert result["difference"] == pytest.approx(0.6)
    assert result["p"] == pytest.approx(2 * (1 + 8) / 2**8)  # two-sided binomial: P(X <= 1) + P(X >= 7), n = 8
    assert mcnemar(a, a) == {"only_a": 0, "only_b": 0, "difference": 0.0, "p": 1.0}


def test_holm_steps_down_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2]) == pytest.approx([0.2])
    adjusted = holm([0.5, np.nan, 0.001, 0.02])
    assert np.isnan(adjusted[1]) and adjusted[[0, 2, 3]] == pytest.approx([0.5, 0.003, 0.04])


@pytest.mark.parametrize("classes", [("II", "III"), ("II", "III", "IV")])
def test_a_bootstrap_interval_of_the_same_model_is_zero_and_of_a_better_one_excludes_zero(classes):
    rng = np.random.default_rng(2)
    targets = np.arange(90) % len(classes)
    good = np.eye(len(classes))[targets] * 3 + rng.normal(size=(90, len(classes)))
    proba = np.exp(good) / np.exp(good).sum(axis=1, keepdims=True)
    same = compare_pair(targets, proba, proba, n_boot=200)
    assert same["auc_difference"] == 0 and same["auc_ci_low"] == same["auc_ci_high"] == 0 and same["auc_p"] == 1
    noise = rng.dirichlet(np.ones(len(classes)), 90)
    better = compare_pair(targets, proba, noise, n_boot=200)
    assert better["auc_ci_low"] > 0 and better["auc_p"] < 0.05 and better["accuracy_ci_low"] > 0
    assert better["auc_test"] == ("DeLong" if len(classes) == 2 else "bootstrap")


@pytest.fixture(scope="module", params=[("II", "III"), ("II", "III", "IV")], ids=["binary", "three-class"])
def runs(request, tmp_path_factory):
    """Two identical runs and one trained on labels permuted by patient (its predictions carry no signal)."""
    classes = request.param
    root = tmp_path_factory.mktemp("paired")
    splits = fake_splits(n_patients=72, class_names=classes, folds=3, seed=4)
    made = {
        name: fake_run(root / name, models=["alexnet"], class_names=classes, splits=splits, seed=1, signal=2.5)
        for name in ("alexnet", "alexnet-again")
    }
    made["shuffled"] = fake_run(
        root / "shuffled", models=["alexnet"], class_names=classes, splits=splits, seed=7, signal=0
    )
    for run in made.values():
        evaluate_run(run, n_boot=30)
    return root, made, classes


def test_identical_runs_are_not_called_different_and_a_shuffled_label_run_is(runs):
    root, made, classes = runs
    out = write_comparison(list(made.values()), root / "comparison.html", n_boot=300)
    pairs = pd.read_csv(paired_csv_path(out)).set_index(["a", "b"])
    same = pairs.loc[("alexnet: alexnet", "alexnet-again: alexnet")]
    assert same["auc_difference"] == 0 and same["auc_p"] == 1 and same["accuracy_p"] == 1
    assert not same["auc_established"] and not same["accuracy_established"]
    for first in ("alexnet", "alexnet-again"):
        real = pairs.loc[(f"{first}: alexnet", "shuffled: alexnet")]
        assert real["auc_ci_low"] > 0 and real["auc_established"] and real["accuracy_established"]
        assert real["auc_p_holm"] >= real["auc_p"]  # three pairs: Holm-adjusted
    text = out.read_text(encoding="utf-8")
    assert "<h2>Paired tests</h2>" in text and "Holm" in text and "not established" in text
    assert "established: alexnet: alexnet higher" in text
    binary = len(classes) == 2
    assert set(pairs["auc_test"]) == {"DeLong" if binary else "bootstrap"}
    assert ("DeLong's test for two correlated ROC curves" in text) == binary
    assert ("DeLong's test covers one AUC, not the macro mean" in text) == (not binary)
    # The per-fold section faces the first two runs given (the demo's SDL and AlexNet), whichever are best.
    assert "first two runs given, <b>alexnet: alexnet</b> and <b>alexnet-again: alexnet</b>" in text
    reordered = write_comparison([made["shuffled"], made["alexnet"]], root / "reordered.html", n_boot=50)
    assert "<b>shuffled: alexnet</b> and <b>alexnet: alexnet</b>" in reordered.read_text(encoding="utf-8")
    printed = comparison_text(out)
    assert "alexnet: alexnet vs shuffled: alexnet (72 patients)" in printed and "established" in printed


def test_one_run_pairs_its_own_models(tmp_path):
    run = fake_run(tmp_path / "sdl", class_names=("II", "III"), n_patients=40, seed=3)
    evaluate_run(run, n_boot=30)
    pairs, reason = paired_rows([run], ["sdl"], n_boot=50)
    assert reason is None
    assert list(zip(pairs["a"], pairs["b"])) == [
        ("sdl: sdl/net1", "sdl: sdl/net2"),
        ("sdl: sdl/net1", "sdl: sdl/mean"),
        ("sdl: sdl/net2", "sdl: sdl/mean"),
    ]


def test_pairing_is_refused_with_the_reason_when_folds_or_patients_differ(runs, tmp_path):
    root, made, classes = runs
    splits = pd.read_csv(made["alexnet"] / "splits.csv", dtype={"patient_id": str})
    # Other folds: the whole comparison is refused (existing rule), and the paired part says why on its own.
    other = fake_run(
        tmp_path / "other", models=["alexnet"], class_names=classes, splits=fake_splits(72, classes, seed=9)
    )
    pairs, reason = paired_rows([made["alexnet"], other], ["a", "b"])
    assert pairs.empty and reason.startswith("Not paired") and "other folds" in reason
    # Patients missing from one run (a run on one MRI sequence): compared, but not paired.
    gone = sorted(splits["patient_id"].unique())[:4]
    fewer = fake_run(
        tmp_path / "fewer", models=["alexnet"], class_names=classes, splits=splits[~splits["patient_id"].isin(gone)]
    )
    evaluate_run(fewer, n_boot=30)
    out = write_comparison([made["alexnet"], fewer], tmp_path / "c.html", n_boot=50)
    text = out.read_text(encoding="utf-8")
    assert "4 patient(s) are in only some of the runs" in text
    assert "Not paired" in text and "4 patients are in only one of them" in text
    assert not pd.read_csv(out.with_suffix(".csv")).empty  # the rest of the comparison is written
    refused = pd.read_csv(paired_csv_path(out))
    assert list(refused.columns) == ["refused"] and "Not paired" in refused["refused"][0]
    assert comparison_text(out).endswith(refused["refused"][0])


def test_the_web_app_comparison_page_shows_the_paired_tests(runs):
    pytest.importorskip("fastapi", reason="glioscope serve needs fastapi (pip install -e .)")
    from fastapi.testclient import TestClient

    from glioscope.serve import create_app

    root = runs[0]
    token = "the-token-of-the-paired-tests-0123456789"
    client = TestClient(
        create_app(root, token=token), base_url="http://127.0.0.1:8000", headers={"Origin": "http://127.0.0.1:8000"}
    )
    assert client.get("/", params={"token": token}).status_code == 200
    view = client.get("/compare/view", params={"run": ["alexnet", "shuffled"]})
    assert view.status_code == 200, view.text
    assert "<h2>Paired tests</h2>" in view.text and "established: alexnet: alexnet higher" in view.text
