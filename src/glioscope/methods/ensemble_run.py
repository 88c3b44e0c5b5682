"""Run an ensemble recipe: its members on ONE set of patient-level folds, then one combiner per outer fold.

1. The members are resolved before anything is written (an unknown recipe, a bad `set`, two members of
   one name, or a logistic combiner over a member that writes no out-of-fold predictions is refused).
2. The folds are made once (the recipe's cv settings) or read by patient from --splits, and written into
   the run folder, whose splits.csv every member then takes as its --splits: every member trains on the
   same patients of each fold. Each member runs by its own method into OUT/members/<name>/; a member folder
   already finished (the same recipe, every fold predicted) is reused, so a stopped run resumes.
3. Per outer fold k, each member's predictions are averaged to one probability per patient (as
   glioscope fuse does). The logistic combiner of fold k is fit ONLY on the members' out-of-fold predictions
   of fold k's training patients (their fold<k>/validation_predictions.csv), after
   glioscope.split.assert_disjoint has checked those patients apart from fold k's held-out (and test)
   patients, and applied to them; `mean` fits nothing. The combiner is kept as plain arrays
   (fold<k>/combiner.npz, glioscope.methods.stacking).
4. fold<k>/predictions.csv holds every member's patient predictions as its own model and the ensemble's
   (the recipe's name) last; run.json "models" lists them so, and metrics.json and report.html show every
   member beside the ensemble on the same folds.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from glioscope import cohort, plan, split
from glioscope.errors import InputError
from glioscope.evaluate.aggregate import to_patients
from glioscope.evaluate.combiners import LOGISTIC_C
from glioscope.evaluate.fusion_inputs import headline_model
from glioscope.methods.base import SCHEMAS_ONLY, Method
from glioscope.methods.stacking import fit_combiner, stack
from glioscope.radiomics.run import patient_splits
from glioscope.rundir import COHORT, COMBINER, CONFIG, FINGERPRINTS, INFO, MEMBERS, PREDICTIONS, RUN_LOG, VALIDATION
from glioscope.rundir import RunFolder, RunRecord
from glioscope.rundir.tables import read_table
from glioscope.util.schema import SettingError
from glioscope.util.stagelog import StageLog


@dataclass
class Member:
    """One member: its name (its folder under members/ and its model in the predictions), method and recipe."""

    name: str
    method: Method
    recipe: object
    seed: int | None = None


def find_recipe(name: str, kinds: dict[str, Method]) -> tuple[Method, Path]:
    """The method and file of a member's recipe, among the kinds of method other than an ensemble."""
    for method in kinds.values():
        path = method.recipes.find(name)
        if path is not None and method.recipes.owns(path):
            if method.kind == "ensemble":
                raise InputError(name, "is an ensemble recipe: an ensemble's members are recipes of another kind")
            return method, path
    shipped = sorted({n for m in kinds.values() if m.kind != "ensemble" for n in m.recipes.names()} - set(SCHEMAS_ONLY))
    raise InputError(None, f"members: no such recipe {name!r}; give a YAML file or one of: {', '.join(shipped)}")


def resolve_members(recipe, kinds: dict[str, Method]) -> list[Member]:
    """The members of an ensemble recipe, each resolved and checked (see the module docstring)."""
    found: list[Member] = []
    for spec in recipe.members:
        method, path = find_recipe(spec.recipe, kinds)
        for seed in spec.seeds or (None,):
            overrides = list(spec.set)
            if seed is not None:
                if method.seed_setting is None:
                    raise SettingError("members.seeds", f"{spec.recipe}: a {method.kind} recipe has no seed setting")
                overrides.append(f"{method.seed_setting}={seed}")
            try:
                loaded = method.recipes.load(path, overrides, quick=spec.quick or recipe.quick)
            except InputError as exc:
                raise InputError(None, f"members: {spec.recipe}: {exc}") from None
            name = spec.name or loaded.name
            found.append(Member(f"{name}@seed{seed}" if seed is not None else name, method, loaded, seed))
    if len(found) < 2:
        raise SettingError("members", f"got {len(found)} member(s), expected at least two recipes to combine")
    names = [m.name for m in found]
    for name in names:
        if names.count(name) > 1 or name == recipe.name:
            clash = "the ensemble's own name" if name == recipe.name else "another member's"
            raise SettingError("members", f"two models would be named {name!r} ({clash}); give the member a `name`")
        if not name.strip() or Path(name).name != name or name in (".", ".."):
            raise SettingError("members", f"member name {name!r} is not a folder name")
    if recipe.combiner == "logistic":
        for member in found:
            setting = member.method.validation_missing(member.recipe)
            if setting:
                raise SettingError(
                    "members",
                    f"member {member.name} writes no out-of-fold predictions of its training patients, which the "
                    f"logistic combiner is fit on: set `{setting}` on it (set: [{setting.replace(': ', '=')}]), "
                    "or use combiner: mean",
                )
    return found


def _finished(folder: RunFolder, member: Member, jobs: list[plan.Job]) -> bool:
    """Whether a member folder holds a finished run of the member's recipe on every job's fold."""
    if not ((folder / INFO).is_file() and (folder / CONFIG).is_file()):
        return False
    return folder.holds(member.recipe) and all(folder.fold_finished(job.name) for job in jobs)


def fold_patients(path: Path, names: list[str], model: str) -> pd.DataFrame | None:
    """A member fold's predictions of its headline model, one row per patient (fold, patient_id, target, prob_*)."""
    if not path.is_file():
        return None
    table = read_table(path, names)
    if table is None:
        return None
    table = table[table["model"] == model]
    if table.empty:
        return None
    return to_patients(table, by=("fold",))[["fold", "patient_id", "target", *(f"prob_{c}" for c in names)]]


def _combine(recipe, members: list[Member], folder: RunFolder, job: plan.Job, names: list[str], test: set[str]):
    """Fold `job`'s predictions table (every member's, then the ensemble's) and its combiner, with what it did."""
    held, fit_tables = [], []
    for member in members:
        run = RunFolder(folder / MEMBERS / member.name)
        model = headline_model(run.path, run.info(), _models(run / job.name / PREDICTIONS))
        held.append(fold_patients(run / job.name / PREDICTIONS, names, model))
        if held[-1] is None:
            raise InputError(run / job.name / PREDICTIONS, f"member {member.name} has no predictions of {job.name}")
        fit_tables.append(fold_patients(run / job.name / VALIDATION, names, model))
        if recipe.combiner == "logistic" and fit_tables[-1] is None:
            raise InputError(
                run / job.name / VALIDATION,
                f"not found: member {member.name} has no out-of-fold predictions of {job.name}'s training patients "
                "for the logistic combiner to be fit on",
            )
    evaluated = pd.concat(held, ignore_index=True).drop_duplicates("patient_id")
    target = stack([h.drop(columns="fold") for h in held], names)
    fit = None
    if recipe.combiner == "logistic":
        fit = stack([t.drop(columns="fold") for t in fit_tables], names)
        held_out = sorted(set(evaluated.loc[evaluated["fold"] != "test", "patient_id"]))
        split.assert_disjoint(
            {
                f"{job.name}: training patients the combiner is fit on (members' out-of-fold predictions)": fit.patients,
                f"{job.name}: its held-out patients": held_out,
                "the test partition": sorted(test),
            }
        )
        lacking = sorted(set(range(len(names))) - set(fit.targets.tolist()))
        if len(names) - len(lacking) < 2:
            raise InputError(None, f"{job.name}: the combiner's patients have a single class: it cannot be fit")
    combiner, proba = fit_combiner(recipe.combiner, [m.name for m in members], fit, target, len(names))
    fold_of = evaluated.set_index("patient_id")["fold"]
    ensemble = pd.DataFrame({"fold": fold_of.loc[target.patients].to_numpy(), "patient_id": target.patients})
    ensemble["target"] = target.targets
    for k, name in enumerate(names):
        ensemble[f"prob_{name}"] = proba[:, k]
    frames = [h.assign(model=m.name) for h, m in zip(held, members)] + [ensemble.assign(model=recipe.name)]
    table = pd.concat(frames, ignore_index=True)
    table.insert(2, "slice_id", table["patient_id"])
    table.insert(3, "item_id", table["patient_id"])
    columns = ["fold", "model", "slice_id", "item_id", "patient_id", "target", *(f"prob_{c}" for c in names)]
    summary = {"patients_predicted": len(target.patients), "fewer_than_all_members": int(target.missing.any(1).sum())}
    if fit is not None:
        summary.update(
            fit_on=f"the members' out-of-fold predictions of {job.name}'s training patients ({VALIDATION})",
            patients_fit=len(fit.patients),
            fit_patients_imputed=int(fit.missing.any(axis=1).sum()),
            coef=combiner.coef.tolist(),
            intercept=combiner.intercept.tolist(),
        )
    return table[columns], combiner, summary


def _models(path: Path) -> set[str]:
    return set(pd.read_csv(path, usecols=["model"], dtype=str)["model"]) if path.is_file() else set()


def run_ensemble(
    recipe,
    kinds,
    cohort_path,
    out,
    splits_path=None,
    folds=None,
    resume=False,
    progress=True,
    report=True,
    cache_dir=None,
) -> Path:
    """Run every member on the same folds, fit and apply each fold's combiner, evaluate and report; returns `out`."""
    members = resolve_members(recipe, kinds)  # before any output
    folder = RunFolder(out)
    resumed = folder.check_start(recipe, resume)
    if resumed:
        splits_path = folder.path  # the folds the run started with
    log = StageLog()  # in memory until the inputs are written: a run refused leaves no folder
    log(f"{'resumed' if resumed else 'started'}: recipe {recipe.name}, cohort {cohort_path}, run folder {folder.path}")
    with log.notes():
        return _run(recipe, members, cohort_path, folder, log, splits_path, folds, resume, progress, report, cache_dir)


def _run(recipe, members, cohort_path, folder, log, splits_path, folds, resume, progress, report, cache_dir) -> Path:
    start = time.perf_counter()
    frame, notes = plan.load_cohort(cohort_path, recipe.task, recipe.data)
    names = plan.class_names(recipe.task, frame, notes)
    log(f"cohort read: {len(frame)} row(s), {frame['patient_id'].nunique()} patient(s), classes {', '.join(names)}")
    if splits_path is not None:
        table, meta = patient_splits(Path(splits_path), frame, notes)  # by patient; a leaky split is refused
    elif recipe.cv.leaky_slice_level:
        raise SettingError("cv.leaky_slice_level", "got true: an ensemble's combiner needs patient-level folds")
    else:
        table, meta = plan.make_or_load_splits(recipe.cv, frame, None)
    jobs = plan.plan_jobs(table, meta.get("mode") or recipe.cv.mode, None, folds)  # before any output: it can refuse
    folder.write_inputs(recipe, frame, table, meta)  # the folds every member takes; config.yaml: a stop resumes
    log.to(folder / RUN_LOG)
    record = []
    for member in members:
        where = RunFolder(folder / MEMBERS / member.name)
        reused = _finished(where, member, jobs)
        print(f"note: member {member.name}: " + ("finished before, reused" if reused else "running"))
        if not reused:
            log(f"member {member.name} started")
            member.method.run(
                member.recipe,
                cohort_path,
                where.path,
                splits=folder.path,
                folds=folds,
                resume=resume,
                progress=progress,
                report=False,
                cache_dir=cache_dir,
            )
        log(f"member {member.name} {'reused' if reused else 'finished'}")
        got = where.record()
        if list(got.class_names) != names:
            raise InputError(where / INFO, f"member {member.name} predicts {got.class_names}, the ensemble {names}")
        record.append(
            {
                "name": member.name,
                "kind": member.method.kind,
                "recipe": member.recipe.name,
                "seed": member.seed,
                "folder": f"{MEMBERS}/{member.name}",
                "reused": reused,
                "patients": got.samples.get("count"),
            }
        )
    test = set(table.loc[table["partition"] == "test", "patient_id"])
    summaries = {}
    for k, job in enumerate(jobs):
        with log.timed(f"{job.name} ({k + 1} of {len(jobs)}): combiner"):
            predictions, combiner, summaries[job.name] = _combine(recipe, members, folder, job, names, test)
            folder.write_fold_predictions(job.name, predictions)
            combiner.save(folder.fold(job.name) / COMBINER)
    printed = next((m.name for m in members if (folder / MEMBERS / m.name / FINGERPRINTS).is_file()), None)
    if printed is not None:  # what predict and test compare new images with: this member's inputs
        shutil.copyfile(folder / MEMBERS / printed / FINGERPRINTS, folder / FINGERPRINTS)
    notes = (
        [_what(recipe, members)]
        + notes
        + [
            f"{s}: {v['patients_fit']} patients fit the combiner, {v['patients_predicted']} predicted"
            for s, v in summaries.items()
            if "patients_fit" in v
        ]
    )
    folder.write_record(
        RunRecord.of_recipe(
            recipe,
            names,
            [m.name for m in members] + [recipe.name],
            table,
            meta,
            notes=notes,
            patient_ids=cohort.has_patient_ids(cohort_path),
            cohort=str(folder / COHORT),
            samples={"kind": "patients", "count": int(frame["patient_id"].nunique())},
            ensemble={
                "combiner": recipe.combiner,
                "logistic_C": LOGISTIC_C if recipe.combiner == "logistic" else None,
                "members": record,
                "fingerprints": printed,
                "folds": summaries,
            },
        )
    )
    folder.merge_predictions([job.name for job in jobs])
    if report:
        from glioscope.workflows import finish  # evaluation and the report, composed there

        with log.timed("evaluation and report"):
            finish(folder.path, n_boot=recipe.evaluate.bootstrap)
        log("report written")
    print(f"ensemble run finished in {time.perf_counter() - start:.1f} s")
    log(f"finished in {time.perf_counter() - start:.1f} s")
    return folder.path


def _what(recipe, members: list[Member]) -> str:
    listing = ", ".join(f"{m.name} ({m.method.kind} recipe {m.recipe.name})" for m in members)
    how = (
        f"a logistic regression (L2, C={LOGISTIC_C}) on each member's patient logit and a missing-input indicator, "
        "fit per outer fold ONLY on the members' out-of-fold predictions of that fold's training patients (checked "
        "disjoint from its held-out patients) and applied to its held-out patients"
        if recipe.combiner == "logistic"
        else "the mean of the members' patient probabilities (nothing fitted)"
    )
    return (
        f"Ensemble of {len(members)} members on the same folds: {listing}; each member's predictions averaged to one "
        f"probability per patient, combined by {how}. Each member's own run folder: {MEMBERS}/<name>."
    )
