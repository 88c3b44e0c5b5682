"""What a run trains and evaluates: the recipe's cohort rows, its splits, and one job per training.

Splits come from `--splits` (a `glioscope split` folder, or a resumed run's own), else
from the recipe's `cv` settings: k patient-level folds, one holdout test set, or the
source's own Training/Testing folders. Each job is one training: its training items, an
inner validation split of its training patients when the recipe asks for one, and the
items it is evaluated on. Every job's partitions are checked for shared patients
(glioscope.split.assert_disjoint) before anything trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope import cohort, split
from glioscope.errors import InputError
from glioscope.train.settings import InnerValidation


@dataclass
class Job:
    """One training: its name, and the items it trains, validates and is evaluated on."""

    name: str  # "fold0", ... or "train" (one training for a source or holdout split)
    train: pd.DataFrame
    validation: pd.DataFrame | None
    evaluate: dict[str, pd.DataFrame] = field(default_factory=dict)  # fold label -> held-out items


def load_cohort(cohort_path: Path, task, data) -> tuple[pd.DataFrame, list[str]]:
    """The cohort rows a recipe uses (`task`: TaskSettings, `data`: DataSettings), and notes on those left out."""
    frame = cohort.load(cohort_path)
    total, notes = len(frame), []
    frame = select_rows(frame, data, cohort_path)
    if len(frame) < total:
        notes.append(f"{total - len(frame)} of {total} cohort row(s) are not in data.select {dict(data.select)}")
    column = task.label
    if column not in frame:
        raise InputError(cohort_path, f"cohort has no column {column!r} (task.label)")
    unlabelled = frame[column].astype(str) == ""
    if unlabelled.any():
        examples = ", ".join(frame.loc[unlabelled, "item_id"].head(3))
        notes.append(f"{int(unlabelled.sum())} cohort row(s) have no {column!r} and are left out (e.g. {examples})")
    if unlabelled.all():
        raise InputError(cohort_path, f"{unlabelled_words(len(frame), column, data)} (task.label)")
    frame = frame[~unlabelled].reset_index(drop=True)
    if column != "label":
        frame["label"] = frame[column]
    return frame, notes


def select_rows(frame: pd.DataFrame, data, where: Path | str | None) -> pd.DataFrame:
    """The cohort rows `data.select` keeps. A selection that keeps none, or names a column the cohort lacks, is
    refused naming the setting and what the cohort has (the recipe's selection, not the user's, may be at fault)."""
    if not data.select:
        return frame
    selection = data.selection()
    setting = f"data.select {selection}"
    missing = [key for key in selection if key not in frame]
    if missing:
        raise InputError(
            where,
            f"{setting} names {', '.join(missing)}, which the cohort has no column for; its columns are "
            f"{', '.join(frame.columns)} (--set 'data.select={{}}' keeps every row)",
        )
    kept = cohort.select(frame, selection)
    if kept.empty:
        has = "; ".join(f"{key}: {_values(frame[key])}" for key in selection)
        raise InputError(
            where,
            f"{setting} left no row of the {len(frame):,}: the cohort has {has} "
            "(--set 'data.select={...}' chooses others, --set 'data.select={}' keeps every row)",
        )
    return kept


def unlabelled_words(rows: int, column: str, data) -> str:
    """Why no labelled row is left: none of the rows (that data.select kept) has a label in `column`."""
    which = f"that data.select {data.selection()} keeps" if data.select else "of the cohort"
    return f"no labelled rows: none of the {rows:,} row(s) {which} has a value in column {column!r}"


def _values(column: pd.Series, at_most: int = 10) -> str:
    """A column's distinct values in words, the first `at_most` of them."""
    values = sorted({str(v) for v in column})
    words = ", ".join(v if v else "(empty)" for v in values[:at_most])
    return words + (f" and {len(values) - at_most} more" if len(values) > at_most else "")


def class_names(task, frame: pd.DataFrame, notes: list[str] | None = None) -> list[str]:
    """task.classes, or the sorted labels present; a label outside task.classes is an error.

    A class of task.classes that no row has stays among the model's outputs, with a note in
    `notes`: no patient can be scored on it, and macro metrics average over the classes present.
    """
    present = sorted({str(v) for v in frame[task.label] if str(v) != ""})
    names = list(task.classes or present)
    unknown = sorted(set(present) - set(names))
    if unknown:
        raise InputError(None, f"labels {unknown} are not among task.classes {names}")
    absent = [n for n in names if n not in present]
    if absent and notes is not None:
        notes.append(
            f"class(es) {', '.join(absent)} of task.classes have no patient in this cohort: the model keeps "
            "an output for them, and macro metrics average over the classes present"
        )
    return names


def make_or_load_splits(cv, frame: pd.DataFrame, splits_path: Path | None) -> tuple[pd.DataFrame, dict]:
    """The split table of the cohort rows (`cv`: CVSettings), and its metadata."""
    if splits_path is not None:
        table, meta = split.load(splits_path, allow_leaky=cv.leaky_slice_level)
        missing = set(frame["item_id"]) - set(table["item_id"])
        if missing:
            raise InputError(splits_path, f"{len(missing)} cohort items have no fold, e.g. {sorted(missing)[:3]}")
        table = table[table["item_id"].isin(set(frame["item_id"]))].reset_index(drop=True)
        return table, meta
    if cv.mode == "source":
        return source_split(frame)
    if cv.mode == "holdout":
        return split.make_holdout(frame, cv.test_fraction or 0.1, seed=cv.seed)
    return split.make_splits(
        frame, folds=cv.folds, test_fraction=cv.test_fraction, seed=cv.seed, leaky_slice_level=cv.leaky_slice_level
    )


def source_split(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The split a source defines (Training/Testing folders): train = fold 0, test held out."""
    given = frame["source_split"].str.lower()
    if not given.isin(["test", "testing"]).any():
        raise InputError(None, "cv.mode 'source' needs a source split with a Test/Testing part (see source_split)")
    table = pd.DataFrame({"item_id": frame["item_id"], "patient_id": frame["patient_id"], "label": frame["label"]})
    table["partition"] = np.where(given.isin(["test", "testing"]), "test", "cv")
    table["fold"] = np.where(table["partition"] == "test", -1, 0)
    table["leaky"] = False
    split.assert_disjoint({"train": table[table["partition"] == "cv"], "test": table[table["partition"] == "test"]})
    meta = {
        "folds": 1,
        "mode": "source",
        "leaky": False,
        "statement": "Split given by the source (train/test folders); no patient in both.",
        "counts": split.fold_counts(table),
        "notes": [],
        "test_fraction": None,
        "seed": None,
    }
    return table, meta


def plan_jobs(
    table: pd.DataFrame, mode: str, inner: InnerValidation | None = None, only: list[int] | None = None
) -> list[Job]:
    """One job per fold (or one for a source or holdout split); validation is an inner patient split if asked.

    `mode` is the splits' own (split.json's, "kfold" for given k-fold splits), which wins over the
    recipe's cv.mode: k-fold splits given with --splits run every fold even for a holdout recipe.
    """
    if mode == "all":  # the final model after a cross-validation: every patient trains, nothing is evaluated
        return [Job("all", table[table["partition"] == "cv"], None, {})]
    test = table[table["partition"] == "test"]
    folds = sorted(int(k) for k in table.loc[table["partition"] == "cv", "fold"].unique())
    once = mode in ("source", "holdout")  # one training, tested on `test`
    if once and test.empty:
        raise InputError(
            None, f"a {mode} split trains once and evaluates on its test patients, but this split has none"
        )
    jobs = []
    for k in folds:
        if only is not None and k not in only:
            continue
        parts = split.fold_partitions(table, k)
        train, held_out = (table[table["partition"] == "cv"], None) if once else (parts["train"], parts["validation"])
        train, validation = inner_validation(train, inner, "train" if once else f"fold{k}")
        evaluate = {} if held_out is None else {str(k): held_out}
        if len(test):
            evaluate["test"] = test
        job = Job("train" if once else f"fold{k}", train, validation, evaluate)
        named = {
            "train": job.train,
            **({"validation": validation} if validation is not None else {}),
            **{f"evaluate:{n}": t for n, t in evaluate.items()},
        }
        if not bool(table["leaky"].any()):
            split.assert_disjoint(named)
        jobs.append(job)
    return jobs


def inner_validation(
    train: pd.DataFrame, inner: InnerValidation | None, job: str = "fold"
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(training, validation) items: a stratified patient-level split of `train`, or (train, None)."""
    if inner is None:
        return train, None
    units = train.drop_duplicates("patient_id")
    folds = max(2, round(1 / inner.fraction))
    if units["label"].value_counts().min() < folds:
        folds = max(2, int(units["label"].value_counts().min()))
    try:
        table, _ = split.make_splits(train, folds=folds, seed=inner.seed + 17)
    except InputError as exc:
        raise InputError(
            None,
            f"{job}: its {len(units)} training patient(s) are too few for an inner validation "
            f"split (train.validation: inner; {exc}); use more patients or "
            "--set train.validation=none",
        ) from None
    is_validation = train["item_id"].isin(set(table.loc[table["fold"] == 0, "item_id"]))
    return train[~is_validation], train[is_validation]
