"""evaluate_run: numbers agree with classification_metrics on independently aggregated rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from glioscope.errors import InputError
from glioscope.evaluate.metrics import classification_metrics, flat_metrics
from glioscope.evaluate.run import evaluate_run, load_metrics
from glioscope.report.testing import SDL_MODELS, fake_run

NAMES = ["II", "III", "IV"]
PROBS = [f"prob_{c}" for c in NAMES]


@pytest.fixture(scope="module")
def sdl_run(tmp_path_factory):
    run = fake_run(tmp_path_factory.mktemp("runs") / "sdl", n_patients=36, folds=3, test_patients=6, seed=3)
    return run, evaluate_run(run, n_boot=200, seed=0)


def patient_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean probability per (fold, patient), computed here without glioscope's aggregate module."""
    rows = []
    for (fold, patient), group in frame.groupby(["fold", "patient_id"]):
        rows.append(
            {
                "fold": fold,
                "patient_id": patient,
                "target": group["target"].iloc[0],
                **{c: group[c].sum() / len(group) for c in PROBS},
            }
        )
    return pd.DataFrame(rows)


def test_patient_level_equals_direct_computation(sdl_run):
    run, result = sdl_run
    predictions = pd.read_csv(run / "predictions.csv", dtype={"fold": str})
    cv = predictions[predictions["fold"] != "test"]
    for model in SDL_MODELS:
        patients = patient_means(cv[cv["model"] == model])
        level = result["cv"][model]["patient"]
        direct = classification_metrics(patients["target"], patients[PROBS].to_numpy(), NAMES)
        assert level["n"] == len(patients) == cv["patient_id"].nunique() == 30
        assert level["pooled"]["accuracy"] == pytest.approx(direct["accuracy"])
        assert level["pooled"]["macro_f1"] == pytest.approx(direct["macro_f1"])
        assert level["pooled"]["macro_auc"] == pytest.approx(direct["macro_auc"])
        assert level["pooled"]["confusion_matrix"] == direct["confusion_matrix"]
        per_fold = []
        for k, fold in enumerate(sorted(patients["fold"].unique(), key=int)):
            rows = patients[patients["fold"] == fold]
            flat = flat_metrics(classification_metrics(rows["target"], rows[PROBS].to_numpy(), NAMES))
            assert level["per_fold"][k]["fold"] == int(fold)
            assert level["per_fold"][k]["accuracy"] == pytest.approx(flat["accuracy"])
            assert level["per_fold"][k]["f1/IV"] == pytest.approx(flat["f1/IV"])
            per_fold.append(flat["accuracy"])
        mean, sd = level["summary"]["accuracy"]
        assert mean == pytest.approx(np.mean(per_fold))
        assert sd == pytest.approx(np.std(per_fold, ddof=1))


def test_image_level_equals_direct_computation(sdl_run):
    run, result = sdl_run
    predictions = pd.read_csv(run / "predictions.csv", dtype={"fold": str})
    rows = predictions[(predictions["fold"] != "test") & (predictions["model"] == "sdl/net2")]
    direct = classification_metrics(rows["target"], rows[PROBS].to_numpy(), NAMES)
    level = result["cv"]["sdl/net2"]["image"]
    assert level["n"] == len(rows)
    assert level["n_patients"] == 30
    assert level["pooled"]["accuracy"] == pytest.approx(direct["accuracy"])
    assert level["pooled"]["per_class"]["III"]["specificity"] == pytest.approx(
        direct["per_class"]["III"]["specificity"]
    )


def test_patient_level_comes_first_and_test_set_is_separate(sdl_run):
    _, result = sdl_run
    assert result["sets"] == ["cv", "test"]
    assert list(result["cv"]["sdl/mean"]) == ["patient", "image"]
    assert result["test"]["sdl/mean"]["patient"]["n"] == 6
    assert result["test"]["sdl/mean"]["patient"]["n_folds"] == 1
    assert result["folds"] == [0, 1, 2]


def test_bootstrap_interval_contains_pooled_value(sdl_run):
    _, result = sdl_run
    for model in SDL_MODELS:
        for level in ("patient", "image"):
            entry = result["cv"][model][level]
            for key in ("accuracy", "macro_f1", "macro_auc"):
                low, high = entry["ci"][key]
                assert low <= entry["pooled"][key] <= high, (model, level, key)
                assert high - low > 0


def test_outputs_are_written_as_strict_json_and_csv(sdl_run):
    run, result = sdl_run

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    on_disk = json.loads((run / "metrics.json").read_text(), parse_constant=refuse)
    assert on_disk == load_metrics(run)
    assert (
        on_disk["cv"]["sdl/net1"]["patient"]["pooled"]["accuracy"]
        == result["cv"]["sdl/net1"]["patient"]["pooled"]["accuracy"]
    )
    patients = pd.read_csv(run / "predictions_patients.csv")
    assert len(patients) == len(SDL_MODELS) * 36
    assert list(patients.columns[:4]) == ["set", "fold", "model", "patient_id"]
    assert np.allclose(patients[PROBS].sum(axis=1), 1.0)
    assert not list(run.glob(".*.partial"))


def test_binary_run_with_index_named_prob_columns(tmp_path):
    run = fake_run(
        tmp_path / "r18",
        models=["resnet18"],
        class_names=["unmethylated", "methylated"],
        n_patients=20,
        folds=2,
        prob_by_index=True,
        seed=1,
    )
    result = evaluate_run(run, n_boot=50)
    assert result["class_names"] == ["unmethylated", "methylated"]
    pooled = result["cv"]["resnet18"]["patient"]["pooled"]
    assert pooled["auc"] == pytest.approx(pooled["per_class"]["methylated"]["auc"])
    patients = pd.read_csv(run / "predictions_patients.csv")
    assert {"prob_unmethylated", "prob_methylated"} <= set(patients.columns)  # named by class
    assert set(patients["target_label"]) == {"unmethylated", "methylated"}


def test_missing_predictions_name_the_file(tmp_path):
    run = fake_run(tmp_path / "run", models=["alexnet"], n_patients=12, folds=2)
    (run / "predictions.csv").unlink()
    with pytest.raises(InputError, match="predictions.csv"):
        evaluate_run(run, n_boot=10)
    with pytest.raises(InputError, match="metrics.json"):
        load_metrics(run)
