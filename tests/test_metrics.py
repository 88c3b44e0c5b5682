"""Metrics agree with scikit-learn; patient aggregation and bootstrap behave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from glioscope.evaluate.aggregate import to_patients
from glioscope.evaluate.bootstrap import bootstrap_intervals, fold_summary
from glioscope.evaluate.metrics import classification_metrics, flat_metrics

NAMES = ["II", "III", "IV"]


def random_predictions(n=300, seed=0, skill=1.5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), y] += skill
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, proba


def test_metrics_agree_with_scikit_learn():
    y, proba = random_predictions()
    pred = proba.argmax(1)
    m = classification_metrics(y, proba, NAMES)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(f1_score(y, pred, average="weighted"))
    assert m["macro_precision"] == pytest.approx(precision_score(y, pred, average="macro"))
    assert m["weighted_sensitivity"] == pytest.approx(recall_score(y, pred, average="weighted"))
    assert m["macro_auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    for k, name in enumerate(NAMES):
        assert m["per_class"][name]["sensitivity"] == pytest.approx(recall_score(y == k, pred == k))
        # specificity of class k = recall of "not k"
        assert m["per_class"][name]["specificity"] == pytest.approx(recall_score(y != k, pred != k))
        assert m["per_class"][name]["accuracy_ovr"] == pytest.approx(accuracy_score(y == k, pred == k))
    assert np.array(m["confusion_matrix"]).sum() == len(y)


def test_binary_auc_is_the_positive_class_auc():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p1 = np.round(np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, 200), 0, 1), 1)  # many ties
    m = classification_metrics(y, np.c_[1 - p1, p1], ["0", "1"])
    assert m["auc"] == pytest.approx(roc_auc_score(y, p1))


def test_absent_class_gives_nan_auc_not_a_crash():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    m = classification_metrics(y, proba, NAMES)
    assert np.isnan(m["per_class"]["IV"]["auc"]) and m["macro_auc"] == pytest.approx(1.0)
    assert "f1/IV" in flat_metrics(m)


def test_patient_aggregation_averages_probabilities():
    frame = pd.DataFrame(
        {
            "item_id": ["a1", "a2", "b1"],
            "patient_id": ["a", "a", "b"],
            "target": [0, 0, 1],
            "prob_x": [0.9, 0.3, 0.2],
            "prob_y": [0.1, 0.7, 0.8],
        }
    )
    patients = to_patients(frame)
    assert list(patients["patient_id"]) == ["a", "b"]
    assert patients.loc[0, "prob_x"] == pytest.approx(0.6) and patients.loc[0, "n_items"] == 2


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_patients():
    def frame(n):
        y, proba = random_predictions(n, seed=n)
        return pd.DataFrame(
            {
                "patient_id": [f"p{i}" for i in range(n)],
                "target": y,
                **{f"prob_{c}": proba[:, k] for k, c in enumerate(NAMES)},
            }
        )

    small, large = frame(40), frame(400)
    ci_small = bootstrap_intervals(small, n_boot=200)["accuracy"]
    ci_large = bootstrap_intervals(large, n_boot=200)["accuracy"]
    acc = classification_metrics(large["target"], large[[f"prob_{c}" for c in NAMES]].to_numpy(), NAMES)["accuracy"]
    assert ci_large[0] <= acc <= ci_large[1]
    assert ci_large[1] - ci_large[0] < ci_small[1] - ci_small[0]


def test_fold_summary_is_mean_and_sample_sd():
    summary = fold_summary([{"accuracy": 0.5}, {"accuracy": 0.7}, {"accuracy": 0.9}])
    assert summary["accuracy"] == pytest.approx((0.7, 0.2))
