"""Apply a trained run to one new study: the mean probability of its fold models, per sample and per patient.

A patient is "seen in training" when its id is in the run's cohort (a package: its hashed ids) or when one of
its images is identical or near-identical to a training image (glioscope.leakcheck, by the fingerprints the run
or package keeps); `seen_because` says which, and the matching training images are listed
(glioscope.trained.seen_in_training). A package without patient ids cannot tell by id: seen_in_training is null.
"""

from __future__ import annotations

from pathlib import Path

from glioscope.evaluate.conformal import SetOptions, set_fields
from glioscope.explain import StudyMap, study_maps
from glioscope.io.study import Study
from glioscope.trained import ATTENTION_NOTE, Prediction, TrainedRun, seen_in_training
from glioscope.typicality import assess


def predict(
    run_dir: Path,
    input_path: Path,
    mask: Path | None = None,
    run: TrainedRun | None = None,
    accept_altered: bool = False,
    sets: SetOptions | None = None,
) -> dict:
    """JSON-ready result: per-sample and per-patient class probabilities (mean over fold models).

    `run`: the run already opened (the web app keeps its runs' fold models loaded); `accept_altered`: a package
    altered since export is used anyway, and the notes say so; `sets`: the prediction sets' level (default 90%).
    """
    run = run or TrainedRun(run_dir, accept_altered)
    result = run.predict_study(input_path, mask)
    return _described(run, run_dir, input_path, result, sets)


def predict_explained(
    run: TrainedRun,
    study: Study,
    sets: SetOptions | None = None,
    class_name: str | None = None,
    run_dir: Path | None = None,
) -> tuple[dict, list[StudyMap]]:
    """`predict`'s result and the study's explanation maps (glioscope.explain) of class `class_name` (None: each
    patient's predicted class); the result's "explained" lists each map's class and focus. `run_dir`: the run
    as the user named it (default: its folder)."""
    inputs = run.method.study_inputs(run.recipe, run.record, study)
    prediction = run.apply(inputs)
    result = _described(run, run_dir or run.path, study.path, prediction, sets)
    class_index = None if class_name is None else run.class_names.index(class_name)
    maps = study_maps(run, inputs, class_index, study=study, prediction=prediction, notes=result["notes"])
    result["explained"] = [
        {
            "patient_id": m.patient_id,
            "class": m.cam_class if m.cam is not None else None,
            "sequence": m.sequence,
            "shape": list(m.image.shape),
            "focus_voxel": None if m.focus_voxel is None else list(m.focus_voxel),
            "ranked_slices": m.ranked_slices,
        }
        for m in maps
    ]
    return result, maps


def _described(run: TrainedRun, run_dir, input_path, result: Prediction, sets: SetOptions | None) -> dict:
    return {
        "run": str(run_dir),
        "recipe": run.recipe.name,
        "input": str(input_path),
        **describe(run, result, sets=sets, progress=True),
    }


def describe(
    run: TrainedRun, result: Prediction, folds: bool = False, sets: SetOptions | None = None, progress: bool = False
) -> dict:
    """What `predict` says of a study: classes, models, each patient (with `folds`, each fold model's probability
    too; an attention model's: its most attended slices, `attention`; its conformal prediction set at `sets`' level,
    glioscope.evaluate.conformal), every input found and every sample, and notes (a patient the run has seen is not
    an independent test; a package altered since export; how the sets were calibrated); how unlike the run's
    training data each patient is (glioscope.typicality; `progress`: while its calibration is made)."""
    patients = result.patients()
    conformal = set_fields(run.prediction_sets(sets), [p.probabilities for p in patients])
    seen = seen_in_training(run, result)
    unlike = assess(run, result, progress)
    names = list(result.per_fold)
    entries = []
    for p, in_set in zip(patients, conformal.entries):
        entries.append(
            {
                "patient_id": p.patient_id,
                "n_samples": int(len(p.rows)),
                **result.scores(p.probabilities),
                **in_set,
                **seen.of(p.patient_id),
                **unlike.of(p.patient_id),
            }
        )
    for entry, patient in zip(entries, patients):
        if folds:
            entry["folds"] = {f: result.scores(v) for f, v in patient.folds.items()}
        if patient.attention is not None:
            entry["attention"] = patient.ranked()
    explained = [ATTENTION_NOTE] if any(p.attention is not None for p in patients) else []
    label = run.folder.label()
    return {
        "title": label.title,
        "description": label.description,
        "task": label.task,
        "classes": run.class_names,
        "models": f"mean probability of {len(names)} fold model(s): {', '.join(names)}",
        "patients": entries,
        "conformal": conformal.described,
        "inputs": result.by_input(),
        result.inputs.kind: result.samples(),
        "notes": list(run.notes) + list(result.inputs.notes) + seen.notes + explained + conformal.notes + unlike.notes,
    }
