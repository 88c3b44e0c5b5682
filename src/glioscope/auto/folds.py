"""The folds `glioscope auto` runs every candidate on: one patient-level outer split, and inner splits inside it.

    OUT/folds/splits.csv          k stratified patient-level folds of the cohort (glioscope.split)
    OUT/inner/fold<k>/splits.csv  fold k's TRAINING patients in inner folds; fold k's held-out patients are
                                  this split's `test` partition: never trained on, and never used to choose

A choice for outer fold k (which candidate, a stack's weights) is made only on predictions of the inner
folds' held-out patients, all among fold k's training patients: `inner_patients` asserts it
(glioscope.split.assert_disjoint) every time it hands such predictions out.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from glioscope import split
from glioscope.errors import InputError
from glioscope.split import SPLITS


def outer(frame: pd.DataFrame, folds: int, seed: int, out: Path) -> pd.DataFrame:
    """The outer folds of `frame` (its `label` column), written to `out` unless there; returns the split table."""
    if (out / SPLITS).is_file():
        table, meta = split.load(out)
        if (meta.get("folds"), meta.get("seed")) != (folds, seed):
            raise InputError(
                out,
                f"holds {meta.get('folds')} folds of seed {meta.get('seed')}, the plan asks {folds} of seed "
                f"{seed}: use another output folder",
            )
        return table
    table, meta = split.make_splits(frame, folds=folds, seed=seed)
    meta["statement"] = f"glioscope auto's outer folds: {meta['statement']}"
    split.save(out, table, meta)
    return table


def training_patients(table: pd.DataFrame, fold: int) -> set[str]:
    return set(table.loc[(table["partition"] == "cv") & (table["fold"] != fold), "patient_id"])


def held_out_patients(table: pd.DataFrame, fold: int) -> set[str]:
    return set(table.loc[(table["partition"] == "cv") & (table["fold"] == fold), "patient_id"]) | set(
        table.loc[table["partition"] == "test", "patient_id"]
    )


def inner(table: pd.DataFrame, fold: int, inner_folds: int, seed: int, out: Path) -> pd.DataFrame:
    """Outer fold `fold`'s inner split (see the module docstring), written to `out` unless there."""
    if (out / SPLITS).is_file():
        found, _ = split.load(out)
        return found
    train = training_patients(table, fold)
    rows = table["patient_id"].isin(train)
    inner_table, meta = split.make_splits(table[rows].reset_index(drop=True), folds=inner_folds, seed=seed + 1 + fold)
    by_item = inner_table.set_index("item_id")["fold"]
    made = table.copy()
    made["partition"] = "test"
    made["fold"] = -1
    made.loc[rows, "partition"] = "cv"
    made.loc[rows, "fold"] = made.loc[rows, "item_id"].map(by_item).astype(int)
    split.check_splits(made)
    split.assert_disjoint(
        {f"fold{fold}: training patients": made[made["partition"] == "cv"], f"fold{fold}: held out": made[~rows]}
    )
    meta.update(
        counts=split.fold_counts(made),
        statement=f"glioscope auto's inner folds of outer fold {fold}: its {len(train)} training patients in "
        f"{inner_folds} folds; its held-out patients are the test partition, never trained on or chosen by",
    )
    split.save(out, made, meta)
    return made


def inner_patients(predictions: pd.DataFrame, table: pd.DataFrame, fold: int) -> pd.DataFrame:
    """Inner out-of-fold patient predictions of outer fold `fold`, checked to be its training patients only."""
    got = predictions[predictions["fold"].astype(str) != "test"]
    split.assert_disjoint(
        {
            f"fold{fold}: patients a choice is made on (inner out-of-fold)": sorted(set(got["patient_id"])),
            f"fold{fold}: its held-out patients": sorted(held_out_patients(table, fold)),
        }
    )
    return got
