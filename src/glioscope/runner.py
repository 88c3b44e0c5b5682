"""Run a recipe: the fold loop.

For each job of the plan (glioscope.plan: one per fold, or one training for a holdout or
source split), train on the job's samples, keep the model, predict the patients the job
holds out, and write it all into the run folder (glioscope.rundir), with the fingerprints
of the training images (glioscope.leakcheck); then evaluate and report (glioscope.workflows). The samples are a SliceSet or a VolumeSet behind one
protocol (glioscope.samples), so nothing here depends on 2D or 3D; each stage receives
only its own section of the recipe.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from glioscope import cohort, leakcheck, plan
from glioscope.errors import GlioscopeError
from glioscope.interpret import save_gradcam
from glioscope.models.build import build_model, input_normalisation, loss_kind, reported_names
from glioscope.models import model_entry, tta
from glioscope.pretrain import provenance
from glioscope.pretrain.leaks import check_run as check_pretrained
from glioscope.recipe import Recipe
from glioscope.rundir import COHORT, FINGERPRINTS, RUN_LOG, SKIPPED, RunFolder, RunRecord, joined, prediction_table
from glioscope.samples import SampleSet, build_samples
from glioscope.train import ddp, trainer_class
from glioscope.train.weights import class_weights
from glioscope.util.stagelog import StageLog


def run(
    recipe: Recipe,
    cohort_path: Path,
    out: Path,
    splits_path: Path | None = None,
    folds: list[int] | None = None,
    resume: bool = False,
    progress: bool = True,
    cache_dir: Path | None = None,
    report: bool = True,
) -> Path:
    """Train and evaluate `recipe` on every fold (or `folds`); returns the run folder.

    `cache_dir` overrides the recipe's data.cache, where decoded samples are kept.
    """
    folder = RunFolder(out)
    resumed = folder.check_start(recipe, resume)
    if resumed:
        splits_path = splits_path or folder.path  # the folds the run started with
    # Under torchrun every process trains; the first one writes the files (and the log).
    log = StageLog(enabled=int(os.environ.get("RANK", "0")) == 0)
    log(f"{'resumed' if resumed else 'started'}: recipe {recipe.name}, cohort {cohort_path}, run folder {folder.path}")
    with log.notes():
        return _run(recipe, cohort_path, folder, log, splits_path, folds, resume, progress, cache_dir, report)


def _run(recipe, cohort_path, folder, log, splits_path, folds, resume, progress, cache_dir, report) -> Path:
    """`run`'s stages, each a line of `log`."""
    start = time.perf_counter()
    frame, notes = plan.load_cohort(cohort_path, recipe.task, recipe.data)
    names = plan.class_names(recipe.task, frame, notes)
    log(f"cohort read: {len(frame)} row(s), {frame['patient_id'].nunique()} patient(s), classes {', '.join(names)}")
    table, meta = plan.make_or_load_splits(recipe.cv, frame, splits_path)
    samples = build_samples(frame, recipe.data, Path(cache_dir) if cache_dir else recipe.data.cache_dir(), progress)
    log(f"samples decoded: {len(samples.table)} {samples.kind}, {len(samples.skipped)} skipped")
    if samples.skipped:
        first = samples.skipped[0]
        notes.append(
            f"{len(samples.skipped)} cohort item(s) could not be used and were left out ({SKIPPED}; "
            f"e.g. {first.path}: {first.reason})"
        )
    for note in notes:  # every cohort row is used or accounted for, on the console too
        print(f"note: {note}")
    notes += samples.notes
    mode = meta.get("mode") or ("kfold" if splits_path else recipe.cv.mode)
    jobs = plan.plan_jobs(table, mode, recipe.train.inner_validation, folds)  # before any output: it can refuse
    build_model(
        recipe.model, len(names), samples.channels, recipe.data.slice_context
    )  # so can the model's builder (an option, its weights)
    notes += check_pretrained(recipe.model.weights, jobs, samples)  # and pretrained weights that saw these patients
    if tta.note(recipe.evaluate.tta):
        notes.append(tta.note(recipe.evaluate.tta))
    context = ddp.init_distributed(recipe.train.device)
    if context.is_main:
        folder.write_inputs(recipe, frame, table, meta, samples)
        log.to(folder / RUN_LOG)  # now that the run can no longer refuse its inputs
    for k, job in enumerate(jobs):
        with log.timed(f"{job.name} ({k + 1} of {len(jobs)})"):
            _run_job(
                recipe,
                job,
                samples,
                names,
                folder,
                resume,
                progress and context.is_main,
                notes,
                context,
                gradcam=k == 0,
                fold=_job_words(job, table),
            )
    if context.is_main:
        # The training images' fingerprints, so that predict and test need not decode the cohort again.
        leakcheck.Fingerprints.of(samples).save(folder / FINGERPRINTS)
        folder.write_record(
            RunRecord.of_recipe(
                recipe,
                names,
                reported_names(recipe.model, recipe.name),
                table,
                meta,
                notes=notes,
                patient_ids=cohort.has_patient_ids(cohort_path),
                cohort=str(folder / COHORT),
                samples={"kind": samples.kind, "count": int(len(samples.table)), "settings": samples.settings.__dict__},
                training={
                    "precision": folder.precisions([job.name for job in jobs]),
                    "weights": provenance.record(recipe.model),
                },
            )
        )  # named, or what it was pretrained on
        folder.merge_predictions([job.name for job in jobs])
        log(f"predictions of {len(jobs)} job(s) merged")
        if report:
            from glioscope.workflows import finish  # evaluation and the report, composed there

            with log.timed("evaluation and report"):
                finish(folder.path, n_boot=recipe.evaluate.bootstrap)
            log("report written")
    ddp.barrier(context)
    log(f"finished in {time.perf_counter() - start:.1f} s")
    return folder.path


def _job_words(job: plan.Job, table: pd.DataFrame) -> str:
    """A job as the epoch lines name it: "fold 2/5" (its place among the folds, counted from 1 whatever the folds'
    numbers), or "train" for a holdout's or a source split's one training."""
    numbers = sorted(int(k) for k in table.loc[table["partition"] == "cv", "fold"].unique())
    if not job.name.startswith("fold") or int(job.name[len("fold") :]) not in numbers:
        return job.name
    return f"fold {numbers.index(int(job.name[len('fold') :])) + 1}/{len(numbers)}"


def _run_job(
    recipe: Recipe,
    job: plan.Job,
    samples: SampleSet,
    names: list[str],
    folder: RunFolder,
    resume: bool,
    progress: bool,
    notes: list[str],
    context: ddp.DistContext,
    gradcam: bool = False,
    fold: str | None = None,
) -> None:
    """Train, keep and apply one job; `fold`, the job in words for the epoch lines ("fold 2/5")."""
    if folder.fold_finished(job.name):
        print(f"{job.name}: already finished, skipped")
        return
    targets = samples.targets(names)
    train_mask = samples.mask(job.train)
    if not train_mask.any():
        raise GlioscopeError(f"{job.name}: no training samples")
    normalisation = input_normalisation(recipe.model, recipe.data.normalize)
    train_set = samples.dataset(train_mask, targets, recipe.augment, normalisation)
    val_mask = samples.mask(job.validation) if job.validation is not None else None
    val_set = samples.dataset(val_mask, targets, None, normalisation) if val_mask is not None else None
    torch.manual_seed(recipe.train.seed)
    built = build_model(recipe.model, len(names), samples.channels, recipe.data.slice_context)
    settings = recipe.train.from_scratch(built.notes) if built.from_scratch else recipe.train
    for note in built.notes:
        if note not in notes:
            notes.append(note)
            print(f"note: {note}")
    weights = class_weights(settings.class_weights, targets[train_mask], len(names))
    trainer = _train_phases(
        recipe,
        settings,
        built.model,
        names,
        folder.fold(job.name),
        weights,
        progress,
        context,
        train_set,
        val_set,
        resume,
        fold,
    )
    if context.is_main:
        folder.save_model(job.name, trainer.raw_model.state_dict(), trainer.best_epoch, trainer.precision_record)
        if val_set is not None:  # for combiners fit on validation patients only (glioscope fuse)
            fold = job.name[len("fold") :] if job.name.startswith("fold") else "0"
            probs = trainer.predict(val_set, tta=recipe.evaluate.tta)
            rows = prediction_table(probs, samples.keys(val_mask), targets[val_mask], fold, names)
            folder.write_fold_predictions(job.name, rows, validation=True)
    frames = []
    for k, (fold_label, held_out) in enumerate(job.evaluate.items()):
        mask = samples.mask(held_out)
        if not mask.any():
            continue
        eval_set = samples.dataset(mask, targets, None, normalisation)
        probs = trainer.predict(eval_set, tta=recipe.evaluate.tta)  # as every road that applies the run predicts
        frames.append(prediction_table(probs, samples.keys(mask), targets[mask], fold_label, names))
        if k == 0 and gradcam and context.is_main:  # Grad-CAM explains the image alone, never its mirrors
            save_gradcam(
                trainer.raw_model,
                eval_set,
                samples.table[mask],
                targets[mask],
                names,
                folder.gradcam_dir(job.name),
                recipe.evaluate.gradcam_per_class,
            )
    if context.is_main:
        folder.write_fold_predictions(job.name, joined(frames, names))
        folder.finish_fold(job.name, best_is_kept=settings.keep_best)
    ddp.barrier(context)


def _train_phases(
    recipe: Recipe,
    settings,
    model,
    names,
    job_dir: Path,
    weights,
    progress,
    context,
    train_set,
    val_set,
    resume,
    fold=None,
):
    """Fit each phase of `settings` in turn; the fold's metrics.csv joins their histories."""
    variant = trainer_class(model_entry(recipe.model.name).variant)
    reported = reported_names(recipe.model, recipe.name)
    loss = loss_kind(recipe.model, len(names))  # the rule that gave the network its output units
    histories = []
    for subfolder, phase in settings.phases():
        trainer = variant(
            model,
            phase,
            names,
            job_dir / subfolder,
            name=recipe.name,
            reported=reported,
            class_weights=weights,
            progress=progress,
            context=context,
            loss=loss,
            fold=fold,
        )
        history = trainer.fit(train_set, val_set, resume=resume)
        model = trainer.raw_model  # the phase's kept weights go on to the next phase
        if subfolder:
            histories.append(history.assign(phase=subfolder))
    if histories and context.is_main:
        joined = pd.concat(histories, ignore_index=True)
        joined["epoch"] = np.arange(1, len(joined) + 1)
        RunFolder(job_dir.parent).write_history(job_dir.name, joined)
    return trainer
