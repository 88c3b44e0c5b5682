"""The input runs of a late fusion (glioscope.evaluate.fusion): their headline models' patient predictions, stacked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from glioscope.errors import GlioscopeError, InputError
from glioscope.evaluate.aggregate import prob_columns, to_patients
from glioscope.evaluate.combiners import Stack
from glioscope.rundir import INFO, PREDICTIONS, SPLITS, RunFolder
from glioscope.util import csvfiles


@dataclass
class FusionInput:
    """One input run: its folder, name, headline model and patient-level predictions."""

    run_dir: Path
    name: str
    info: dict
    model: str
    patients: pd.DataFrame  # fold, patient_id, target, prob_* (held-out folds and "test")
    validation: pd.DataFrame | None  # fold, patient_id, target, prob_* (inner validation), None without the file


def headline_model(run_dir: Path, info: dict, available: set[str]) -> str:
    """The last model run.json lists that has predictions (the run's headline: "eff", "sdl/mean", ...)."""
    listed = [m for m in info.get("models", []) if m in available]
    if listed:
        return listed[-1]
    if len(available) == 1:
        return next(iter(available))
    raise InputError(
        RunFolder(run_dir) / INFO,
        f"cannot tell the headline model: {INFO} lists {info.get('models')}, {PREDICTIONS} has {sorted(available)}",
    )


def load_input(run_dir: Path, name: str, class_names: list[str]) -> FusionInput:
    folder = RunFolder(run_dir)
    info = folder.info()
    images = folder.predictions(class_names)
    model = headline_model(run_dir, info, set(images["model"]))
    patients = to_patients(images[images["model"] == model], by=("fold",))
    validation = folder.validation_predictions(class_names)
    if validation is not None:
        validation = validation[validation["model"] == model]
        validation = to_patients(validation, by=("fold",)) if len(validation) else None
    keep = ["fold", "patient_id", "target", *[f"prob_{c}" for c in class_names]]
    return FusionInput(run_dir, name, info, model, patients[keep], None if validation is None else validation[keep])


def run_names(run_dirs: Sequence[Path]) -> list[str]:
    """A short name per run: its folder name, with its position added where two would clash."""
    names = [d.name or str(d) for d in run_dirs]
    return [f"{n}#{k + 1}" if names.count(n) > 1 else n for k, n in enumerate(names)]


def shared_class_names(run_dirs: Sequence[Path]) -> list[str]:
    """The inputs' classes (run.json class_names, else predictions.csv); they must agree, in order."""
    found = []
    for run_dir in run_dirs:
        folder = RunFolder(run_dir)
        names = folder.info().get("class_names") or [c[len("prob_") :] for c in prob_columns(folder.predictions())]
        found.append([str(c) for c in names])
    for run_dir, names in zip(run_dirs[1:], found[1:]):
        if names != found[0]:
            raise GlioscopeError(
                f"runs {run_dirs[0]} and {run_dir} have different classes: {found[0]} vs {names}; "
                "only runs of the same task can be fused"
            )
    return found[0]


def stack_patients(
    inputs: Sequence[FusionInput], attribute: str, folds: Sequence[str], class_names: list[str]
) -> Stack:
    """The patients of `folds` (in any input's `attribute` table) with each input's probabilities."""
    probs_cols = [f"prob_{c}" for c in class_names]
    tables = []
    for k, item in enumerate(inputs):
        table = getattr(item, attribute)
        if table is None:
            continue
        rows = table[table["fold"].isin(list(folds))]
        tables.append(rows.assign(_run=k))
    rows = (
        pd.concat(tables, ignore_index=True)
        if tables
        else pd.DataFrame(columns=["patient_id", "target", "_run", *probs_cols])
    )
    if len(folds) > 1:  # pooled folds: a patient validated in two folds counts once per run (mean of its predictions)
        rows = (
            rows.groupby(["_run", "patient_id"], sort=False)
            .agg({"target": "first", **{c: "mean" for c in probs_cols}})
            .reset_index()
        )
    duplicated = rows.duplicated(["_run", "patient_id"])
    if duplicated.any():
        raise GlioscopeError(f"patient {rows.loc[duplicated, 'patient_id'].iloc[0]} appears twice in one run's fold")
    targets = rows.groupby("patient_id")["target"].nunique()
    if (targets > 1).any():
        patient = targets[targets > 1].index[0]
        raise GlioscopeError(f"patient {patient} has different targets in different runs; the runs disagree on labels")
    patients = sorted(rows["patient_id"].unique())
    index = {p: i for i, p in enumerate(patients)}
    probs = np.full((len(patients), len(inputs), len(class_names)), np.nan)
    target = np.zeros(len(patients), dtype=int)
    where = rows["patient_id"].map(index).to_numpy()
    probs[where, rows["_run"].to_numpy(dtype=int)] = rows[probs_cols].to_numpy(dtype=float)
    target[where] = rows["target"].to_numpy(dtype=int)
    return Stack(patients, target, probs)


def test_patients(run_dirs: Sequence[Path]) -> set[str]:
    ids = set()
    for run_dir in run_dirs:
        splits = csvfiles.read(run_dir / SPLITS)
        ids |= set(splits.loc[splits["partition"] == "test", "patient_id"])
    return ids


def union_csv(paths: Sequence[Path], key: str = "item_id") -> pd.DataFrame | None:
    frames = [csvfiles.read(p) for p in paths if p.is_file()]
    if not frames:
        return None
    table = pd.concat(frames, ignore_index=True)
    return table.drop_duplicates(key) if key in table.columns else table.drop_duplicates()
