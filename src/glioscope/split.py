"""Patient-level splits that cannot leak, and the check every later stage runs.

A split table has one row per cohort item:

    item_id, patient_id, label, partition (cv | test), fold (0..K-1; -1 for test), leaky

In fold k, training uses the `cv` rows with fold != k and validation the `cv` rows
with fold == k; `test` rows are held out from every fold. Folds are stratified by
label and grouped by patient (scikit-learn's StratifiedGroupKFold), so that no
patient has items in two partitions. `check_splits` asserts it.

`leaky=True` (CLI: --leaky-slice-level) groups by item instead of patient. It
exists only to reproduce the slice-level protocol of some publications; every
row and the metadata carry the stamp, and `check_splits` refuses such a table
unless the caller passes allow_leaky=True.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from glioscope.errors import GlioscopeError, InputError, PatientLeakError
from glioscope.util import atomic, csvfiles

SPLITS, SPLIT_META = "splits.csv", "split.json"  # a split folder's files (and a run folder's copies)

SPLIT_COLUMNS = ["item_id", "patient_id", "label", "partition", "fold", "leaky"]
LEAKY_WARNING = (
    "LEAKY SPLIT: items of one patient may sit in both training and evaluation "
    "partitions (slice-level protocol). Results overestimate performance on new patients."
)


def make_splits(
    cohort: pd.DataFrame,
    folds: int = 5,
    test_fraction: float = 0.0,
    seed: int = 0,
    label_column: str = "label",
    leaky_slice_level: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """Assign every item a partition and a fold; returns (split table, metadata)."""
    if folds < 2:
        raise InputError(None, f"--folds must be at least 2, got {folds}")
    if not 0.0 <= test_fraction < 1.0:
        raise InputError(None, f"--test-fraction must be in [0, 1), got {test_fraction}")
    if label_column not in cohort:
        raise InputError(None, f"cohort has no column {label_column!r} to stratify by")
    labels = cohort[label_column].astype(str)
    if (labels == "").any():
        missing = cohort.loc[labels == "", "item_id"].head(3).tolist()
        raise InputError(
            None,
            f"{int((labels == '').sum())} items have no {label_column!r} (e.g. {missing}); "
            "join labels at ingest (--labels), or leave them out (`glioscope split --drop-unlabelled`)",
        )
    group_column = "item_id" if leaky_slice_level else "patient_id"
    units = _units(cohort, labels, group_column)
    unit = "patients" if group_column == "patient_id" else "items"
    n_test = round(len(units) * test_fraction) if test_fraction else 0
    if test_fraction and n_test < 1:
        raise InputError(
            None,
            f"a test set of {test_fraction:.0%} of {len(units)} {unit} holds out none "
            f"({len(units) * test_fraction:.1f}); use more {unit} or a larger test fraction",
        )
    if len(units) - n_test < folds:
        held = f" after a test set of about {n_test}" if n_test else ""
        raise InputError(
            None,
            f"{len(units)} {unit} are too few for {folds} folds{held}: each fold needs at least one; use fewer folds",
        )

    rng_seed = int(seed)
    unit_partition = pd.Series("cv", index=units.index)
    if test_fraction > 0:
        test_units = _one_fold(units, round(1 / test_fraction), rng_seed)
        unit_partition[test_units] = "test"
    cv_units = units[unit_partition == "cv"]
    per_class = cv_units.value_counts()
    if (per_class < folds).all():
        listing = ", ".join(f"{label}: {n}" for label, n in per_class.items())
        raise InputError(
            None,
            f"every class has fewer {unit} than the {folds} folds ({listing}): too few for "
            "stratified folds; use fewer folds or more patients",
        )
    unit_fold = pd.Series(-1, index=units.index)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=rng_seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k, (_, val) in enumerate(splitter.split(cv_units.index, cv_units.values, cv_units.index)):
            unit_fold[cv_units.index[val]] = k
    notes = [str(w.message) for w in caught]

    table = pd.DataFrame(
        {
            "item_id": cohort["item_id"].values,
            "patient_id": cohort["patient_id"].values,
            "label": labels.values,
        }
    )
    key = table[group_column]
    table["partition"] = key.map(unit_partition).values
    table["fold"] = key.map(unit_fold).astype(int).values
    table["leaky"] = bool(leaky_slice_level)
    meta = {
        "folds": folds,
        "test_fraction": test_fraction,
        "seed": seed,
        "label_column": label_column,
        "grouped_by": group_column,
        "stratified_by": label_column,
        "leaky": bool(leaky_slice_level),
        "statement": LEAKY_WARNING
        if leaky_slice_level
        else "Split by patient: no patient has items in two partitions.",
        "counts": fold_counts(table),
        "notes": notes,
    }
    if not leaky_slice_level:
        check_splits(table)
    return table, meta


def make_holdout(
    cohort: pd.DataFrame, test_fraction: float, seed: int = 0, label_column: str = "label"
) -> tuple[pd.DataFrame, dict]:
    """One stratified patient-level test set; everything else is fold 0 (to train, with an inner validation)."""
    table, meta = make_splits(cohort, folds=2, test_fraction=test_fraction, seed=seed, label_column=label_column)
    table.loc[table["partition"] == "cv", "fold"] = 0
    meta.update(
        folds=1,
        mode="holdout",
        counts=fold_counts(table),
        statement=f"Split by patient: a stratified {test_fraction:.0%} of the patients held out as the test set; "
        "no patient has items in two partitions.",
    )
    check_splits(table)
    return table, meta


def _units(cohort: pd.DataFrame, labels: pd.Series, group_column: str) -> pd.Series:
    """One label per grouping unit; a patient with two labels cannot be stratified."""
    per_unit = labels.groupby(cohort[group_column].values).agg(lambda s: sorted(set(s)))
    mixed = per_unit[per_unit.map(len) > 1]
    if len(mixed):
        example = mixed.index[0]
        raise InputError(
            None,
            f"{len(mixed)} patients carry more than one label (e.g. {example}: {mixed.iloc[0]}); "
            "a patient-level split needs one label per patient",
        )
    return per_unit.map(lambda s: s[0])


def _one_fold(units: pd.Series, n_splits: int, seed: int) -> pd.Index:
    """The first fold of a stratified split of the units: about 1/n_splits of them."""
    n_splits = min(max(2, n_splits), len(units))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, held_out = next(splitter.split(units.index, units.values, units.index))
    return units.index[held_out]


def fold_counts(table: pd.DataFrame) -> dict:
    """Patients and items per class in each fold and in the test partition."""
    counts = {}
    for name, part in _partitions_for_counts(table):
        counts[name] = {
            str(label): {"patients": int(g["patient_id"].nunique()), "items": int(len(g))}
            for label, g in part.groupby("label")
        }
    return counts


def _partitions_for_counts(table: pd.DataFrame):
    for k in sorted(table.loc[table["partition"] == "cv", "fold"].unique()):
        yield f"fold{k}", table[(table["partition"] == "cv") & (table["fold"] == k)]
    test = table[table["partition"] == "test"]
    if len(test):
        yield "test", test


# --- the leak check ----------------------------------------------------------


def assert_disjoint(partitions: Mapping[str, pd.DataFrame | Iterable[str]], column: str = "patient_id") -> None:
    """Raise PatientLeakError when any patient appears in two of the named partitions.

    Each value is a table with `column` or an iterable of patient ids. Use it on any
    pair of tables: train vs validation, cohort vs an external test set, a model's
    training table vs the data `predict` is given.
    """
    seen: dict[str, str] = {}
    for name, part in partitions.items():
        ids = part[column] if isinstance(part, pd.DataFrame) else part
        for patient in set(map(str, ids)):
            if patient in seen and seen[patient] != name:
                clash = _clash(partitions, column)
                raise PatientLeakError(clash)
            seen[patient] = name


def _clash(partitions, column) -> str:
    sets = {
        name: set(map(str, part[column] if isinstance(part, pd.DataFrame) else part))
        for name, part in partitions.items()
    }
    names = list(sets)
    parts = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = sorted(sets[a] & sets[b])
            if shared:
                parts.append(f"{len(shared)} in both {a!r} and {b!r} (e.g. {', '.join(shared[:3])})")
    return "patient leak: " + "; ".join(parts)


def fold_partitions(table: pd.DataFrame, fold: int) -> dict[str, pd.DataFrame]:
    """The train / validation / test tables of one fold."""
    cv = table[table["partition"] == "cv"]
    return {
        "train": cv[cv["fold"] != fold],
        "validation": cv[cv["fold"] == fold],
        "test": table[table["partition"] == "test"],
    }


def check_splits(table: pd.DataFrame, allow_leaky: bool = False) -> None:
    """Assert that, in every fold, train, validation and test share no patient."""
    missing = [c for c in SPLIT_COLUMNS if c not in table]
    if missing:
        raise InputError(None, f"split table lacks column(s) {', '.join(missing)}")
    if _is_leaky(table) and allow_leaky:
        return
    for k in sorted(table.loc[table["partition"] == "cv", "fold"].unique()):
        try:
            assert_disjoint(fold_partitions(table, int(k)))
        except PatientLeakError as exc:
            stamp = " (this split is stamped leaky: --leaky-slice-level)" if _is_leaky(table) else ""
            raise PatientLeakError(f"fold {k}: {exc}{stamp}") from None


def _is_leaky(table: pd.DataFrame) -> bool:
    return bool(table["leaky"].astype(str).str.lower().isin(["true", "1"]).any())


# --- files -------------------------------------------------------------------


def make_all(cohort: pd.DataFrame, statement: str) -> tuple[pd.DataFrame, dict]:
    """Every item in one training part (mode "all": the final model after a cross-validation); nothing held out."""
    table = pd.DataFrame(
        {"item_id": cohort["item_id"], "patient_id": cohort["patient_id"], "label": cohort["label"].astype(str)}
    )
    table["partition"], table["fold"], table["leaky"] = "cv", 0, False
    check_splits(table)
    meta = {"folds": 1, "mode": "all", "leaky": False, "statement": statement, "counts": fold_counts(table),
            "notes": [], "test_fraction": None, "seed": None}  # fmt: skip
    return table, meta


def save(out_dir: Path, table: pd.DataFrame, meta: dict, overwrite: bool = False) -> Path:
    """Write splits.csv, split.json and summary.txt into a new folder, atomically."""
    with atomic.atomic_dir(out_dir, overwrite=overwrite) as tmp:
        atomic.write_csv(tmp / SPLITS, table)
        atomic.write_json(tmp / SPLIT_META, meta)
        atomic.write_text(tmp / "summary.txt", format_split(meta) + "\n")
    return Path(out_dir)


def load(path: str | Path, allow_leaky: bool = False) -> tuple[pd.DataFrame, dict]:
    """Read a split folder (or splits.csv) and run the leak check on it."""
    path = Path(path)
    csv = path / SPLITS if path.is_dir() else path
    if not csv.is_file():
        raise InputError(path, "no split table here; expected a folder written by `glioscope split`")
    table = csvfiles.read(csv)
    meta_path = csv.with_name(SPLIT_META)
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    table["fold"] = table["fold"].astype(int)
    table["leaky"] = table["leaky"].astype(str).str.lower().isin(["true", "1"])
    check_splits(table, allow_leaky=allow_leaky)
    return table, meta


def format_split(meta: dict) -> str:
    """Per-fold class counts as text, with the leak statement first."""
    lines = [meta["statement"], f"{meta['folds']} folds, test fraction {meta['test_fraction']}, seed {meta['seed']}"]
    classes = sorted({c for part in meta["counts"].values() for c in part})
    width = max([len(c) for c in classes] + [9])
    lines.append("partition  " + "  ".join(f"{c:>{width}}" for c in classes) + "   (patients / items)")
    for name, part in meta["counts"].items():
        cells = []
        for c in classes:
            n = part.get(c, {"patients": 0, "items": 0})
            cells.append(f"{n['patients']}/{n['items']}".rjust(width))
        lines.append(f"{name:<9}  " + "  ".join(cells))
    lines.extend(f"Note: {n}" for n in meta.get("notes", []))
    return "\n".join(lines)


def fold_assignment(run_dir: Path) -> pd.Series:
    """patient -> its (partition, fold) pairs as one sortable string, from a run folder's splits.csv.

    Two runs share their folds when these agree (glioscope compare and fuse check it).
    """
    path = run_dir / SPLITS
    if not path.is_file():
        raise InputError(path, "not found: cannot check that the runs share their folds")
    splits = csvfiles.read(path)
    missing = {"patient_id", "partition", "fold"} - set(splits.columns)
    if missing:
        raise InputError(path, f"expected columns patient_id, partition, fold; missing {', '.join(sorted(missing))}")
    pairs = splits["partition"].astype(str) + ":" + splits["fold"].astype(int).astype(str)
    return pairs.groupby(splits["patient_id"]).agg(lambda s: ",".join(sorted(set(s))))


def check_same_folds(run_dirs: Sequence[str | Path], partial: bool = False) -> int:
    """Raise GlioscopeError naming two runs whose splits.csv put a shared patient in other folds (compare, fuse).

    With `partial`, a patient may be missing from some runs (a run on one MRI sequence lacks
    the patients without it), as long as each run shares with the first at least half of
    the smaller one's patients; returns how many patients are in only some of the runs. Without it,
    every run must have the same patients.
    """
    run_dirs = [Path(r) for r in run_dirs]
    table = pd.DataFrame({k: fold_assignment(d) for k, d in enumerate(run_dirs)})  # patients x runs, NaN: absent
    differ = table[table.nunique(axis=1) > 1]
    if len(differ):
        patient = differ.index[0]
        values = differ.loc[patient].dropna()
        a, b = values.index[0], values.index[values != values.iloc[0]][0]
        raise GlioscopeError(
            f"runs {run_dirs[a]} and {run_dirs[b]} differ: {len(differ)} patients sit in other folds "
            f"(e.g. patient {patient}: {table.loc[patient, a]} vs {table.loc[patient, b]}); "
            "use runs trained on the same splits.csv"
        )
    for k in table.columns[1:]:
        only = table.index[table[0].notna() != table[k].notna()]
        if len(only) and not partial:
            raise GlioscopeError(
                f"runs {run_dirs[0]} and {run_dirs[k]} differ: {len(only)} patients are in only one of them "
                f"(e.g. {only[0]}); compare runs trained on the same splits.csv"
            )
        shared = int((table[0].notna() & table[k].notna()).sum())
        smaller = int(min(table[0].notna().sum(), table[k].notna().sum()))
        if shared < smaller / 2:
            raise GlioscopeError(
                f"runs {run_dirs[0]} and {run_dirs[k]} share only {shared} of {smaller} patients; "
                "use runs of the same cohort trained on the same splits.csv"
            )
    return int(table.isna().any(axis=1).sum())
