"""Patient-level splits and the leak check."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from glioscope import cohort, split
from glioscope.cli import main
from glioscope.errors import InputError, PatientLeakError


def make_cohort(n_per_class=(12, 9, 15), slices=(3, 8), seed=0) -> pd.DataFrame:
    """A cohort of several slices per patient, classes of unequal size."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, n in zip(("II", "III", "IV"), n_per_class):
        for p in range(n):
            patient = f"{label}-{p:03d}"
            for s in range(rng.integers(*slices)):
                rows.append(
                    {
                        "item_id": f"{patient}/{s}",
                        "patient_id": patient,
                        "kind": "image",
                        "path": f"/x/{patient}_{s}.png",
                        "label": label,
                    }
                )
    return cohort.to_frame(rows)


def test_folds_group_patients_and_cover_everyone():
    frame = make_cohort()
    table, meta = split.make_splits(frame, folds=4, seed=1)
    per_patient = table.groupby("patient_id")["fold"].nunique()
    assert (per_patient == 1).all()
    assert set(table["fold"]) == {0, 1, 2, 3}
    assert len(table) == len(frame) and list(table["item_id"]) == list(frame["item_id"])
    assert meta["leaky"] is False and meta["grouped_by"] == "patient_id"


def test_folds_are_stratified_by_label():
    frame = make_cohort(n_per_class=(20, 20, 20))
    table, _ = split.make_splits(frame, folds=4, seed=3)
    patients = table.drop_duplicates("patient_id")
    counts = patients.groupby(["fold", "label"]).size().unstack()
    # 20 patients per class over 4 folds: 5 each, allow one either way.
    assert counts.min().min() >= 4 and counts.max().max() <= 6


def test_test_fraction_holds_out_patients_from_every_fold():
    frame = make_cohort(n_per_class=(20, 20, 20))
    table, _ = split.make_splits(frame, folds=3, test_fraction=0.2, seed=0)
    test_patients = set(table.loc[table["partition"] == "test", "patient_id"])
    assert 9 <= len(test_patients) <= 15
    assert (table.loc[table["partition"] == "test", "fold"] == -1).all()
    for k in range(3):
        parts = split.fold_partitions(table, k)
        assert test_patients.isdisjoint(parts["train"]["patient_id"])
        assert test_patients.isdisjoint(parts["validation"]["patient_id"])
    assert set(table.loc[table["partition"] == "test", "label"]) == {"II", "III", "IV"}


def test_same_seed_same_split_other_seed_differs():
    frame = make_cohort()
    a, _ = split.make_splits(frame, folds=3, seed=7)
    b, _ = split.make_splits(frame, folds=3, seed=7)
    c, _ = split.make_splits(frame, folds=3, seed=8)
    assert a.equals(b)
    assert not a["fold"].equals(c["fold"])


def test_leaky_split_is_stamped_and_refused_by_the_check():
    frame = make_cohort()
    table, meta = split.make_splits(frame, folds=3, seed=0, leaky_slice_level=True)
    assert meta["leaky"] and table["leaky"].all() and "LEAKY" in meta["statement"]
    # Slice-level folds put some patient on both sides: the check must fire.
    with pytest.raises(PatientLeakError, match="stamped leaky"):
        split.check_splits(table)
    split.check_splits(table, allow_leaky=True)


def test_check_fires_on_a_hand_made_leak():
    frame = make_cohort()
    table, _ = split.make_splits(frame, folds=3, seed=0)
    victim = table.index[table["fold"] == 0][0]
    table.loc[victim, "fold"] = 1  # one slice of a fold-0 patient moved to fold 1
    with pytest.raises(PatientLeakError, match=table.loc[victim, "patient_id"]):
        split.check_splits(table)


def test_assert_disjoint_names_partitions_and_patients():
    train = pd.DataFrame({"patient_id": ["a", "b", "c"]})
    external = pd.DataFrame({"patient_id": ["c", "d"]})
    split.assert_disjoint({"train": train, "other": ["x", "y"]})
    with pytest.raises(PatientLeakError, match=r"'train' and 'external' \(e\.g\. c\)"):
        split.assert_disjoint({"train": train, "external": external})


def test_patient_with_two_labels_is_an_error():
    frame = make_cohort()
    frame.loc[0, "label"] = "IV" if frame.loc[0, "label"] != "IV" else "II"
    with pytest.raises(InputError, match="more than one label"):
        split.make_splits(frame, folds=3)


def test_unlabelled_items_are_an_error():
    frame = make_cohort()
    frame.loc[3, "label"] = ""
    with pytest.raises(InputError, match="no 'label'"):
        split.make_splits(frame, folds=3)


def test_too_few_patients_for_the_folds():
    frame = make_cohort(n_per_class=(1, 1, 1))
    with pytest.raises(InputError, match="too few"):
        split.make_splits(frame, folds=5)


def test_cli_writes_split_folder_and_load_checks_it(tmp_path, capsys):
    frame = make_cohort()
    cohort.save(tmp_path / "cohort", frame, cohort.summarise(frame))
    assert main(["split", str(tmp_path / "cohort"), "--folds", "3", "--seed", "2", "-o", str(tmp_path / "splits")]) == 0
    assert "no patient has items in two partitions" in capsys.readouterr().out
    table, meta = split.load(tmp_path / "splits")
    assert meta["folds"] == 3 and len(table) == len(frame)
    # Refuses to overwrite; leaves no temporary folder behind.
    assert main(["split", str(tmp_path / "cohort"), "-o", str(tmp_path / "splits")]) == 2
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_cli_leaky_split_is_stamped_on_disk(tmp_path):
    frame = make_cohort()
    cohort.save(tmp_path / "cohort", frame, cohort.summarise(frame))
    assert (
        main(["split", str(tmp_path / "cohort"), "--folds", "3", "--leaky-slice-level", "-o", str(tmp_path / "s")]) == 0
    )
    assert json.loads((tmp_path / "s" / "split.json").read_text())["leaky"] is True
    assert (tmp_path / "s" / "summary.txt").read_text().startswith("LEAKY SPLIT")
    with pytest.raises(PatientLeakError):
        split.load(tmp_path / "s")
    table, _ = split.load(tmp_path / "s", allow_leaky=True)
    assert table["leaky"].all()
