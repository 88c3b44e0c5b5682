"""Run a plan's candidates on the auto folds within the budget: trials first, then every piece, resumable.

A candidate's work is pieces: its outer folds ("cv", k) and, for every outer fold k, the inner folds
("inner<k>", j) of fold k's training patients, one training each for a deep recipe (each resumable), one
whole cross-validation of a part (fold -1) for radiomics and frozen features, which rerun a whole run in
seconds and keep no finished fold. Its trial times one training: for a deep
recipe, its first outer fold trained for TRIAL_EPOCHS epochs (OUT/trials/<name>, not reused), whose
per-epoch seconds (its fold0 history) extrapolate to the recipe's epochs; for the others (radiomics,
frozen features: seconds), its first piece itself, kept. Every piece runs through the candidate's own
method (`method.run(..., folds=[j] or None, resume=True)`) into its own run folder:

    OUT/candidates/<name>/cv/             the candidate's cross-validation on the outer folds
    OUT/candidates/<name>/inner/fold<k>/  its cross-validation on outer fold k's inner folds

The budget counts all of it, trials included, across a kill and a resume (OUT/state.json keeps the
seconds spent and each finished piece's time). Before a piece starts, the time it is expected to take
(the mean of the candidate's measured pieces, scaled by its training share) must fit in what is left;
else the candidate is dropped, with the reason, and what it ran is kept but not used. So the run ends
at most one piece past the budget. A candidate whose trial fails (a recipe that does not fit the data)
is dropped with the error, and the next one runs.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from glioscope.auto import folds as auto_folds
from glioscope.auto.plan import Candidate, Plan
from glioscope.errors import GlioscopeError
from glioscope.rundir import HISTORY, REPORT
from glioscope.util import atomic

STATE = "state.json"
TRIAL_EPOCHS = 2
# What a candidate's training may raise that drops the candidate rather than the whole run (a recipe that does
# not fit the data); anything else is a fault of glioscope and stops it.
FAILURES = (GlioscopeError, RuntimeError, ValueError, KeyError, TypeError)


@dataclass
class Layout:
    """The files and folders of an auto output folder."""

    root: Path

    def __post_init__(self):
        self.root = Path(self.root)

    fingerprint = property(lambda self: self.root / "fingerprint.json")
    plan = property(lambda self: self.root / "plan.yaml")
    log = property(lambda self: self.root / "auto.log")
    state = property(lambda self: self.root / STATE)
    folds = property(lambda self: self.root / "folds")
    model = property(lambda self: self.root / "model")
    report = property(lambda self: self.root / REPORT)

    def trial(self, name: str) -> Path:
        return self.root / "trials" / name

    def inner(self, k: int) -> Path:
        return self.root / "inner" / f"fold{k}"

    def cv_run(self, name: str) -> Path:
        return self.root / "candidates" / name / "cv"

    def inner_run(self, name: str, k: int) -> Path:
        return self.root / "candidates" / name / "inner" / f"fold{k}"


class Clock:
    """Seconds spent on this output folder, across resumes, and the budget's deadline."""

    def __init__(self, layout: Layout, budget_s: float, log):
        self.layout, self.budget_s, self.log = layout, float(budget_s), log
        state = _read(layout.state)
        self.before = float(state.get("spent_s", 0.0))
        self.pieces: dict[str, dict[str, float]] = state.get("pieces", {})
        self.dropped: dict[str, str] = state.get("dropped", {})
        self.trials: dict[str, dict] = state.get("trials", {})
        self.started = time.perf_counter()

    def spent(self) -> float:
        return self.before + time.perf_counter() - self.started

    def left(self) -> float:
        return self.budget_s - self.spent()

    def save(self) -> None:
        atomic.write_json(
            self.layout.state,
            {
                "spent_s": round(self.spent(), 1),
                "pieces": self.pieces,
                "dropped": self.dropped,
                "trials": self.trials,
            },
        )

    def drop(self, name: str, why: str) -> None:
        self.dropped[name] = why
        self.log(f"dropped {name}: {why}")
        self.save()


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def signature(candidate: Candidate) -> list:
    """What a candidate's runs depend on: its recipe, quick and overrides."""
    return [candidate.recipe, bool(candidate.quick), list(candidate.set)]


def pieces(plan: Plan, per_fold: bool = True) -> list[tuple[str, int]]:
    """(part, fold) of every training of a candidate, the trial's first; fold -1: every fold of the part in one
    call (`per_fold` False: a method that reruns a whole run in seconds, radiomics and frozen features)."""
    if not per_fold:
        return [("cv", -1)] + [(f"inner{k}", -1) for k in range(plan.folds)]
    outer = [("cv", k) for k in range(plan.folds)]
    return outer + [(f"inner{k}", j) for k in range(plan.folds) for j in range(plan.inner_folds)]


def share(plan: Plan, part: str, fold: int = 0) -> float:
    """A piece's training share of the patients, relative to an outer fold's (what its time scales with)."""
    one = 1.0 if part == "cv" else (plan.inner_folds - 1) / plan.inner_folds
    return one if fold >= 0 else one * (plan.folds if part == "cv" else plan.inner_folds)


def estimate(plan: Plan, fold_s: float) -> float:
    """The whole candidate's seconds, from an outer fold's."""
    return fold_s * sum(share(plan, part) for part, _ in pieces(plan))


class Runner:
    """Runs the pieces of a plan's candidates (see the module docstring)."""

    def __init__(self, plan: Plan, layout: Layout, frame_table, clock: Clock, log, progress: bool = True):
        from glioscope.methods import load_recipe

        self.plan, self.layout, self.table, self.clock, self.log = plan, layout, frame_table, clock, log
        self.progress = progress
        self._load = load_recipe
        self._per_fold: dict[str, bool] = {}

    def recipe(self, candidate: Candidate):
        return self._load(candidate.recipe, candidate.set, quick=candidate.quick)

    def pieces(self, candidate: Candidate) -> list[tuple[str, int]]:
        """A deep candidate's trainings one fold at a time (each resumable); the others' a run at a time."""
        if candidate.name not in self._per_fold:
            self._per_fold[candidate.name] = self.recipe(candidate)[0].kind == "deep"
        return pieces(self.plan, self._per_fold[candidate.name])

    def _where(self, candidate: Candidate, part: str) -> tuple[Path, Path]:
        """(run folder, split folder) of a candidate's part."""
        if part == "cv":
            return self.layout.cv_run(candidate.name), self.layout.folds
        k = int(part[len("inner") :])
        inner = self.layout.inner(k)
        auto_folds.inner(self.table, k, self.plan.inner_folds, self.plan.seed, inner)
        return self.layout.inner_run(candidate.name, k), inner

    def run_piece(self, candidate: Candidate, part: str, fold: int) -> float:
        """One training of a candidate (skipped when state.json says it finished); its seconds."""
        key = f"{part}/{fold}"
        done = self.clock.pieces.get(candidate.name, {})
        if key in done:
            return done[key]
        method, recipe = self.recipe(candidate)
        out, splits = self._where(candidate, part)
        start = time.perf_counter()
        method.run(
            recipe,
            Path(self.plan.cohort),
            out,
            splits=splits,
            folds=None if fold < 0 else [fold],
            resume=True,
            progress=self.progress,
            report=False,
        )
        took = time.perf_counter() - start
        self.clock.pieces.setdefault(candidate.name, {})[key] = round(took, 2)
        self.clock.save()
        what = f"{part} fold {fold}" if fold >= 0 else f"{part}, every fold"
        self.log(f"{candidate.name}: {what} trained in {took:.1f} s ({self.clock.spent():.0f} s spent)")
        return took

    def trial(self, candidate: Candidate) -> bool:
        """Time the candidate (module docstring); False (and the candidate dropped) when it fails or has no time."""
        if candidate.name in self.clock.dropped:
            return False
        if candidate.estimate_s is not None and candidate.name in self.clock.trials:
            return True  # timed before this resume
        if self.clock.left() <= 0:
            self.clock.drop(candidate.name, "no time left in the budget for its trial")
            return False
        try:
            method, recipe = self.recipe(candidate)
            if method.kind == "deep" and recipe.train.epochs > TRIAL_EPOCHS:
                fold_s, candidate.trial_s = self._short_trial(candidate, recipe.train.epochs)
            else:
                part, fold = self.pieces(candidate)[0]
                candidate.trial_s = round(self.run_piece(candidate, part, fold), 1)
                fold_s = candidate.trial_s / share(self.plan, part, fold)
        except FAILURES as exc:
            self._failed(candidate, "its trial", exc)
            return False
        candidate.estimate_s = round(estimate(self.plan, fold_s), 1)
        self.clock.trials[candidate.name] = {
            "trial_s": candidate.trial_s,
            "estimate_s": candidate.estimate_s,
            "signature": signature(candidate),
        }
        self.clock.save()
        return True

    def _short_trial(self, candidate: Candidate, epochs: int) -> tuple[float, float]:
        """(an outer fold's estimated seconds, the trial's seconds): the first fold for TRIAL_EPOCHS epochs."""
        import pandas as pd

        method, recipe = self._load(
            candidate.recipe, [*candidate.set, f"train.epochs={TRIAL_EPOCHS}"], quick=candidate.quick
        )
        out = self.layout.trial(candidate.name)
        start = time.perf_counter()
        method.run(
            recipe,
            Path(self.plan.cohort),
            out,
            splits=self.layout.folds,
            folds=[0],
            resume=True,
            progress=self.progress,
            report=False,
        )
        took = time.perf_counter() - start
        history = pd.read_csv(out / "fold0" / HISTORY)
        per_epoch = float(history["seconds"].mean())
        fold_s = max(took - float(history["seconds"].sum()), 0.0) + epochs * per_epoch
        self.log(
            f"{candidate.name}: trial of {TRIAL_EPOCHS} epochs in {took:.1f} s ({per_epoch:.1f} s per epoch): "
            f"about {fold_s:.0f} s per fold of {epochs} epochs"
        )
        return fold_s, round(took, 1)

    def fit_budget(self) -> list[Candidate]:
        """The candidates, after their trials, whose estimated rest fits the budget (in priority order)."""
        kept, committed = [], 0.0
        for candidate in self.plan.candidates:
            if not self.trial(candidate):
                continue
            rest = self._rest(candidate)
            if committed + rest > self.clock.left():
                self.clock.drop(
                    candidate.name,
                    f"estimated {rest:.0f} s more (trial {candidate.trial_s:.0f} s), "
                    f"{max(self.clock.left() - committed, 0):.0f} s of the budget left for it",
                )
                continue
            committed += rest
            kept.append(candidate)
        return kept

    def _rest(self, candidate: Candidate) -> float:
        done = self.clock.pieces.get(candidate.name, {})
        per = self._per_share(candidate)
        return sum(per * share(self.plan, p, j) for p, j in self.pieces(candidate) if f"{p}/{j}" not in done)

    def _per_share(self, candidate: Candidate) -> float:
        done = self.clock.pieces.get(candidate.name, {})
        measured = [(t, share(self.plan, key.split("/")[0], int(key.split("/")[1]))) for key, t in done.items()]
        if not measured:
            return (candidate.estimate_s or 0.0) / sum(share(self.plan, part) for part, _ in pieces(self.plan))
        return sum(t for t, _ in measured) / sum(s for _, s in measured)

    def complete(self, candidate: Candidate) -> bool:
        """Every piece of a kept candidate, each only if it fits; False (dropped) when the budget runs out."""
        if candidate.name in self.clock.dropped:
            return False
        done = self.clock.pieces.get(candidate.name, {})
        todo = [(p, j) for p, j in self.pieces(candidate) if f"{p}/{j}" not in done]
        for number, (part, fold) in enumerate(todo):
            need = self._per_share(candidate) * share(self.plan, part, fold)
            if need > self.clock.left():
                self.clock.drop(
                    candidate.name,
                    f"out of time: {len(todo) - number} of {len(self.pieces(candidate))} runs left (about "
                    f"{self._rest(candidate):.0f} s), {max(self.clock.left(), 0):.0f} s of the budget left",
                )
                return False
            try:
                self.run_piece(candidate, part, fold)
            except FAILURES as exc:
                self._failed(candidate, f"{part} (fold {fold})", exc)
                return False
        return True

    def _failed(self, candidate: Candidate, what: str, exc: BaseException) -> None:
        """Drop a candidate whose training failed, its traceback in the log file."""
        with open(self.layout.log, "a", encoding="utf-8") as handle:
            handle.write(traceback.format_exc())
        self.clock.drop(candidate.name, f"{what} failed: {type(exc).__name__}: {exc}")

    def finish(self, candidate: Candidate) -> Path:
        """The candidate's outer cross-validation as a whole run: every fold merged, evaluated and reported."""
        method, recipe = self.recipe(candidate)
        return method.run(
            recipe,
            Path(self.plan.cohort),
            self.layout.cv_run(candidate.name),
            splits=self.layout.folds,
            resume=True,
            progress=self.progress,
            report=True,
        )
