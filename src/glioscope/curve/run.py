"""`glioscope curve`: a recipe trained on growing, nested shares of each outer fold's training patients, every share
scored on the same held-out patients of its fold. The answer to "would more patients help?".

    OUT/folds/                      the outer patient-level folds (glioscope.split folder)
    OUT/subsamples.csv              fold, fraction, patient_id, label, role (train | held_out): what each run was given
    OUT/splits/fold<k>-f<fraction>/ that run's split: its subsample trains once, fold k's held-out patients are `test`
    OUT/runs/fold<k>-f<fraction>/   its run folder (the recipe's own method, restricted to those patients)
    OUT/held_out.csv                every run's held-out patient predictions (fold, fraction, patient_id, target, prob_*)
    OUT/curve.csv, curve.json       per fraction: training patients, pooled patient AUC and accuracy with bootstrap
                                    intervals, per-fold mean and SD (curve.json: the settings, runs and the verdict)
    OUT/curve.png, report.html      the curve, and the page that explains it
    OUT/curve.log, state.json       one line per stage; the settings and each finished run (what --resume reuses)

The subsamples (glioscope.curve.folds) are checked nested and disjoint from their fold's held-out patients before
anything trains, again in each run's split table, and again against the patients each run predicted.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from glioscope import cohort as cohort_table
from glioscope import plan, split
from glioscope.curve import folds as curve_folds
from glioscope.curve import report, summary
from glioscope.errors import InputError
from glioscope.evaluate.aggregate import to_patients
from glioscope.evaluate.fusion_inputs import headline_model
from glioscope.rundir import PREDICTIONS, REPORT, SPLITS, RunFolder
from glioscope.util import atomic, csvfiles
from glioscope.util.stagelog import StageLog

STATE, LOG = "state.json", "curve.log"


class Layout:
    """The files and folders of a curve's output folder (module docstring)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.folds, self.state, self.log = self.root / "folds", self.root / STATE, self.root / LOG
        self.subsamples, self.held_out = self.root / "subsamples.csv", self.root / "held_out.csv"
        self.csv, self.json, self.png = self.root / "curve.csv", self.root / "curve.json", self.root / "curve.png"
        self.report = self.root / REPORT

    @staticmethod
    def key(fold: int, fraction: float) -> str:
        return f"fold{fold}-f{fraction:g}"

    def split(self, fold: int, fraction: float) -> Path:
        return self.root / "splits" / self.key(fold, fraction)

    def run(self, fold: int, fraction: float) -> Path:
        return self.root / "runs" / self.key(fold, fraction)


def _logger(layout: Layout, echo: bool):
    written = StageLog(layout.log)

    def log(line: str) -> None:
        written(line)
        if echo:
            print(f"curve: {line}", flush=True)

    return log


def _start(layout: Layout, settings: dict, resume: bool) -> dict:
    """The state of the output folder: new, or (with --resume) a curve of the same settings."""
    if layout.root.exists() and any(layout.root.iterdir()) and not resume:
        raise InputError(layout.root, "already exists; pass --resume to continue its curve, or choose another folder")
    if not layout.state.is_file():
        if layout.root.exists() and any(layout.root.iterdir()):
            raise InputError(layout.root, f"holds files but no {STATE}: not a learning curve's folder")
        layout.root.mkdir(parents=True, exist_ok=True)
        return {"settings": settings, "runs": {}}
    state = json.loads(layout.state.read_text(encoding="utf-8"))
    before = state.get("settings", {})
    changed = [k for k in settings if k != "fractions" and before.get(k) != settings[k]]
    if changed:
        key = changed[0]
        raise InputError(
            layout.state,
            f"the curve being resumed was made with {key} {before.get(key)!r}, not {settings[key]!r}; give the same "
            "recipe, --set, --quick, folds and seed (fractions may change), or another folder",
        )
    state["settings"] = settings
    return state


def _recipe(load_recipe, name: str, overrides: list[str], quick: bool, base_select, patients: list[str]):
    """The recipe restricted to these patients (data.select, on top of the recipe's own selection)."""
    selection = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in dict(base_select).items()}
    selection["patient_id"] = sorted(patients)
    return load_recipe(name, [*overrides, "data.select=" + json.dumps(selection)], quick)


def _held_out_predictions(run_dir: Path, trained: list[str], held_out: list[str], names: list[str]) -> pd.DataFrame:
    """A run's patient predictions of its held-out patients, checked against what it trained on."""
    folder = RunFolder(run_dir)
    info = folder.info()
    if list(info.get("class_names") or []) != names:
        raise InputError(run_dir, f"predicts classes {info.get('class_names')}, the curve {names}")
    images = folder.predictions(names)
    test = images[images["set"] == "test"]
    model = headline_model(run_dir, info, set(test["model"]))
    patients = to_patients(test[test["model"] == model])
    recorded = csvfiles.read(folder / SPLITS)
    ran_on = sorted(set(recorded.loc[recorded["partition"] == "cv", "patient_id"]))
    if not set(ran_on) <= set(trained):
        raise InputError(folder / SPLITS, "trained on patients outside its subsample")
    split.assert_disjoint({"trained on": ran_on, "predicted": patients["patient_id"]})
    stray = sorted(set(patients["patient_id"]) - set(held_out))
    if stray:
        raise InputError(folder / PREDICTIONS, f"predicts patients that are not held out, e.g. {stray[0]}")
    return patients[["patient_id", "target", *[f"prob_{c}" for c in names]]]


def _check_labels(cohort: Path, column: str) -> None:
    rows = cohort_table.load(cohort)
    if column not in rows or not (rows[column].astype(str) != "").any():
        raise InputError(
            cohort,
            f"no patient has a {column!r}: a learning curve scores predictions against labels; join them at ingest "
            "(--labels) or name the labelled column (--set task.label=...)",
        )


def learning_curve(
    recipe_name: str,
    cohort: Path,
    out: Path,
    fractions=(0.25, 0.5, 0.75, 1.0),
    folds: int | None = None,
    splits: Path | None = None,
    seed: int | None = None,
    overrides: list[str] | None = None,
    quick: bool = False,
    resume: bool = False,
    n_boot: int = 1000,
    progress: bool = True,
) -> Path:
    """Train and score every (fold, fraction), write the curve and its report (module docstring); returns OUT."""
    from glioscope.methods import load_recipe

    overrides = list(overrides or [])
    fractions = curve_folds.check_fractions(fractions)
    if folds is not None and splits is not None:
        raise InputError(splits, "--folds and --splits both say how to split: give one of them")
    method, recipe = load_recipe(recipe_name, overrides, quick)  # every setting checked before any output
    if method.kind == "ensemble":
        raise InputError(recipe_name, "is an ensemble, whose members read the whole cohort: run the curve of a member")
    _check_labels(Path(cohort), recipe.task.label)
    frame, notes = plan.load_cohort(Path(cohort), recipe.task, recipe.data)
    labels = curve_folds.patients_of(frame)
    if labels.nunique() < 2:
        raise InputError(cohort, f"its labelled patients are all of one class ({labels.iloc[0]}): no curve to draw")
    folds = folds or recipe.cv.folds
    seed = recipe.cv.seed if seed is None else int(seed)
    settings = {
        "recipe": recipe_name,
        "overrides": overrides,
        "quick": bool(quick),
        "cohort": str(cohort),
        "folds": None if splits else int(folds),
        "splits": str(splits) if splits else None,
        "seed": seed,
        "fractions": fractions,
    }
    layout = Layout(out)
    if splits is not None:
        table, meta = curve_folds.given_folds(Path(splits), frame, notes)
    elif layout.folds.is_dir() and resume:
        table, meta = split.load(layout.folds)
    else:
        table, meta = curve_folds.outer_folds(frame, int(folds), seed)
    labels = labels.loc[sorted(set(table["patient_id"]))]
    made = curve_folds.plan_subsamples(table, labels, fractions, seed)  # refuses before any output
    state = _start(layout, settings, resume)
    log = _logger(layout, progress)
    if not layout.folds.is_dir():
        split.save(layout.folds, table, meta)
    atomic.write_csv(layout.subsamples, curve_folds.roles(made, table, labels))
    for note in notes:
        log(f"note: {note}")
    k_folds = sorted(int(k) for k in table["fold"].unique())
    log(
        f"{recipe.name} on {cohort}: {len(labels)} patients, {len(k_folds)} outer folds (seed {seed}), fractions "
        + ", ".join(f"{f:g}" for f in fractions)
        + (" (resumed)" if state["runs"] else "")
    )
    names = plan.class_names(recipe.task, frame)
    collected, runs = [], []
    total, done = len(made), 0
    for fold in k_folds:
        held_out = curve_folds.held_out_patients(table, fold)
        for fraction in fractions:
            done += 1
            chosen = made[fold, fraction]
            key, run_dir = Layout.key(fold, fraction), layout.run(fold, fraction)
            finished = state["runs"].get(key)
            if finished and not (run_dir / PREDICTIONS).is_file():
                finished = None
            if finished:
                log(f"[{done}/{total}] fold {fold}, fraction {fraction:g}: finished before, reused")
            else:
                log(
                    f"[{done}/{total}] fold {fold}, fraction {fraction:g}: training on {len(chosen)} patients, "
                    f"{len(held_out)} held out"
                )
                split_table, split_meta = curve_folds.subsample_table(frame, chosen, held_out)
                split.save(layout.split(fold, fraction), split_table, split_meta, overwrite=True)
                _, restricted = _recipe(
                    load_recipe, recipe_name, overrides, quick, recipe.data.select, chosen + held_out
                )
                start = time.perf_counter()
                method.run(
                    restricted,
                    Path(cohort),
                    run_dir,
                    splits=layout.split(fold, fraction),
                    resume=run_dir.exists(),
                    progress=progress,
                    report=False,
                )
                finished = {"seconds": round(time.perf_counter() - start, 2), "train_patients": len(chosen)}
                state["runs"][key] = finished
                atomic.write_json(layout.state, state)
            patients = _held_out_predictions(run_dir, chosen, held_out, names)
            collected.append(patients.assign(fold=fold, fraction=fraction))
            runs.append({"fold": fold, "fraction": fraction, **finished, "held_out_patients": len(patients)})
            auc = summary.per_fold(patients.assign(fold=fold), names)[fold]
            log(
                f"[{done}/{total}] fold {fold}, fraction {fraction:g}: held-out AUC {auc:.3f} ({finished['seconds']} s)"
            )
    return _write(
        layout, recipe, names, pd.concat(collected, ignore_index=True), pd.DataFrame(runs), state, log, n_boot
    )


def _write(layout: Layout, recipe, names, predictions, runs, state, log, n_boot) -> Path:
    """curve.csv, curve.json, curve.png, report.html and held_out.csv from every run's held-out predictions."""
    settings, seed = state["settings"], state["settings"]["seed"]
    predictions = predictions[["fold", "fraction", "patient_id", "target", *[f"prob_{c}" for c in names]]]
    atomic.write_csv(layout.held_out, predictions)
    by_fraction = {f: rows.drop(columns="fraction") for f, rows in predictions.groupby("fraction")}
    rows = [
        summary.fraction_row(by_fraction[f], names, f, runs[runs["fraction"] == f], n_boot, seed)
        for f in sorted(by_fraction)
    ]
    curve = pd.DataFrame(rows, columns=summary.COLUMNS)
    found = summary.steps(by_fraction, names, n_boot, seed)
    sentence = summary.verdict(curve, found)
    atomic.write_csv(layout.csv, curve)
    per_fold = [
        {**r, "auc": summary.per_fold(by_fraction[r["fraction"]], names).get(r["fold"])}
        for r in runs.to_dict("records")
    ]
    result = {
        "recipe": recipe.name,
        "settings": settings,
        "class_names": names,
        "n_boot": n_boot,
        "curve": curve.to_dict("records"),
        "runs": per_fold,
        "steps": found,
        "verdict": sentence,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic.write_json(layout.json, report.json_safe(result))
    picture = report.figure(curve, f"{recipe.name} on {Path(settings['cohort']).name}, seed {seed}")
    atomic.write_text(layout.report, report.page(result, curve, picture))
    with atomic.atomic_path(layout.png) as tmp:
        tmp.write_bytes(picture)
    log(sentence)
    log(f"written: {layout.csv.name}, {layout.json.name}, {layout.png.name}, {layout.report.name}")
    return layout.root
