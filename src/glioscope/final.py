"""`glioscope train RECIPE --cohort C --all --from-cv RUN`: one model trained on every patient, after its CV.

A cross-validation estimates how well a recipe's models do on new patients; the model to use
afterwards is one more training of the same recipe on every patient (nnU-Net's "all" fold,
scikit-learn's refit). Nothing is held out from it, so it has no figure of its own: its run folder
carries the cross-validation's held-out predictions (RUN/predictions.csv), and with them the
CV's metrics, operating point and conformal calibration, under a banner that says whose they are.

What the CV chose is kept: the resolved recipe of RUN (its config.yaml, `--set` and `--quick`
included; new settings are refused, as the CV did not test them); a deep recipe whose folds kept
their best epoch on a validation split trains for the median of those epochs, with no validation
split and no early stopping; a radiomics or deep-feature recipe chooses its settings by the same
inner CV, now on every patient. The split is every labelled patient of the CV's cohort in one
training part (split mode "all"); the cohort given must hold the same patients as the CV's.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

import yaml

from glioscope import split
from glioscope.errors import GlioscopeError, InputError
from glioscope.methods import method_of_config
from glioscope.plan import class_names, load_cohort
from glioscope.recipe import apply_settings
from glioscope.rundir import COHORT, CONFIG, PREDICTIONS, RunFolder
from glioscope.train.checkpoint import load_checkpoint
from glioscope.util import atomic

NO_FIGURE = (
    "final model: trained on every patient of the cross-validation {cv} ({n} patients); nothing was held out from "
    "it, so it has no held-out figure of its own. The figures of this run are {cv}'s cross-validation (its fold "
    "models, not this model): they estimate how a model trained this way does on new patients"
)


def _cv_record(cv_run: Path, recipe_name: str) -> tuple[RunFolder, dict, dict]:
    """The CV run's folder, run.json and config.yaml, refused when it is not a cross-validation of `recipe_name`."""
    folder = RunFolder(cv_run)
    info = folder.info()
    config_path = Path(cv_run) / CONFIG
    if not config_path.is_file():
        raise InputError(cv_run, f"has no {CONFIG}: --from-cv needs a run folder written by `glioscope cv`")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    if info.get("final") or info.get("external") or info.get("package"):
        what = "a final model" if info.get("final") else "an external test" if info.get("external") else "a package"
        raise InputError(cv_run, f"is {what}, not a cross-validation run: give the run `glioscope cv` wrote")
    if recipe_name not in (info.get("recipe"), config.get("name"), str(cv_run)):
        raise GlioscopeError(
            f"--from-cv {cv_run} is a cross-validation of recipe {info.get('recipe')!r}, not {recipe_name!r}: a final "
            "model takes the recipe its CV tested"
        )
    if len(info.get("folds") or []) < 2:
        raise InputError(cv_run, "has fewer than two folds: a final model needs a cross-validation to point to")
    if info.get("leaky"):
        raise InputError(cv_run, "was split at slice level (leaky): its figures cannot stand for a final model")
    return folder, info, config


def chosen_epochs(folder: RunFolder, config: dict) -> tuple[list[str], str | None]:
    """A deep recipe's overrides for the final model: the median of the folds' kept best epochs, no validation."""
    train = config.get("train") or {}
    overrides = ["train.validation=none", "train.keep_best=false", "train.early_stopping=null"]
    if str(train.get("monitor", "")).startswith("val") or train.get("schedule") == "plateau":
        overrides.append("train.monitor=train_loss")
    best = []
    for _, path in folder.model_files():
        epoch = int(load_checkpoint(path).get("best_epoch", -1))
        if epoch > 0:
            best.append(epoch)
    finetune = (train.get("finetune") or {}).get("epochs", 0)
    if train.get("keep_best") and train.get("validation") != "none" and best and not finetune:
        epochs = max(1, int(round(statistics.median(best))))
        return overrides + [f"train.epochs={epochs}"], (
            f"{epochs} epochs: the median of the CV folds' best epochs ({', '.join(map(str, best))})"
        )
    return overrides, f"{train.get('epochs')} epochs, as the CV's folds trained (no best epoch was kept on validation)"


def train_final(
    recipe_name: str, cv_run: Path, out: Path, cohort: Path | None = None, resume: bool = False, progress=True
) -> Path:
    """Train the CV run's recipe on every patient into `out`; returns the run folder (evaluated on the CV's figures)."""
    cv_folder, info, config = _cv_record(Path(cv_run), recipe_name)
    method = method_of_config(config, cv_run)
    if method.kind == "ensemble":
        raise GlioscopeError(
            "--all trains one model; an ensemble's members are runs of their own: train each with --all"
        )
    overrides, epochs = chosen_epochs(cv_folder, config) if method.kind == "deep" else ([], None)
    config = apply_settings({**config, "quick": {}}, overrides)
    config["quick"] = bool(yaml.safe_load((Path(cv_run) / CONFIG).read_text(encoding="utf-8")).get("quick"))
    recipe = method.recipe_from_config(config)
    cohort = Path(cohort) if cohort else Path(cv_run) / COHORT
    frame, notes = load_cohort(cohort, recipe.task, recipe.data)
    names = class_names(recipe.task, frame, notes)
    present = sorted(frame["label"].astype(str).unique())
    if len(present) < 2:
        raise InputError(cohort, f"its labelled patients hold one class ({present[0]}): a model needs two")
    cv_patients = set(split.load(cv_run)[0]["patient_id"].astype(str))
    patients = set(frame["patient_id"].astype(str))
    if patients != cv_patients:
        extra, missing = sorted(patients - cv_patients), sorted(cv_patients - patients)
        raise InputError(
            cohort,
            f"holds other patients than the cross-validation {cv_run} ({len(extra)} not in it, e.g. {extra[:2]}; "
            f"{len(missing)} missing, e.g. {missing[:2]}): its figures would not describe this model",
        )
    statement = NO_FIGURE.format(cv=Path(cv_run).name, n=len(patients))
    with tempfile.TemporaryDirectory(prefix="glioscope-all-") as scratch:
        table, meta = split.make_all(frame, statement)
        split.save(Path(scratch) / "splits", table, meta)
        run_dir = method.run(recipe, cohort, out, splits=Path(scratch) / "splits", resume=resume, progress=progress,
                             report=False)  # fmt: skip
    folder = RunFolder(run_dir)
    with atomic.atomic_path(folder / PREDICTIONS) as tmp:  # the CV's figures, never this model's
        shutil.copyfile(cv_folder / PREDICTIONS, tmp)
    final = {
        "from_cv": Path(cv_run).name,
        "cv_path": str(cv_run),
        "patients": len(patients),
        "classes": names,
        "epochs": epochs,
        "statement": statement,
    }
    record = folder.record()
    folder.write_record(replace(record, final=final, notes=[statement, *(n for n in record.notes if n != statement)]))
    return run_dir
