"""The folds and subsamples of a learning curve: outer patient-level folds, and nested shares of each fold's training
patients, stratified by label.

For outer fold k and seed s, each class's training patients of fold k are put in one shuffled order (seeded by s
and k); the subsample at fraction f is the first ceil(f * n) patients of each class's order, n being that class's
training patients in fold k. So the subsample of a smaller fraction lies inside that of a larger one (nested), the
class shares follow the fold's, and fraction 1 is every training patient. The held-out patients of fold k are the
same for every fraction; they are the `test` partition of each subsample's split table (glioscope.split), whose
training patients are fold 0 of a one-training ("holdout") split, so that a method trains once on the subsample and
predicts the held-out patients.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope import split
from glioscope.errors import InputError

MIN_PER_CLASS = 2  # what a classifier and its inner CV need of each class


def check_fractions(fractions) -> list[float]:
    """The fractions, sorted and without repeats; an InputError for one outside (0, 1]."""
    found = sorted({float(f) for f in fractions})
    if not found:
        raise InputError(None, "--fractions: give at least one fraction in (0, 1]")
    for fraction in found:
        if not 0.0 < fraction <= 1.0 or math.isnan(fraction):
            raise InputError(
                None,
                f"--fractions: {fraction:g} is outside (0, 1]; a fraction is a share of each fold's training "
                "patients, 1 being all of them",
            )
    return found


def patients_of(frame: pd.DataFrame) -> pd.Series:
    """patient_id -> label of the cohort rows (one label per patient, else an InputError)."""
    labels = frame.groupby("patient_id")["label"].agg(lambda s: sorted(set(map(str, s))))
    mixed = labels[labels.map(len) > 1]
    if len(mixed):
        raise InputError(None, f"patient {mixed.index[0]} carries more than one label ({mixed.iloc[0]})")
    return labels.map(lambda s: s[0]).sort_index()


def outer_folds(frame: pd.DataFrame, folds: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """K stratified patient-level folds of the cohort rows (glioscope.split.make_splits)."""
    table, meta = split.make_splits(frame, folds=folds, seed=seed)
    meta["statement"] = f"glioscope curve's outer folds: {meta['statement']}"
    return table, meta


def given_folds(path: Path, frame: pd.DataFrame, notes: list[str]) -> tuple[pd.DataFrame, dict]:
    """The outer folds of a split folder, by patient. Its test partition is left out of the curve (with a note);
    every other cohort patient must have a cross-validation fold."""
    given, meta = split.load(path)
    if given["leaky"].any():
        raise InputError(path, "is a leaky slice-level split: a learning curve needs patient-level folds")
    test = set(given.loc[given["partition"] == "test", "patient_id"])
    if test & set(frame["patient_id"]):
        notes.append(f"{len(test)} patient(s) of the splits' test partition are not used: the curve is of its folds")
    frame = frame[~frame["patient_id"].isin(test)]
    cv = given[given["partition"] == "cv"].drop_duplicates("patient_id").set_index("patient_id")["fold"]
    missing = sorted(set(frame["patient_id"]) - set(cv.index))
    if missing:
        raise InputError(
            path, f"{len(missing)} cohort patient(s) have no cross-validation fold here (e.g. {', '.join(missing[:3])})"
        )
    table = frame[["item_id", "patient_id", "label"]].reset_index(drop=True)
    table["partition"] = "cv"
    table["fold"] = table["patient_id"].map(cv).astype(int)
    table["leaky"] = False
    if table["fold"].nunique() < 2:
        raise InputError(path, "has one cross-validation fold: a learning curve needs k >= 2 folds")
    split.check_splits(table)
    return table, {**meta, "splits": str(path), "counts": split.fold_counts(table)}


def training_patients(table: pd.DataFrame, fold: int) -> list[str]:
    return sorted(set(table.loc[table["fold"] != fold, "patient_id"]))


def held_out_patients(table: pd.DataFrame, fold: int) -> list[str]:
    return sorted(set(table.loc[table["fold"] == fold, "patient_id"]))


def orders(labels: pd.Series, training: list[str], seed: int, fold: int) -> dict[str, list[str]]:
    """Each class's training patients of a fold in one shuffled order (the same for every fraction)."""
    rng = np.random.default_rng([int(seed), int(fold)])
    by_class = labels.loc[training].groupby(labels.loc[training]).groups
    return {str(c): [str(p) for p in rng.permutation(sorted(by_class[c]))] for c in sorted(by_class)}


def subsample(order: dict[str, list[str]], fraction: float, fold: int, classes: list[str]) -> list[str]:
    """The first ceil(fraction * n) patients of each class's order; an InputError when a class has too few."""
    chosen = []
    for name in classes:
        patients = order.get(name, [])
        take = min(len(patients), math.ceil(fraction * len(patients) - 1e-9))
        if take < MIN_PER_CLASS:
            raise InputError(
                None,
                f"fraction {fraction:g} of fold {fold} holds {take} training patient(s) of class {name} (of the "
                f"fold's {len(patients)}): a classifier needs at least {MIN_PER_CLASS} of each class; use larger "
                "fractions, fewer folds or more patients",
            )
        chosen += patients[:take]
    return sorted(chosen)


def plan_subsamples(
    table: pd.DataFrame, labels: pd.Series, fractions: list[float], seed: int
) -> dict[tuple[int, float], list[str]]:
    """(fold, fraction) -> its training patients, every one checked (nested, disjoint from the held-out) before
    anything trains; refuses a subsample too small (`subsample`)."""
    classes = sorted(set(labels))
    made = {}
    for fold in sorted(table["fold"].unique()):
        fold = int(fold)
        training, held_out = training_patients(table, fold), held_out_patients(table, fold)
        order = orders(labels, training, seed, fold)
        previous: set[str] = set()
        for fraction in fractions:
            chosen = subsample(order, fraction, fold, classes)
            split.assert_disjoint({f"fold{fold} at {fraction:g}: training": chosen, f"fold{fold}: held out": held_out})
            assert previous <= set(chosen) <= set(training), f"fold {fold}: subsamples are not nested"
            previous = set(chosen)
            made[fold, fraction] = chosen
    return made


def subsample_table(frame: pd.DataFrame, chosen: list[str], held_out: list[str]) -> tuple[pd.DataFrame, dict]:
    """The split table of one subsample: its patients' rows train once (cv, fold 0), the held-out rows are `test`."""
    rows = frame[frame["patient_id"].isin(set(chosen) | set(held_out))]
    table = rows[["item_id", "patient_id", "label"]].reset_index(drop=True)
    is_test = table["patient_id"].isin(set(held_out))
    table["partition"] = np.where(is_test, "test", "cv")
    table["fold"] = np.where(is_test, -1, 0)
    table["leaky"] = False
    split.check_splits(table)
    split.assert_disjoint({"subsample": table[~is_test], "held out": table[is_test]})
    meta = {
        "folds": 1,
        "mode": "holdout",
        "test_fraction": None,
        "seed": None,
        "leaky": False,
        "grouped_by": "patient_id",
        "statement": f"Split by patient: {len(chosen)} training patients (a learning curve's subsample) and "
        f"{len(held_out)} held-out patients (test); no patient in both.",
        "counts": split.fold_counts(table),
        "notes": [],
    }
    return table, meta


def roles(made: dict[tuple[int, float], list[str]], table: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """One row per (fold, fraction, patient) with its role (train | held_out): what every run was given."""
    rows = []
    for (fold, fraction), chosen in sorted(made.items()):
        for role, patients in (("train", chosen), ("held_out", held_out_patients(table, fold))):
            rows += [
                {"fold": fold, "fraction": fraction, "patient_id": p, "label": labels[p], "role": role}
                for p in patients
            ]
    return pd.DataFrame(rows, columns=["fold", "fraction", "patient_id", "label", "role"])
