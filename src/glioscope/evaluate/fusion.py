"""Late fusion of runs on the same patients and folds, e.g. one run per MRI sequence.

The MGMT paper trains one EfficientNet per sequence (FLAIR, T1w, T1wCE, T2w) and asks,
as future work, for the four to be fused. `fuse` does it after training, from the
run folders alone:

1. Per input run, its headline model (the last of run.json "models": "eff",
   "sdl/mean", ...) is read from predictions.csv and aggregated to one
   probability per patient per fold (mean over the patient's slices), as
   everywhere else in glioscope.
2. Per fold (each CV fold, and "test"), the runs' patient probabilities are
   combined:

   - ``mean``: the mean of the runs' probability vectors. A patient missing from
     a run (a sequence missing, as in the real RSNA-MICCAI data) is fused from
     the runs that have it; the run records how many patients that was.
   - ``logistic``: a logistic regression (scikit-learn, L2, C = LOGISTIC_C) on
     the logit of each run's patient probability (more than two classes: the
     centred log-probabilities of every class), plus one missing-input indicator
     per run; a missing input is imputed as p = 0.5 (logit 0; more classes: the
     uniform distribution). Fold k's combiner is fit ONLY on fold k's
     inner-validation patients (validation_predictions.csv, predicted by fold
     k's models; they are training patients of the outer split) and applied to
     fold k's held-out patients. The test combiner is fit on every fold's
     validation patients pooled (one combiner from the most data; each row was
     predicted by the model of its own fold) and applied to the test
     predictions, which are the mean over the fold models. Before each fit the
     fitted patients are checked disjoint from the patients predicted and from
     the test partition (glioscope.split.assert_disjoint): a combiner never sees
     the label of a patient it scores.

3. The result (`FusedRun`: recipe "fusion", models "fusion/mean",
   "fusion/logistic") has patient-level predictions (slice_id = item_id =
   patient_id), the inputs' splits.csv and cohort.csv (rows of all inputs, each
   item once). `glioscope.workflows.fuse` writes it as a run folder, evaluated
   (metrics.json) and reported (report.html) like any run, so `glioscope compare`
   puts it beside its inputs. It has no learning curves and no Grad-CAM, and
   `glioscope predict` cannot apply it.

Logistic fusion is skipped, with a note, when some input has no validation
predictions for some fold (a recipe without ``train.validation: inner``) or a
fold's validation patients lack a class; asking for logistic alone is then an
error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression  # the fitted combiner's type

from glioscope import references
from glioscope.errors import GlioscopeError
from glioscope.evaluate.combiners import LOGISTIC_C, Stack, fit_logistic, fuse_mean
from glioscope.evaluate.fusion_inputs import (
    FusionInput,
    load_input,
    run_names,
    shared_class_names,
    stack_patients,
    test_patients,
    union_csv,
)
from glioscope.evaluate.run import fold_key
from glioscope.rundir import COHORT, INFO, SPLITS, VALIDATION, RunFolder, RunRecord
from glioscope.split import LEAKY_WARNING, assert_disjoint, check_same_folds

METHODS = ("mean", "logistic")
_logistic = fit_logistic  # by this name, so that a test can watch every fit


@dataclass
class _Summary:
    """What fusion did, for run.json and the notes."""

    folds: dict = field(default_factory=dict)
    logistic: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    methods: list = field(default_factory=list)


# --- combining ----------------------------------------------------------------------------------------


def _coefficients(model: LogisticRegression, inputs: Sequence[FusionInput], class_names: list[str]) -> dict:
    """The combiner's weights by feature name (per class when there are more than two)."""
    missing = [f"missing {i.name}" for i in inputs]
    if len(class_names) == 2:
        names = [f"logit {i.name}" for i in inputs] + missing
        return {"coef": dict(zip(names, map(float, model.coef_[0]))), "intercept": float(model.intercept_[0])}
    names = [f"log p({c}) {i.name}" for i in inputs for c in class_names] + missing
    return {
        "coef": {c: dict(zip(names, map(float, row))) for c, row in zip(class_names, model.coef_)},
        "intercept": dict(zip(class_names, map(float, model.intercept_))),
    }


def _logistic_blocker(
    inputs: Sequence[FusionInput], cv_folds: Sequence[str], has_test: bool, class_names
) -> str | None:
    """Why logistic fusion cannot run, or None."""
    for item in inputs:
        if item.validation is None:
            return (
                f"run {item.name} has no validation predictions ({VALIDATION}) for model {item.model}; "
                "train with train.validation: inner"
            )
        missing = [f for f in cv_folds if not (item.validation["fold"] == f).any()]
        if missing:
            return f"run {item.name} has no validation predictions for fold(s) {', '.join(missing)}"
    groups = [[f] for f in cv_folds] + ([sorted({f for i in inputs for f in i.validation["fold"]})] if has_test else [])
    for folds in groups:
        present = {int(t) for i in inputs for t in i.validation.loc[i.validation["fold"].isin(folds), "target"]}
        if len(present) < len(class_names):
            lacking = [class_names[k] for k in range(len(class_names)) if k not in present]
            return f"the validation patients of fold(s) {', '.join(folds)} lack class(es) {lacking}"
    return None


def _rows(stack: Stack, proba: np.ndarray, fold: str, model: str, class_names: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "fold": fold,
            "model": model,
            "slice_id": stack.patients,
            "item_id": stack.patients,
            "patient_id": stack.patients,
            "target": stack.targets,
            "n_inputs": (~stack.missing).sum(axis=1),
        }
    )
    for k, name in enumerate(class_names):
        frame[f"prob_{name}"] = proba[:, k]
    return frame


def _fuse_predictions(
    inputs: list[FusionInput],
    class_names: list[str],
    methods: list[str],
    test_ids: set[str],
    leaky: bool,
    summary: _Summary,
) -> pd.DataFrame:
    cv_sets = [set(i.patients.loc[i.patients["fold"] != "test", "fold"]) for i in inputs]
    cv_folds = sorted(set.intersection(*cv_sets), key=fold_key)
    dropped = sorted(set.union(*cv_sets) - set(cv_folds), key=fold_key)
    if dropped:
        summary.skipped.append(f"fold(s) {', '.join(dropped)} left out: not every input run has predictions for them")
    has_test = all((i.patients["fold"] == "test").any() for i in inputs)
    if any((i.patients["fold"] == "test").any() for i in inputs) and not has_test:
        summary.skipped.append("the test set left out: not every input run has test predictions")
    folds = cv_folds + (["test"] if has_test else [])
    if not folds:
        raise GlioscopeError("the runs share no fold with predictions: nothing to fuse")

    if "logistic" in methods:
        blocker = _logistic_blocker(inputs, cv_folds, has_test, class_names)
        if blocker:
            if methods == ["logistic"]:
                raise GlioscopeError(f"cannot fuse by logistic regression: {blocker}")
            methods = [m for m in methods if m != "logistic"]
            summary.skipped.append(f"logistic fusion skipped: {blocker}")

    frames = []
    for fold in folds:
        stack = stack_patients(inputs, "patients", [fold], class_names)
        per_run = {i.name: int(n) for i, n in zip(inputs, stack.missing.sum(axis=0))}
        summary.folds[fold] = {
            "patients": len(stack.patients),
            "fewer_than_all_runs": int(stack.missing.any(axis=1).sum()),
            "missing_per_run": per_run,
        }
        if "mean" in methods:
            frames.append(_rows(stack, fuse_mean(stack), fold, "fusion/mean", class_names))
        if "logistic" in methods:
            fit_folds = (
                [fold] if fold != "test" else sorted({f for i in inputs for f in i.validation["fold"]}, key=fold_key)
            )
            fit = stack_patients(inputs, "validation", fit_folds, class_names)
            if not leaky:
                assert_disjoint(
                    {
                        f"validation patients the combiner is fit on (fold(s) {', '.join(fit_folds)})": fit.patients,
                        f"patients it predicts (fold {fold})": stack.patients,
                        **({"the test partition": sorted(test_ids)} if fold != "test" else {}),
                    }
                )
            proba, model = _logistic(fit, stack, len(class_names))
            summary.logistic[fold] = {
                "fit_on": "validation patients of fold(s) " + ", ".join(fit_folds),
                "n_fit": len(fit.patients),
                "n_fit_imputed": int(fit.missing.any(axis=1).sum()),
                "n_predicted": len(stack.patients),
                **_coefficients(model, inputs, class_names),
            }
            frames.append(_rows(stack, proba, fold, "fusion/logistic", class_names))
    summary.methods = methods
    order = {m: k for k, m in enumerate(METHODS)}
    table = pd.concat(frames, ignore_index=True)
    table["_m"] = table["model"].str.split("/").str[1].map(order)
    table["_f"] = table["fold"].map(lambda f: fold_key(f))
    return (
        table.sort_values(["_m", "_f", "patient_id"], kind="stable").drop(columns=["_m", "_f"]).reset_index(drop=True)
    )


# --- writing the run ------------------------------------------------------------------------------


def _notes(inputs: list[FusionInput], methods: list[str], summary: _Summary, n_partial: int, leaky: bool) -> list[str]:
    listing = "; ".join(f"{i.name} (model {i.model})" for i in inputs)
    notes = [
        f"Late fusion of {len(inputs)} runs on the same splits: {listing}. Each run's slices were averaged to one "
        "probability per patient per fold first."
    ]
    if "mean" in methods:
        notes.append(
            "fusion/mean: the mean of the runs' patient probabilities; a patient missing from a run is fused "
            "from the runs that have it."
        )
    if "logistic" in methods:
        notes.append(
            f"fusion/logistic: logistic regression (scikit-learn, L2, C={LOGISTIC_C}) on each run's patient "
            "logit plus a missing-input indicator per run (a missing input imputed as p = 0.5, logit 0); fold k's "
            f"combiner fit only on fold k's inner-validation patients ({VALIDATION}) and applied "
            "to fold k's held-out patients; the test combiner fit on all folds' validation patients pooled and "
            "applied to the test predictions (mean over the fold models). "
            + (
                "The split is leaky, so the fitted and predicted patients were not checked disjoint. "
                if leaky
                else "The fitted patients were checked disjoint from the predicted ones and from the test partition. "
            )
            + f"Coefficients: {INFO} 'fusion'."
        )
    notes.append("Predictions are per patient (slice_id = item_id = patient_id): image level equals patient level.")
    partial = {f: s["fewer_than_all_runs"] for f, s in summary.folds.items() if s["fewer_than_all_runs"]}
    if partial:
        total = sum(partial.values())
        where = ", ".join(f"fold {f}: {n}" for f, n in partial.items())
        per_run = {i.name: sum(s["missing_per_run"][i.name] for s in summary.folds.values()) for i in inputs}
        lacking = ", ".join(f"{name} lacks {n}" for name, n in per_run.items() if n)
        notes.append(
            f"{total} patient prediction(s) fused from fewer than all {len(inputs)} runs ({where}; {lacking})."
        )
    else:
        notes.append(f"Every patient had predictions from all {len(inputs)} runs.")
    if n_partial:
        notes.append(f"{n_partial} patient(s) are in the splits of only some of the runs (a missing sequence).")
    imputed = {f: s["n_fit_imputed"] for f, s in summary.logistic.items() if s["n_fit_imputed"]}
    if imputed:
        notes.append(
            "Validation patients with an imputed input: "
            + ", ".join(f"fold {f}: {n}" for f, n in imputed.items())
            + "."
        )
    notes += [f"Note: {s}." for s in summary.skipped]
    for item in inputs:
        notes += [f"{item.name}: {n}" for n in item.info.get("notes", [])]
    return notes


@dataclass
class FusedRun:
    """What a fused run folder holds (written by glioscope.rundir.RunFolder.write_fused)."""

    config: dict
    record: RunRecord
    splits: pd.DataFrame
    cohort: pd.DataFrame | None
    predictions: pd.DataFrame


def check_inputs(
    run_dirs: Sequence[str | Path], out: str | Path, methods: Sequence[str]
) -> tuple[list[Path], list[str]]:
    """The runs and methods of a fusion, checked: known methods, two runs or more, none twice, out not among them."""
    run_dirs = [Path(r) for r in run_dirs]
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise GlioscopeError(f"fusion methods: choose from {', '.join(METHODS)}, got {methods}")
    if len(run_dirs) < 2:
        raise GlioscopeError(f"fusion needs at least two runs, got {len(run_dirs)}")
    resolved = [d.resolve() for d in run_dirs]
    if len(set(resolved)) < len(resolved):
        raise GlioscopeError(
            "a run is given twice: " + ", ".join(str(d) for d, r in zip(run_dirs, resolved) if resolved.count(r) > 1)
        )
    if Path(out).resolve() in resolved:
        raise GlioscopeError(f"{out}: the output is one of the input runs")
    for run_dir in run_dirs:
        RunFolder(run_dir).info()  # a clear error for a folder that is not a run
    return run_dirs, methods


def fuse_runs(run_dirs: Sequence[Path], methods: Sequence[str], n_boot: int = 1000) -> FusedRun:
    """Fuse the headline models of runs on the same splits (see the module docstring); nothing is written."""
    class_names = shared_class_names(run_dirs)
    # Shared patients in the same folds everywhere; a patient may lack a run (a missing sequence).
    n_partial = check_same_folds(run_dirs, partial=True)
    inputs = [load_input(d, n, class_names) for d, n in zip(run_dirs, run_names(run_dirs))]
    leaky = any(i.info.get("leaky") for i in inputs)
    summary = _Summary()
    predictions = _fuse_predictions(inputs, class_names, list(methods), test_patients(run_dirs), leaky, summary)
    used = summary.methods
    first = inputs[0].info
    labels = {i.info.get("label") for i in inputs}
    record = RunRecord(
        recipe="fusion",
        task=first.get("task"),
        label=first.get("label") if len(labels) == 1 else "fusion",
        class_names=class_names,
        models=[f"fusion/{m}" for m in used],
        folds=sorted(int(f) for f in summary.folds if f != "test"),
        leaky=leaky,
        split_statement=LEAKY_WARNING if leaky else first.get("split_statement", ""),
        paper_tables=references.tables_of(first),
        caveat=first.get("caveat"),
        patient_ids=all(i.info.get("patient_ids", True) for i in inputs),
        notes=_notes(inputs, used, summary, n_partial, leaky),
        samples={"kind": "patients", "count": int(predictions["patient_id"].nunique())},
        cohort=f"{COHORT} (the input runs' cohorts)",
        fusion={
            "methods": used,
            "logistic_C": LOGISTIC_C,
            "folds": summary.folds,
            "logistic": summary.logistic,
            "skipped": summary.skipped,
            "inputs": [
                {"run": str(i.run_dir), "name": i.name, "model": i.model, "recipe": i.info.get("recipe")}
                for i in inputs
            ],
        },
    )
    config = {
        "name": "fusion",
        "description": "late fusion of runs on the same splits",
        "inputs": [{"run": str(i.run_dir), "model": i.model} for i in inputs],
        "fusion": {"methods": used, "logistic_C": LOGISTIC_C},
        "evaluate": {"bootstrap": int(n_boot)},
    }
    return FusedRun(
        config,
        record,
        union_csv([d / SPLITS for d in run_dirs]),
        union_csv([d / COHORT for d in run_dirs]),
        predictions,
    )
