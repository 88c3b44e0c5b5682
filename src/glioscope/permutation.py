"""`glioscope cv RECIPE --permutations N`: is the cross-validated AUC better than chance?

After the run, the recipe is retrained N times on the run's own folds with the labels shuffled
by patient (within site when the cohort tells sites apart; glioscope.evaluate.permutation), each
time into a scratch run folder RUN/permutations/perm<k> that is removed once its statistic is
read. RUN/permutation.json keeps the observed statistic, the null distribution and the p-values,
and is written after every permutation, so that a killed test resumes (`--resume`) where it
stopped; permutations.log has one line per permutation. The run's report shows the null
distribution (glioscope.report.permutation), and `compare` the p-value.

A permuted run is an ordinary run of the same recipe: a radiomics recipe reuses its feature
cache and takes seconds; a deep recipe takes what its cross-validation takes, N times, which is
said before the first permutation starts.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from pathlib import Path

import pandas as pd

from glioscope import cohort as cohorts
from glioscope import sites as site_lookup
from glioscope import split
from glioscope.errors import GlioscopeError, InputError
from glioscope.evaluate.permutation import SMALLEST_USEFUL, labellings, p_value, shuffled, statistics, trainable
from glioscope.plan import load_cohort
from glioscope.rundir import PERMUTATION, PERMUTATION_LOG, PERMUTATIONS, RunFolder
from glioscope.util import atomic

LABEL_COLUMNS = ("label", "grade", "mgmt")  # shuffled together: a patient takes another's labels, all of them


def kept(run_dir: Path) -> dict[str, str]:
    """The test's files of a run about to be resumed: a method may write its run folder anew (radiomics does)."""
    return {name: (Path(run_dir) / name).read_text(encoding="utf-8") for name in (PERMUTATION, PERMUTATION_LOG)
            if (Path(run_dir) / name).is_file()}  # fmt: skip


def restore(run_dir: Path, files: dict[str, str]) -> None:
    """Put back what `kept` read, where the run did not keep it."""
    for name, text in files.items():
        if not (Path(run_dir) / name).is_file():
            atomic.write_text(Path(run_dir) / name, text)


def check_count(n: int) -> None:
    """Refuse a count that cannot work; say when it cannot reach p < 0.05."""
    if n < 1:
        raise GlioscopeError(f"--permutations must be at least 1, got {n}")
    if n < SMALLEST_USEFUL:
        print(
            f"note: with {n} permutations the smallest possible p-value is {1 / (n + 1):.3f}: it cannot fall below "
            f"0.05; give at least {SMALLEST_USEFUL}"
        )


def _strict(values: dict) -> dict:
    """NaN (an AUC a fold cannot have) as None: permutation.json is strict JSON."""
    return {k: None if v is None or math.isnan(v) else v for k, v in values.items()}


def _auc(value) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def run_permutations(
    method, recipe, cohort: Path, run_dir: Path, n: int, site_column: str | None = None, resume: bool = False,
    run_seconds: float | None = None,
) -> dict:  # fmt: skip
    """Retrain `recipe` N times on RUN's folds with shuffled labels; writes and returns RUN/permutation.json's dict.

    `run_seconds`: how long the run itself took here (for the estimate said before the first permutation).
    """
    check_count(n)
    folder = RunFolder(run_dir)
    info = folder.info()
    names = list(info["class_names"])
    model = info["models"][-1]  # the headline model: the last of a run's models
    images = folder.predictions(names)
    observed = _strict(statistics(images, model, names))
    frame, _ = load_cohort(cohort, recipe.task, recipe.data)
    table, meta = split.load(run_dir)
    groups, site_words = _groups(frame, table, site_column, cohort)
    _check_groups(groups, n)
    path = run_dir / PERMUTATION
    record = _record(path, resume, n, recipe, model, observed, site_words)
    scratch = run_dir / PERMUTATIONS
    todo = [k for k in range(1, n + 1) if str(k) not in record["null"]]
    if todo:
        estimate = (
            f"at most about {_duration(run_seconds * len(todo))} ({len(todo)} times the run's {_duration(run_seconds)}; "
            "a permuted run reuses the cached features or images, and each line below updates the estimate)"
            if run_seconds
            else "the time is estimated once the first ends"
        )
        print(
            f"Permutation test: {len(todo)} permutation(s) of {n} to run, each retraining {recipe.name} on the run's "
            f"folds with labels shuffled by patient{' within ' + site_words if site_words else ''}: {estimate}"
        )
    full = cohorts.load(cohort)
    log = run_dir / PERMUTATION_LOG
    for done, k in enumerate(todo, 1):
        start = time.perf_counter()
        donor = _draw(groups, int(recipe.cv.seed), k)
        work = scratch / f"perm{k}"
        if work.exists():
            shutil.rmtree(work)  # a permutation killed half-way: start it again
        _write_inputs(work, full, table, meta, donor, cohort, recipe.task.label)
        with open(log, "a", encoding="utf-8") as stream, contextlib.redirect_stdout(stream):
            print(f"permutation {k}: training {recipe.name} into {work / 'run'}")
            method.run(recipe, work / "cohort", work / "run", splits=work / "splits", progress=False, report=False)
        permuted = RunFolder(work / "run")
        value = _strict(statistics(permuted.predictions(names), model, names))
        shutil.rmtree(work)
        record["null"][str(k)] = value
        record["seconds"] = record.get("seconds", 0.0) + time.perf_counter() - start
        _finish(record)
        atomic.write_json(path, record)
        elapsed = time.perf_counter() - start
        with open(log, "a", encoding="utf-8") as stream:
            stream.write(f"permutation {k}: pooled AUC {_auc(value['pooled'])}, fold mean {_auc(value['fold_mean'])}\n")
        print(
            f"  permutation {k} ({done}/{len(todo)}): pooled AUC {_auc(value['pooled'])} "
            f"({_duration(elapsed)}; about {_duration(elapsed * (len(todo) - done))} left)"
        )
    if scratch.is_dir() and not any(scratch.iterdir()):
        scratch.rmdir()
    _finish(record)
    atomic.write_json(path, record)
    return record


def check_cohort(recipe, cohort: Path, n: int, site_column: str | None = None) -> None:
    """Before the run: refuse a permutation test that the cohort's labelled patients cannot support."""
    frame, _ = load_cohort(cohort, recipe.task, recipe.data)
    table = pd.DataFrame({"patient_id": frame["patient_id"], "label": frame["label"], "partition": "cv", "fold": 0})
    _check_groups(_groups(frame, table, site_column, cohort)[0], n)


DRAWS = 100  # labellings tried for one permutation before the folds are called too small for the test


def _draw(groups: pd.DataFrame, seed: int, k: int) -> pd.Series:
    """Permutation k's labelling: the first draw that leaves two classes in every fold's training patients."""
    for draw in range(DRAWS):
        donor = shuffled(groups, seed, k, draw)
        if trainable(groups, donor):
            return donor
    raise GlioscopeError(
        f"permutation {k}: none of {DRAWS} labellings left two classes in every fold's training patients; the folds "
        "are too small for a permutation test"
    )


def _groups(frame: pd.DataFrame, table: pd.DataFrame, site_column, cohort) -> tuple[pd.DataFrame, str | None]:
    """The run's cross-validation patients, each with its group (site, or one group) and label."""
    used = table[table["partition"] == "cv"]
    patients = used.groupby("patient_id")[["label", "fold"]].first().reset_index()
    patients["label"] = patients["label"].astype(str)
    found = site_lookup.patient_sites(frame, site_column, cohort)
    if found is not None and found.by_patient.nunique() > 1:
        patients["group"] = found.of(patients["patient_id"]).fillna("?").astype(str).to_numpy()
        return patients, f"site ({found.source})"
    patients["group"] = "all"
    return patients, None


def _check_groups(groups: pd.DataFrame, n: int) -> None:
    """Refuse a cohort whose labels cannot be shuffled into enough distinct labellings."""
    if groups["label"].nunique() < 2:
        raise InputError(None, "the run's cross-validation patients hold one class: there is nothing to shuffle")
    by_group = {g: list(rows["label"]) for g, rows in groups.groupby("group")}
    distinct = labellings(by_group)
    if distinct - 1 < SMALLEST_USEFUL:
        raise InputError(
            None,
            f"the cohort's {len(groups)} cross-validation patients allow only {distinct:.0f} distinct labelling(s) "
            f"when shuffled{' within sites' if len(by_group) > 1 else ''}: too few for a permutation test that can "
            "reach p < 0.05 (at least 20 are needed)",
        )
    if distinct - 1 < n:
        raise InputError(
            None,
            f"--permutations {n}: the cohort's {len(groups)} patients allow only {distinct:.0f} distinct "
            f"labellings; give at most {int(distinct) - 1}",
        )


def _record(path: Path, resume: bool, n: int, recipe, model: str, observed: dict, site_words) -> dict:
    wanted = {
        "recipe": recipe.name,
        "model": model,
        "statistic": "pooled patient AUC of the headline model (macro one-vs-rest), and the mean of its fold AUCs",
        "n": int(n),
        "seed": int(recipe.cv.seed),
        "within": site_words,
        "observed": observed,
        "null": {},
    }
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        same = all(previous.get(k) == wanted[k] for k in ("recipe", "model", "seed", "within", "observed"))
        if resume and same:
            wanted["null"] = {k: v for k, v in previous.get("null", {}).items() if int(k) <= n}
            wanted["seconds"] = previous.get("seconds", 0.0)
    return wanted


def _finish(record: dict) -> None:
    """The p-values and the null's summary from the permutations done so far."""
    for key in ("pooled", "fold_mean"):
        null = [v[key] for v in record["null"].values()]
        p = p_value(record["observed"][key], null)
        record[f"p_{key}"] = None if math.isnan(p) else p  # strict JSON: undefined is null
    record["done"] = len(record["null"])


def _write_inputs(work: Path, full, table: pd.DataFrame, meta: dict, donor: pd.Series, cohort: Path, task_label: str):
    """A permuted copy of the cohort (its label columns) and of the run's split table (its label: the task's)."""
    labels = list(dict.fromkeys(c for c in (*LABEL_COLUMNS, task_label) if c in full))
    by_patient = full.groupby("patient_id")[labels].first()
    taken = full["patient_id"].map(donor)
    moved = taken.notna()
    permuted = full.copy()
    for column in labels:
        permuted.loc[moved, column] = taken[moved].map(by_patient[column]).to_numpy()
    (work / "cohort").mkdir(parents=True)
    atomic.write_csv(work / "cohort" / cohorts.COHORT_FILE, permuted)
    summary = Path(cohort) / "summary.json"
    if summary.is_file():
        shutil.copy(summary, work / "cohort" / "summary.json")
    split_table = table.copy()
    task = permuted.set_index("item_id")[task_label].astype(str)
    split_table["label"] = split_table["item_id"].map(task).fillna(table["label"])
    split.save(work / "splits", split_table, meta)
