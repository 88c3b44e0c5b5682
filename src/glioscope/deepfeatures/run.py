"""Run a deep-feature recipe: embed every slice once, then one classifier per fold, into a run folder like any run's.

The cohort rows, classes and folds come from glioscope.plan as for every recipe; folds given
with --splits are taken by patient (glioscope.radiomics.run.patient_splits). The slices are
the deep recipes' (glioscope.samples, cached), embedded once by the frozen backbone
(glioscope.deepfeatures.embed, cached): nothing learnt depends on a fold, so nothing leaks
across folds. Each fold's classifier sees only its training patients (its settings chosen by
the inner CV among them, whose out-of-fold probabilities are the fold's validation
predictions) and predicts its held-out patients once; every fold's patients are checked
disjoint. The run folder has every run's files (config.yaml, run.json, cohort.csv, splits.csv,
fold<k>/predictions.csv, validation_predictions.csv, predictions.csv, metrics.json,
report.html), fingerprints.npz (the slices' hashes, glioscope.leakcheck), and per fold
classifier.npz (logistic, forest: plain arrays) or attention.pt (the attention model) with
inner_cv.csv; an attention run also attention.csv, every held-out slice's attention, ranked, and
attention_slices.npz, thumbnails of each held-out patient's three most attended slices (for the report).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope import cohort, leakcheck, plan, split
from glioscope.deepfeatures import mil
from glioscope.deepfeatures.attended import save_top_slices
from glioscope.deepfeatures.embed import Backbone, embed
from glioscope.deepfeatures.inputs import EmbeddingSet, embedding_set
from glioscope.deepfeatures.settings import DeepFeatureRecipe
from glioscope.errors import InputError
from glioscope.io.parallel import default_workers
from glioscope.radiomics.classifier import fit_with_inner_cv, probabilities
from glioscope.radiomics.portable import PortableClassifier
from glioscope.radiomics.run import patient_splits
from glioscope.rundir import (
    ATTENTION,
    ATTENTION_MODEL,
    ATTENTION_SLICES,
    CLASSIFIER,
    COHORT,
    FEATURES_USED,
    FINGERPRINTS,
    INNER_CV,
    RUN_LOG,
    RunFolder,
    RunRecord,
    joined,
    prediction_table,
)
from glioscope.samples import build_samples
from glioscope.util import atomic
from glioscope.util.stagelog import StageLog


def featurise(frame: pd.DataFrame, recipe: DeepFeatureRecipe, cache_dir: Path | None, progress: bool) -> EmbeddingSet:
    """The embeddings of cohort rows' slices, pooled per patient (`cache_dir` None: nothing cached)."""
    samples = build_samples(frame, recipe.data, cache_dir, progress)
    if len(samples) == 0:
        first = samples.skipped[0].reason if samples.skipped else "no slice selected"
        raise InputError(None, f"no slice to embed ({first})")
    backbone = Backbone(recipe.backbone, samples.channels, recipe.data.normalize, recipe.data.slices.context)
    vectors = embed(samples, backbone, None if cache_dir is None else Path(cache_dir) / "embeddings", progress)
    return embedding_set(samples, vectors, recipe.pooling, samples.skipped)


def _table(probs, patients, targets, fold: str, names: list[str], model: str) -> pd.DataFrame:
    keys = pd.DataFrame({"slice_id": patients, "item_id": patients, "patient_id": patients})
    return prediction_table({model: probs}, keys, targets, fold, names)


def _attention_rows(bags: EmbeddingSet, positions, weights, fold: str) -> pd.DataFrame:
    frames = []
    for k, attention in zip(positions, weights):
        rows = bags.slice_table.iloc[bags.rows(k)].copy()
        rows.insert(0, "fold", fold)
        rows["attention"] = attention
        rows["rank"] = (-attention).argsort(kind="stable").argsort(kind="stable") + 1
        frames.append(rows.sort_values("rank"))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _write_fold(folder: RunFolder, job: plan.Job, bags: EmbeddingSet, y: np.ndarray, names, recipe) -> tuple:
    """Fit one job's classifier on its training patients, predict its held-out ones; (record, attention rows)."""
    position = {p: k for k, p in enumerate(bags.table["patient_id"])}
    train = sorted(set(job.train["patient_id"].astype(str)) & set(position))
    at = [position[p] for p in train]
    fold_label = job.name[len("fold") :] if job.name.startswith("fold") else "0"
    settings, frames, attention = recipe.classifier, [], []
    if settings.model == "attention":
        fitted = mil.fit_with_inner_cv(
            bags.bags(at), y[at], train, len(names), recipe.attention, settings.inner_folds, settings.seed, job.name
        )
        fitted.model.save(folder.fold(job.name) / ATTENTION_MODEL)
    else:
        features = list(bags.matrix.columns)
        workers = default_workers()
        fitted = fit_with_inner_cv(
            bags.matrix.iloc[at].to_numpy(float), y[at], train, features, len(names), settings, workers, job.name
        )
        PortableClassifier.from_pipeline(fitted.model, features).save(folder.fold(job.name) / CLASSIFIER)
        used = fitted.weights
        atomic.write_csv(
            folder.fold(job.name) / FEATURES_USED, pd.DataFrame({"feature": used.index, "weight": used.to_numpy()})
        )
    for label, items in job.evaluate.items():
        held_out = sorted(set(items["patient_id"].astype(str)) & set(position))
        split.assert_disjoint({"train": train, f"evaluate:{label}": held_out})
        if not held_out:
            continue
        where = [position[p] for p in held_out]
        if settings.model == "attention":
            probs, weights = fitted.model.predict(bags.bags(where))
            attention.append(_attention_rows(bags, where, weights, label))
        else:
            probs = probabilities(fitted.model, bags.matrix.iloc[where].to_numpy(float), len(names))
        frames.append(_table(probs, held_out, y[where], label, names, recipe.name))
    folder.write_fold_predictions(job.name, joined(frames, names))
    folder.write_fold_predictions(
        job.name, _table(fitted.validation, train, y[at], fold_label, names, recipe.name), validation=True
    )
    atomic.write_csv(folder.fold(job.name) / INNER_CV, fitted.grid)
    record = {
        "chosen": fitted.params,
        "inner_macro_auc": fitted.inner_score,
        "inner_folds": fitted.inner_folds,
        "training_patients": len(train),
    }
    if settings.model != "attention":
        record["features_used"] = int(len(fitted.weights))
        record["note"] = fitted.note
    return record, attention


def _weights(weights) -> str:
    return "no pretrained weights" if str(weights).lower() in ("none", "") else f"{weights} weights"


def _what(recipe: DeepFeatureRecipe, bags: EmbeddingSet) -> str:
    backbone, slices = recipe.backbone, recipe.data.slices
    per = bags.slice_table.groupby("patient_id").size()
    head = (
        "a patient-level gated-attention model (its weight decay chosen by the inner CV), trained on the bags"
        if recipe.classifier.model == "attention"
        else f"their per-patient {', '.join(recipe.pooling.stats)} ({bags.matrix.shape[1]} features) into a "
        f"{recipe.classifier.model} classifier, its settings chosen per fold by an inner CV on the training patients"
    )
    return (
        f"{len(bags.slice_table)} {slices.selection} slices of {len(bags)} patients ({per.min()}-{per.max()} each, "
        f"{slices.size} px) embedded by a frozen {backbone.name} ({_weights(backbone.weights)}"
        f"{', averaged with its mirror image' if backbone.flip else ''}; {bags.vectors.shape[1]} values per slice); "
        f"{head}"
    )


def run_deepfeatures(
    recipe: DeepFeatureRecipe,
    cohort_path: Path,
    out: Path,
    splits_path: Path | None = None,
    folds: list[int] | None = None,
    resume: bool = False,
    progress: bool = True,
    report: bool = True,
    cache_dir: Path | None = None,
) -> Path:
    """Embed, fit and predict every fold (or `folds`), evaluate and report; returns the run folder."""
    folder = RunFolder(out)
    resumed = folder.check_start(recipe, resume)
    if resumed:
        splits_path = splits_path or folder.path  # the folds the run started with
    log = StageLog()  # in memory until the run is staged: a run refused leaves no folder
    log(f"{'resumed' if resumed else 'started'}: recipe {recipe.name}, cohort {cohort_path}, run folder {folder.path}")
    with log.notes():
        return _run(recipe, cohort_path, folder, log, splits_path, folds, progress, report, cache_dir)


def _run(recipe, cohort_path, folder: RunFolder, log: StageLog, splits_path, folds, progress, report, cache_dir):
    start = time.perf_counter()
    frame, notes = plan.load_cohort(cohort_path, recipe.task, recipe.data)
    names = plan.class_names(recipe.task, frame, notes)
    log(f"cohort read: {len(frame)} row(s), {frame['patient_id'].nunique()} patient(s), classes {', '.join(names)}")
    if splits_path is not None:
        table, meta = patient_splits(Path(splits_path), frame, notes)
    else:
        table, meta = plan.make_or_load_splits(recipe.cv, frame, None)
    jobs = plan.plan_jobs(table, meta.get("mode") or recipe.cv.mode, None, folds)  # before any output: it can refuse
    bags = featurise(frame, recipe, cache_dir or recipe.data.cache_dir(), progress)
    y = np.array([names.index(label) for label in bags.table["label"]])
    log(f"slices embedded: {len(bags.slice_table)} slice(s) of {len(bags)} patient(s), {len(bags.skipped)} skipped")
    notes = [_what(recipe, bags), *notes, *bags.notes]
    if bags.skipped:
        notes.append(f"{len(bags.skipped)} slice source(s) skipped (e.g. {bags.skipped[0].reason})")
    missing = sorted(set(table["patient_id"].astype(str)) - set(bags.table["patient_id"]))
    if missing:
        notes.append(f"{len(missing)} patient(s) have no slice to embed and no prediction (e.g. {missing[0]})")
    for note in notes:
        print(f"note: {note}")
    with atomic.atomic_dir(folder.path, overwrite=True) as tmp:
        staged = RunFolder(tmp)
        log.to(staged / RUN_LOG, earlier=folder / RUN_LOG)  # a resumed run's log goes on
        staged.write_inputs(recipe, frame, table, meta)
        leakcheck.Fingerprints.of(bags.samples).save(staged / FINGERPRINTS)  # what predict's leak check reads
        records, attention = {}, []
        for k, job in enumerate(jobs):
            with log.timed(f"{job.name} ({k + 1} of {len(jobs)})"):
                records[job.name], weights = _write_fold(staged, job, bags, y, names, recipe)
            attention += weights
            print(f"note: {job.name}: the inner CV chose {records[job.name]['chosen']} "
                  f"(inner macro AUC {records[job.name]['inner_macro_auc']:.2f})"
                  + (f"; {records[job.name]['note']}" if records[job.name].get("note") else ""))  # fmt: skip
        if attention:
            attention = pd.concat(attention, ignore_index=True)
            atomic.write_csv(staged / ATTENTION, attention)
            save_top_slices(staged / ATTENTION_SLICES, bags, attention)  # what the report shows of them
        staged.write_record(
            RunRecord.of_recipe(
                recipe,
                names,
                [recipe.name],
                table,
                meta,
                notes=notes,
                patient_ids=cohort.has_patient_ids(cohort_path),
                cohort=str(folder / COHORT),
                samples={"kind": "embeddings", "count": len(bags), "settings": {"slices": len(bags.slice_table)}},
                deepfeatures={
                    "backbone": recipe.backbone.name,
                    "weights": recipe.backbone.weights,
                    "width": int(bags.vectors.shape[1]),
                    "classifier": recipe.classifier.model,
                    "features_per_patient": int(bags.matrix.shape[1]),
                    "patients": len(bags),
                    "slices": len(bags.slice_table),
                    "folds": records,
                },
            )
        )
        staged.merge_predictions([job.name for job in jobs])
        if report:
            from glioscope.workflows import finish  # evaluation and the report, composed there

            with log.timed("evaluation and report"):
                finish(tmp, n_boot=recipe.evaluate.bootstrap, name=folder.path.name)
            log("report written")
    log.to(folder / RUN_LOG)  # the staged folder is now the run folder
    print(f"deep-feature run finished in {time.perf_counter() - start:.1f} s")
    log(f"finished in {time.perf_counter() - start:.1f} s")
    return folder.path
