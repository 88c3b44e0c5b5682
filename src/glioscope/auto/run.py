"""`glioscope auto`: fingerprint, plan, trials, the candidates on one set of folds, the nested choice, a package.

    OUT/fingerprint.json   the cohort's fingerprint (glioscope.auto.fingerprint)
    OUT/plan.yaml          the plan, with each candidate's measured trial and estimate, and what was dropped
    OUT/auto.log           one line per stage
    OUT/folds/, OUT/inner/ the outer folds and each outer fold's inner folds (glioscope.auto.folds)
    OUT/candidates/<name>/ each candidate's runs (glioscope.auto.execute)
    OUT/leaderboard.csv    every candidate and the procedure on the same folds: patient AUC [95% CI], calibration, time
    OUT/choices.csv        what each outer fold chose, on inner predictions only (glioscope.auto.select)
    OUT/predictions_patients.csv   the procedure's out-of-fold patient predictions (the figure's)
    OUT/summary.json, OUT/report.html
    OUT/model/             the final model as a package (glioscope export): predict, test and serve take it

A folder is continued with --resume (after a kill, or after --plan-only): the same cohort, the plan
it holds (or the edited plan given), finished trainings reused; a candidate whose settings changed in
the plan starts again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from glioscope import cohort as cohort_table
from glioscope.auto import fingerprint as fp
from glioscope.auto import folds as auto_folds
from glioscope.auto.execute import Clock, Layout, Runner, signature
from glioscope.auto.plan import Plan, dump, propose, read_plan, write_plan
from glioscope.auto.select import choose
from glioscope.errors import InputError
from glioscope.rundir import RunFolder
from glioscope.util import atomic
from glioscope.util.stagelog import StageLog


def _logger(layout: Layout):
    written = StageLog(layout.log)

    def log(line: str) -> None:
        print(f"auto: {line}", flush=True)
        written(line)

    return log


def _start(layout: Layout, resume: bool) -> None:
    root = layout.root
    if root.exists() and any(root.iterdir()):
        if not resume:
            raise InputError(root, "already exists; pass --resume to continue it (after a kill or --plan-only)")
        if not layout.fingerprint.is_file():
            raise InputError(root, "is not a glioscope auto folder (no fingerprint.json) and cannot be continued")
    root.mkdir(parents=True, exist_ok=True)


DEFAULTS = {"task": "label", "dims": None, "folds": 3, "inner_folds": 3, "seed": 0, "device": None}


def _settings(given: Plan | None, options: dict, source) -> dict:
    """The plan's own settings, or the options', or the defaults; an option that contradicts the plan is refused."""
    settings = {}
    for key, default in DEFAULTS.items():
        option, planned = options.get(key), getattr(given, key, None) if given else None
        if given is not None and option is not None and option != planned:
            flag = "--" + key.replace("_", "-")
            raise InputError(source, f"says {key}: {planned}, {flag} {option}: edit the plan, or leave {flag} out")
        settings[key] = option if option is not None else (planned if given is not None else default)
    return settings


def _plan(given: Plan | None, source, settings: dict, found: dict, cohort, budget_s, log) -> Plan:
    """The plan: --plan FILE as edited, else the folder's own (resume), else proposed from the fingerprint."""
    if given is not None:
        plan = given
        log(f"plan read from {source}")
    else:
        device = settings["device"]
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        plan = propose(
            found,
            str(cohort),
            budget_s or 3600,
            device,
            settings["folds"],
            settings["inner_folds"],
            settings["seed"],
            settings["task"],
            settings["dims"],
        )
        log(f"plan proposed: {len(plan.candidates)} candidate(s), choose {plan.choose}")
    plan.cohort = str(cohort)
    if budget_s:
        plan.budget_s = float(budget_s)
    if plan.dims:  # the rows of one dimensionality, for every candidate
        kinds = ", ".join(k for k, d in fp.DIMS.items() if d == plan.dims)
        for candidate in plan.candidates:
            candidate.set = [s for s in candidate.set if not s.startswith("data.select=")]
            candidate.set.append(f"data.select={{kind: [{kinds}]}}")
    return plan.check()


def _changed(plan: Plan, layout: Layout, clock: Clock, log) -> None:
    """Forget a candidate whose settings changed since its runs were made (an edited plan): it starts again."""
    for candidate in plan.candidates:
        before = clock.trials.get(candidate.name, {}).get("signature")
        if before is None or before == signature(candidate):
            continue
        for folder in (layout.cv_run(candidate.name).parent, layout.trial(candidate.name)):
            shutil.rmtree(folder, ignore_errors=True)
        for kept in (clock.pieces, clock.dropped, clock.trials):
            kept.pop(candidate.name, None)
        candidate.trial_s = candidate.estimate_s = None
        log(f"{candidate.name}: its settings changed in the plan; its earlier runs are discarded")
    clock.save()


def auto(
    cohort: Path,
    out: Path,
    *,
    budget_s: float | None = None,
    task: str | None = None,
    device: str | None = None,
    dims: str | None = None,
    folds: int | None = None,
    inner_folds: int | None = None,
    seed: int | None = None,
    plan_only: bool = False,
    plan_file: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    n_boot: int = 1000,
) -> Path:
    """Run `glioscope auto` (see the module docstring); returns OUT. Options left None take the plan's (--plan, or
    the folder's own with `resume`) or the defaults (DEFAULTS)."""
    layout = Layout(out)
    source = plan_file or (layout.plan if resume and layout.plan.is_file() else None)
    given = read_plan(source) if source else None
    options = dict(task=task, dims=dims, folds=folds, inner_folds=inner_folds, seed=seed, device=device)
    settings = _settings(given, options, source)
    task = settings["task"]
    frame = cohort_table.load(cohort)
    frame, notes = fp.labelled(frame, task, settings["dims"], cohort)  # refusals before anything is written
    found = fp.fingerprint(frame, task)
    fp.check_folds(found, settings["folds"], settings["inner_folds"], cohort)
    _start(layout, resume)
    if layout.fingerprint.is_file() and json.loads(layout.fingerprint.read_text()) != json.loads(json.dumps(found)):
        raise InputError(layout.fingerprint, "was made for another cohort (or task): use another output folder")
    atomic.write_json(layout.fingerprint, found)
    log = _logger(layout)
    for note in notes:
        log(f"note: {note}")
    log(
        f"cohort {cohort}: {found['patients']} patients, {found['items']} items, "
        + ", ".join(f"{c} {v['patients']}" for c, v in found["classes"].items())
        + f"; {found['dims']}; masks on "
        f"{found['mask_share']:.0%} of the patients"
        + (f"; sites {', '.join(found['sites'])}" if found["sites"] else "")
    )
    plan = _plan(given, source, settings, found, cohort, budget_s, log)
    labelled = frame.assign(label=frame[task].astype(str))
    table = auto_folds.outer(labelled, plan.folds, plan.seed, layout.folds)
    missing = set(labelled["item_id"]) - set(table["item_id"])
    if missing:
        raise InputError(layout.folds, f"the folds of the folder being continued lack {len(missing)} cohort item(s)")
    clock = Clock(layout, plan.budget_s, log)
    try:
        return _execute(plan, found, layout, table, clock, log, plan_only, progress, n_boot)
    finally:
        clock.save()  # the seconds spent count against the budget after a kill too


def _execute(
    plan: Plan, found: dict, layout: Layout, table, clock: Clock, log, plan_only: bool, progress: bool, n_boot: int
) -> Path:
    """Trials, the candidates that fit, the nested choice, the final model and the results."""
    runner = Runner(plan, layout, table, clock, log, progress)
    _changed(plan, layout, clock, log)
    for name, why in list(clock.dropped.items()):
        if "failed" not in why:  # dropped for time: reconsidered with this call's budget
            clock.dropped.pop(name)
    log(f"budget {plan.budget_s:.0f} s, {clock.spent():.0f} s spent before; trials (each candidate's first fold)")
    kept = runner.fit_budget()
    plan.dropped = [{"name": n, "why": w} for n, w in clock.dropped.items()]
    write_plan(plan, layout.plan)
    if plan_only:
        print(dump(plan))
        log(f"plan written to {layout.plan} ({clock.spent():.0f} s); run it with --plan {layout.plan} --resume")
        return layout.root
    finished = []
    for candidate in kept:
        log(f"{candidate.name}: outer and inner cross-validation (about {runner._rest(candidate):.0f} s)")
        if runner.complete(candidate):
            runner.finish(candidate)
            finished.append(candidate.name)
    plan.dropped = [{"name": n, "why": w} for n, w in clock.dropped.items()]
    write_plan(plan, layout.plan)
    if not finished:
        reasons = "; ".join(f"{d['name']}: {d['why']}" for d in plan.dropped) or "no candidate fits this data"
        raise InputError(layout.root, f"no candidate finished, so there is no model ({reasons})")
    names = list(RunFolder(layout.cv_run(finished[0])).record().class_names)
    log(f"choosing ({plan.choose}) per outer fold on inner out-of-fold predictions among {', '.join(finished)}")
    nested = choose(
        plan.choose,
        finished,
        {c: layout.cv_run(c) for c in finished},
        layout.inner_run,
        table,
        plan.folds,
        plan.inner_folds,
        names,
    )
    from glioscope.auto.report import final_model, write_results

    model = final_model(plan, nested, layout, finished, names, log)
    clock.save()
    write_results(plan, found, nested, finished, names, layout, clock, model, n_boot)
    log(f"finished in {clock.spent():.0f} s of a {plan.budget_s:.0f} s budget; report {layout.report}")
    return layout.root
