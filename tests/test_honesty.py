"""The MGMT honesty check: the whole pipeline on phantoms whose images carry no, or a strong, MGMT signal."""

from __future__ import annotations

import json

import pandas as pd

from glioscope.honesty import QUICK_PRESET, check
from glioscope.split import check_splits


def test_no_signal_gives_an_interval_covering_chance(tmp_path):
    result = check(tmp_path, mgmt_effect=0.0)
    cohort = pd.read_csv(tmp_path / "cohort" / "cohort.csv", dtype={"patient_id": str})
    with_t1c = cohort.loc[cohort["sequence"] == "T1c", "patient_id"].nunique()
    assert QUICK_PRESET.n_grade_iv - 3 <= with_t1c < QUICK_PRESET.n_grade_iv  # a few lack T1c, as in the real data
    assert result["n_patients"] == with_t1c  # every patient with the sequence scored once, out of fold
    low, high = result["ci"]
    assert low < 0.5 < high, result
    assert low < result["auc"] < high
    # The run behind it was split by patient and predicted every patient on held-out folds only.
    run = tmp_path / "run"
    splits = pd.read_csv(run / "splits.csv", dtype={"patient_id": str})
    predictions = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str, "fold": str})
    check_splits(splits)  # raises when a patient is in two partitions
    fold_of = splits.drop_duplicates("patient_id").set_index("patient_id")["fold"].astype(str)
    assert (predictions["fold"] == predictions["patient_id"].map(fold_of)).all()
    info = json.loads((run / "run.json").read_text())
    assert info["leaky"] is False and "MGMT" in info["task"]


def test_strong_signal_gives_an_interval_above_chance(tmp_path):
    # At effect 5 a methylated tumour is a solid, non-enhancing mass without oedema: the same
    # pipeline must find it, or it could not find anything.
    result = check(tmp_path, mgmt_effect=5.0)
    low, high = result["ci"]
    assert 0.5 < low < result["auc"], result
