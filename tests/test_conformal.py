"""Conformal prediction sets and selective prediction on probabilities the tests draw: coverage at the level on
exchangeable data, per class with Mondrian sets, and the risk-coverage curve of a model whose confidence means
something against one whose confidence means nothing."""

from __future__ import annotations

import numpy as np
import pytest

from glioscope.errors import GlioscopeError
from glioscope.evaluate.conformal import PredictionSets, SetOptions, coverage
from glioscope.evaluate.selective import at_coverages, risk_coverage

NAMES = ["II", "III", "IV"]


def draw(rng, n: int, k: int = 3, sharpness: float = 2.0, prior=None):
    """Patients whose labels follow the model's probabilities (a calibrated model): exchangeable by construction."""
    logits = sharpness * rng.normal(size=(n, k)) + (0 if prior is None else np.log(prior))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    target = np.array([rng.choice(k, p=p) for p in probabilities])
    return probabilities, target


def calibration_of(probabilities, target, names=NAMES) -> dict:
    scores = 1.0 - probabilities[np.arange(len(target)), target]
    return {
        "model": "m",
        "class_names": list(names),
        "n_patients": len(target),
        "n_per_class": {n: int((target == k).sum()) for k, n in enumerate(names)},
        "scores": scores.tolist(),
        "true_class": target.tolist(),
        "chosen_on": "drawn",
    }


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
def test_sets_cover_the_true_class_at_least_at_the_level_over_many_draws(level):
    rng = np.random.default_rng(int(level * 100))
    found = []
    for _ in range(150):
        p_cal, y_cal = draw(rng, 40)
        p_new, y_new = draw(rng, 60)
        options = SetOptions(level)
        sets = PredictionSets(calibration_of(p_cal, y_cal), options).sets(p_new)
        found.append(coverage(sets, y_new, NAMES, options)["coverage"])
    # split conformal: at least the level in expectation, and at most level + 1/(n+1) (no ties)
    assert level - 0.01 <= np.mean(found) <= level + 1 / 41 + 0.01


def test_mondrian_sets_cover_each_class_where_standard_ones_miss_the_rare_class():
    rng = np.random.default_rng(1)
    prior = np.array([0.85, 0.15])
    per_class = {"standard": [], "mondrian": []}
    for _ in range(150):
        # a model blind to the rare class: its probabilities follow the prior, not the patient
        p_cal, y_cal = draw(rng, 80, k=2, sharpness=0.3, prior=prior)
        p_new, y_new = draw(rng, 80, k=2, sharpness=0.3, prior=prior)
        calibration = calibration_of(p_cal, y_cal, ["common", "rare"])
        for kind, mondrian in (("standard", False), ("mondrian", True)):
            options = SetOptions(0.9, mondrian)
            sets = PredictionSets(calibration, options).sets(p_new)
            per_class[kind].append(sets[y_new == 1, 1].mean())
    assert np.mean(per_class["mondrian"]) >= 0.89
    assert np.mean(per_class["standard"]) < 0.8  # the rare class pays for the common one's coverage
    result = coverage(sets, y_new, ["common", "rare"], SetOptions(0.9, True))
    assert set(result["per_class"]) == {"common", "rare"}
    lo, hi = result["per_class"]["rare"]["ci"]
    assert lo <= result["per_class"]["rare"]["coverage"] <= hi


def test_uninformative_probabilities_give_uncertain_sets_and_sharp_ones_single_classes():
    rng = np.random.default_rng(2)
    flat = np.full((50, 3), 1 / 3) + rng.normal(scale=0.01, size=(50, 3))
    flat /= flat.sum(axis=1, keepdims=True)
    target = rng.integers(0, 3, 50)
    sets = PredictionSets(calibration_of(flat, target), SetOptions(0.9))
    assert all(sets.entry(p)["uncertain"] for p in flat[:10])
    sharp, truth = draw(rng, 200, sharpness=8.0)
    single = PredictionSets(calibration_of(sharp, truth), SetOptions(0.8)).sets(sharp)
    assert (single.sum(axis=1) == 1).mean() > 0.7
    entry = PredictionSets(calibration_of(flat, target), SetOptions(0.9)).entry(np.array([0.2, 0.5, 0.3]))
    assert entry["prediction_set"][0] == "III"  # most probable first


def test_too_few_calibration_patients_put_every_class_in_every_set_and_say_so():
    rng = np.random.default_rng(3)
    p, y = draw(rng, 8)
    sets = PredictionSets(calibration_of(p, y), SetOptions(0.95))  # (8 + 1) * 0.05 < 1
    assert sets.sets(draw(rng, 20)[0]).all()
    assert "every class" in sets.describe()["too_few"]


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.2, 90, float("nan")])
def test_a_level_outside_zero_to_one_is_refused_naming_the_option(level):
    with pytest.raises(GlioscopeError, match="--level"):
        SetOptions(level)


def test_the_risk_coverage_curve_rises_when_confidence_tells_right_from_wrong():
    rng = np.random.default_rng(4)
    probabilities, target = draw(rng, 400, k=2, sharpness=2.0)
    informative = at_coverages(probabilities, target)
    assert [r["share"] for r in informative] == [1.0, 0.9, 0.75, 0.5]
    accuracies = [r["accuracy"] for r in informative]
    assert accuracies == sorted(accuracies) and accuracies[-1] > accuracies[0] + 0.1
    assert informative[0]["kept"] == 400 and 200 <= informative[-1]["kept"] <= 202
    shuffled = rng.permutation(target)  # the same confidences, labels unrelated to them
    flat = [r["accuracy"] for r in at_coverages(probabilities, shuffled)]
    assert max(flat) - min(flat) < 0.1
    curve = risk_coverage(probabilities, target)
    assert curve["coverage"][-1] == 1.0 and curve["accuracy"][-1] == pytest.approx(accuracies[0])
    assert np.all(np.diff(curve["coverage"]) > 0)


def test_patients_tied_in_confidence_are_kept_together():
    probabilities = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 4)
    target = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    rows = at_coverages(probabilities, target, shares=(0.5, 0.25))
    assert [r["kept"] for r in rows] == [4, 4] and rows[0]["accuracy"] == 0.75
