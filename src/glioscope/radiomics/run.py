"""Run a radiomics recipe: features per patient, then one classifier per fold, into a run folder like a deep run's.

The cohort rows, classes and folds come from glioscope.plan as for a deep recipe. Folds given
with --splits are taken by patient (a split made on another layout of the same patients, such
as the phantom's image folder, applies as it is); without them, the recipe's cv settings make
them. Every fold's training and held-out patients are checked disjoint, each fold's
classifier sees only its training patients (its settings chosen by the inner CV among them),
and predicts its held-out patients once. The run folder has the deep runs' files (config.yaml,
run.json, cohort.csv, splits.csv, fold<k>/predictions.csv, predictions.csv, metrics.json,
report.html) plus features.csv (one row per patient), fingerprints.npz (the features' digests, for
glioscope.leakcheck), features_skipped.csv,
fold<k>/classifier.npz (the fitted classifier as plain arrays, glioscope.radiomics.portable),
fold<k>/inner_cv.csv (the grid and its inner AUC) and fold<k>/features_used.csv.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope import cohort, leakcheck, plan, split
from glioscope.errors import InputError
from glioscope.io.parallel import default_workers
from glioscope.radiomics.classifier import fit_with_inner_cv, probabilities
from glioscope.radiomics.extract import extract_all, extraction_settings, require_pyradiomics
from glioscope.radiomics.inputs import patient_inputs
from glioscope.radiomics.portable import PortableClassifier
from glioscope.radiomics.settings import RadiomicsRecipe
from glioscope.rundir import (
    CLASSIFIER,
    COHORT,
    FEATURES,
    FEATURES_SKIPPED,
    FEATURES_USED,
    FINGERPRINTS,
    INNER_CV,
    RUN_LOG,
    RunFolder,
    RunRecord,
    joined,
    prediction_table,
)
from glioscope.util import atomic
from glioscope.util.stagelog import StageLog


def patient_splits(splits_path: Path, frame: pd.DataFrame, notes: list[str]) -> tuple[pd.DataFrame, dict]:
    """The cohort rows' split table from a split folder, by patient: each row takes its patient's fold."""
    given, meta = split.load(splits_path)
    if given["leaky"].any():
        raise InputError(
            splits_path,
            "is a leaky slice-level split: radiomics features are per patient and need "
            "a patient-level split (glioscope split without --leaky-slice-level)",
        )
    folds = given.drop_duplicates("patient_id").set_index("patient_id")[["partition", "fold"]]
    missing = sorted(set(frame["patient_id"]) - set(folds.index))
    if missing:
        raise InputError(splits_path, f"{len(missing)} cohort patient(s) have no fold, e.g. {missing[:3]}")
    absent = sorted(set(folds.index) - set(frame["patient_id"]))
    if absent:
        notes.append(
            f"{len(absent)} patient(s) of the splits are not in this cohort and are not used "
            f"(e.g. {', '.join(absent[:3])})"
        )
    table = frame[["item_id", "patient_id", "label"]].copy()
    table["partition"] = table["patient_id"].map(folds["partition"])
    table["fold"] = table["patient_id"].map(folds["fold"]).astype(int)
    table["leaky"] = False
    split.check_splits(table)
    meta = {**meta, "counts": split.fold_counts(table), "splits": str(splits_path)}
    meta.setdefault("mode", "kfold")
    return table, meta


def _patients(items: pd.DataFrame, featurised: pd.DataFrame) -> list[str]:
    return sorted(set(items["patient_id"]) & set(featurised.index))


def _write_fold(
    folder: RunFolder,
    job: plan.Job,
    matrix: pd.DataFrame,
    names: list[str],
    recipe: RadiomicsRecipe,
    workers: int | None,
) -> dict:
    """Fit one job's classifier (inner CV on its training patients) and write its predictions; returns its record."""
    train = _patients(job.train, matrix)
    labels = matrix["target"]
    features = [c for c in matrix.columns if c != "target"]
    X, y = matrix.loc[train, features].to_numpy(dtype=float), labels.loc[train].to_numpy(dtype=int)
    fitted = fit_with_inner_cv(X, y, train, features, len(names), recipe.classifier, workers, job.name)
    fold_label = job.name[len("fold") :] if job.name.startswith("fold") else "0"
    frames = []
    for label, items in job.evaluate.items():
        held_out = _patients(items, matrix)
        split.assert_disjoint({"train": train, f"evaluate:{label}": held_out})
        if held_out:
            probs = probabilities(fitted.model, matrix.loc[held_out, features].to_numpy(dtype=float), len(names))
            frames.append(_table(probs, held_out, labels.loc[held_out].to_numpy(), label, names, recipe.name))
    folder.write_fold_predictions(job.name, joined(frames, names))
    folder.write_fold_predictions(
        job.name, _table(fitted.validation, train, y, fold_label, names, recipe.name), validation=True
    )
    PortableClassifier.from_pipeline(fitted.model, features).save(folder.fold(job.name) / CLASSIFIER)
    atomic.write_csv(folder.fold(job.name) / INNER_CV, fitted.grid)
    atomic.write_csv(
        folder.fold(job.name) / FEATURES_USED,
        pd.DataFrame({"feature": fitted.weights.index, "weight": fitted.weights.to_numpy()}),
    )
    return {
        "chosen": fitted.params,
        "inner_macro_auc": fitted.inner_score,
        "inner_folds": fitted.inner_folds,
        "training_patients": len(train),
        "features_used": int(len(fitted.weights)),
        "top_features": list(fitted.weights.index[:5]),
        "note": fitted.note,
    }


def _table(
    probs: np.ndarray, patients: list[str], targets: np.ndarray, fold: str, names: list[str], model: str
) -> pd.DataFrame:
    keys = pd.DataFrame({"slice_id": patients, "item_id": patients, "patient_id": patients})
    return prediction_table({model: probs}, keys, targets, fold, names)


def _what(recipe: RadiomicsRecipe, channels: list[str], n_features: int, version: str) -> str:
    """The features in words, for the report."""
    features = recipe.features
    per_channel = [c for c in features.classes if c != "shape"]
    shape = "shape once (the first channel's mask), " if "shape" in features.classes else ""
    labels = ", ".join(map(str, recipe.data.mask_labels)) if recipe.data.mask_labels else "every non-zero value"
    scaling = f"z-scored over the image, times {features.normalize_scale:g}" if features.normalize else "not normalised"
    grid = (
        f"resampled to {' x '.join(f'{s:g}' for s in features.resampled_spacing)} mm"
        if features.resampled_spacing
        else "on their own grid"
    )
    return (
        f"{n_features} PyRadiomics {version} features per patient ({FEATURES}): {shape}{', '.join(per_channel)} "
        f"on {', '.join(channels)}, inside the tumour mask ({labels}); images {scaling}, {grid}, bin width "
        f"{features.bin_width:g}; {recipe.classifier.model} classifier, its settings chosen per fold by an inner "
        f"CV on the training patients"
    )


def _describe(name: str, record: dict, total: int) -> str:
    chosen = ", ".join(f"{k} {'none' if v is None else v}" for k, v in record["chosen"].items())
    return (
        f"{name}: the inner {record['inner_folds']}-fold CV on its {record['training_patients']} training "
        f"patients chose {chosen} (inner macro AUC {record['inner_macro_auc']:.2f}); the model uses "
        f"{record['features_used']} of {total} features"
        + (f" (first: {', '.join(record['top_features'][:3])})" if record["top_features"] else "")
        + (f"; note: {record['note']}" if record.get("note") else "")
    )


def run_radiomics(
    recipe: RadiomicsRecipe,
    cohort_path: Path,
    out: Path,
    splits_path: Path | None = None,
    folds: list[int] | None = None,
    resume: bool = False,
    progress: bool = True,
    report: bool = True,
) -> Path:
    """Featurise, fit and predict every fold (or `folds`), evaluate and report; returns the run folder."""
    folder = RunFolder(out)
    resumed = folder.check_start(recipe, resume)
    if resumed:
        splits_path = splits_path or folder.path  # the folds the run started with
    log = StageLog()  # in memory until the run is staged: a run refused leaves no folder
    log(f"{'resumed' if resumed else 'started'}: recipe {recipe.name}, cohort {cohort_path}, run folder {folder.path}")
    with log.notes():
        return _run(recipe, cohort_path, folder, log, splits_path, folds, progress, report)


def _run(recipe, cohort_path, folder: RunFolder, log: StageLog, splits_path, folds, progress, report) -> Path:
    start = time.perf_counter()
    frame, notes = plan.load_cohort(cohort_path, recipe.task, recipe.data)
    names = plan.class_names(recipe.task, frame, notes)
    log(f"cohort read: {len(frame)} row(s), {frame['patient_id'].nunique()} patient(s), classes {', '.join(names)}")
    inputs = patient_inputs(frame, recipe.data, cohort_path)
    if splits_path is not None:
        table, meta = patient_splits(Path(splits_path), frame, notes)
    else:
        table, meta = plan.make_or_load_splits(recipe.cv, frame, None)
    jobs = plan.plan_jobs(table, meta.get("mode") or recipe.cv.mode, None, folds)  # before any output: it can refuse
    version = require_pyradiomics()
    values, skipped, counts = extract_all(inputs.patients, recipe.features, recipe.data, progress)
    skipped = inputs.skipped + skipped
    notes += inputs.notes
    if not values:
        first = skipped[0] if skipped else {"patient_id": "-", "reason": "no patients"}
        raise InputError(cohort_path, f"no patient could be featurised (e.g. {first['patient_id']}: {first['reason']})")
    log(f"features extracted: {len(values)} patient(s), {counts['cached']} from the cache, {len(skipped)} skipped")
    matrix = pd.DataFrame.from_dict(values, orient="index").sort_index().replace([np.inf, -np.inf], np.nan)
    labels = {p.patient_id: p.label for p in inputs.patients}
    matrix.insert(0, "target", [names.index(labels[p]) for p in matrix.index])
    if skipped:
        notes.append(
            f"{len(skipped)} patient(s) have no features and no predictions ({FEATURES_SKIPPED}; e.g. "
            f"{skipped[0]['patient_id']}: {skipped[0]['reason']})"
        )
    for note in notes:
        print(f"note: {note}")
    print(
        f"radiomics: {matrix.shape[1] - 1} features per patient ({', '.join(inputs.channels)}) for "
        f"{len(matrix)} patient(s); {counts['cached']} from the cache, {counts['computed']} computed"
    )
    notes.insert(0, _what(recipe, inputs.channels, matrix.shape[1] - 1, version))
    workers = recipe.data.workers or default_workers()
    with atomic.atomic_dir(folder.path, overwrite=True) as tmp:
        staged = RunFolder(tmp)
        log.to(staged / RUN_LOG, earlier=folder / RUN_LOG)  # a resumed run's log goes on
        staged.write_inputs(recipe, frame, table, meta)
        features = matrix.drop(columns="target")
        atomic.write_csv(
            staged / FEATURES,
            pd.concat(
                [
                    pd.DataFrame({"patient_id": matrix.index, "label": [names[t] for t in matrix["target"]]}),
                    features.reset_index(drop=True),
                ],
                axis=1,
            ),
        )
        if skipped:
            atomic.write_csv(staged / FEATURES_SKIPPED, pd.DataFrame(skipped, columns=["patient_id", "path", "reason"]))
        # What predict compares a new patient's features with (identical features: a patient seen in training).
        leakcheck.Fingerprints.of_vectors(matrix.index, matrix.index, features.to_numpy(dtype=float)).save(
            staged / FINGERPRINTS
        )
        records = {}
        for k, job in enumerate(jobs):
            with log.timed(f"{job.name} ({k + 1} of {len(jobs)})"):
                records[job.name] = _write_fold(staged, job, matrix, names, recipe, workers)
            notes.append(_describe(job.name, records[job.name], features.shape[1]))
            print(f"note: {notes[-1]}")
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
                samples={"kind": "radiomics", "count": len(matrix), "settings": {"channels": inputs.channels}},
                radiomics={
                    "pyradiomics_version": version,
                    "extraction": extraction_settings(recipe.features, recipe.data),
                    "channels": inputs.channels,
                    "features_per_patient": features.shape[1],
                    "patients": len(matrix),
                    "patients_skipped": len(skipped),
                    "classifier": recipe.classifier.model,
                    "folds": records,
                    "cache": counts,
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
    print(f"radiomics run finished in {time.perf_counter() - start:.1f} s")
    log(f"finished in {time.perf_counter() - start:.1f} s")
    return folder.path
