"""Fold models that give everyone one answer, and pooled figures that part from their folds (evaluate.degenerate)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from glioscope.batch import one_answer
from glioscope.evaluate.degenerate import SCORE_SPREAD, assess, degenerate_folds, lines, pooled_vs_folds

NAMES = ["II", "III"]


def _rows(fold: str, probs: np.ndarray, targets, set_name: str = "cv") -> pd.DataFrame:
    return pd.DataFrame(
        {"set": set_name, "model": "m", "fold": fold, "patient_id": [f"{fold}-{k}" for k in range(len(probs))],
         "target": targets, "prob_II": probs[:, 0], "prob_III": probs[:, 1]}
    )  # fmt: skip


def test_one_score_one_class_and_a_model_that_ranks_are_told_apart():
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 5)
    p = rng.uniform(0.2, 0.8, size=10)
    ranking = np.c_[1 - p, p]
    constant = np.tile([[0.4, 0.6]], (10, 1)) + rng.uniform(0, SCORE_SPREAD / 4, size=(10, 1)) * [1, -1]
    one_class = np.c_[1 - p / 3, p / 3]  # varied scores, all below 0.5 for III
    assert assess(ranking, y, NAMES) is None
    assert assess(constant, y, NAMES)["finding"] == "one score"
    assert assess(one_class, y, NAMES) == {"finding": "one class", "detail": "every patient is predicted II"}
    assert assess(one_class, np.zeros(10, int), NAMES) is None  # all truly II: predicting II for all is right
    assert assess(constant[:1], y[:1], NAMES) is None  # one patient cannot be told apart from anyone
    wider = np.tile([[0.4, 0.6]], (10, 1)) + np.linspace(0, 2 * SCORE_SPREAD, 10)[:, None] * [1, -1]
    assert assess(wider, y, NAMES)["finding"] == "one class"  # spread above the bound: not "one score"

    table = pd.concat([_rows("0", ranking, y), _rows("1", constant, y), _rows("test", one_class, y, "test")])
    found = degenerate_folds(table, NAMES)
    assert [(f["set"], f["fold"], f["finding"], f["patients"]) for f in found] == [
        ("cv", 1, "one score", 10),
        ("test", "test", "one class", 10),
    ]
    text = lines({"degenerate": found})
    assert text[0].startswith("warning: m, fold 1: every patient gets the same probabilities (II 0.40")
    assert text[1] == "warning: m, held-out test set: every patient is predicted II (10 patients)"


def _metrics(pooled: float, mean: float, sd: float, folds: int = 3) -> dict:
    level = {"n_folds": folds, "pooled": {"macro_auc": pooled}, "summary": {"macro_auc": [mean, sd]}}
    return {"models": ["m"], "cv": {"m": {"patient": level}}}


def test_a_pooled_auc_further_from_the_fold_mean_than_the_sd_is_explained():
    assert pooled_vs_folds(_metrics(0.42, 0.48, 0.03)) == [
        {"model": "m", "pooled": 0.42, "fold_mean": 0.48, "fold_sd": 0.03, "differs": True}
    ]
    assert not pooled_vs_folds(_metrics(0.46, 0.48, 0.03))[0]["differs"]
    assert not pooled_vs_folds(_metrics(0.985, 1.0, 0.0))[0]["differs"]  # no spread, yet a small gap is no news
    assert pooled_vs_folds(_metrics(0.3, 0.5, 0.0))[0]["differs"]  # constant folds pooled against their labels
    assert pooled_vs_folds(_metrics(0.46, 0.48, 0.03, folds=1)) == []  # one evaluation set: nothing to compare
    assert not pooled_vs_folds({**_metrics(0.4, 0.5, 0.1), "cv": {"m": {"patient": {
        "n_folds": 3, "pooled": {"macro_auc": None}, "summary": {"macro_auc": [0.5, 0.1]}}}}})[0]["differs"]  # fmt: skip
    metrics = {"pooled_vs_folds": pooled_vs_folds(_metrics(0.42, 0.48, 0.03))}
    (note,) = lines(metrics)
    assert note.startswith("note: m: pooled patient AUC 0.420 vs fold mean 0.480 ± 0.030") and "Quote the fold" in note


def test_a_batch_whose_every_patient_gets_one_answer_says_so():
    def patients(probs):
        return [{"probabilities": {"II": a, "III": b}} for a, b in probs]

    assert one_answer(patients([[0.3, 0.7], [0.8, 0.2]]), NAMES) == []
    (note,) = one_answer(patients([[0.3, 0.7], [0.3, 0.7], [0.3, 0.7]]), NAMES)
    assert note == (
        "warning: the model gives all 3 patients the same probabilities (II 0.300, III 0.700): "
        "it does not tell them apart"
    )
    (note,) = one_answer(patients([[0.3, 0.7], [0.1, 0.9]]), NAMES)
    assert note.startswith("Every patient is predicted III (2 patients)")
    assert one_answer(patients([[0.3, 0.7]]), NAMES) == []
