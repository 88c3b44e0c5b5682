"""Apply a trained run to one new study: the mean probability of its fold models, per sample and per patient.

A patient is "seen in training" when its id is in the run's cohort (a package: its hashed ids) or when one of
its images is identical or near-identical to a training image (glioscope.leakcheck, by the fingerprints the run
or package keeps); `seen_because` says which, and the matching training images are listed.
"""

from __future__ import annotations

from pathlib import Path

from glioscope import leakcheck
from glioscope.leakcheck import SEEN_BY_ID, SEEN_BY_PIXELS
from glioscope.trained import Prediction, TrainedRun

SHOWN = 5  # matching training images listed per patient


def predict(run_dir: Path, input_path: Path, mask: Path | None = None, run: TrainedRun | None = None) -> dict:
    """JSON-ready result: per-sample and per-patient class probabilities (mean over fold models).

    `run`: the run already opened (the web app keeps its runs' fold models loaded).
    """
    run = run or TrainedRun(run_dir)
    result = run.predict_study(input_path, mask)
    return {"run": str(run_dir), "recipe": run.recipe.name, "input": str(input_path), **describe(run, result)}


def describe(run: TrainedRun, result: Prediction, folds: bool = False) -> dict:
    """What `predict` says of a study: classes, models, each patient (with `folds`, each fold model's probability
    too), every input found and every sample, and notes (a patient the run has seen is not an independent test)."""
    patients = result.patients()
    by_id = run.seen_patients([p.patient_id for p in patients])
    by_pixels, notes = pixel_matches(run, result)
    names = list(result.per_fold)
    entries = []
    for p in patients:
        reasons = [SEEN_BY_ID] * (p.patient_id in by_id) + [SEEN_BY_PIXELS] * (p.patient_id in by_pixels)
        entry = {
            "patient_id": p.patient_id,
            "n_samples": int(len(p.rows)),
            **result.scores(p.probabilities),
            "seen_in_training": bool(reasons),
            "seen_because": reasons,
        }
        if p.patient_id in by_pixels:
            entry["matching_training_images"] = by_pixels[p.patient_id][:SHOWN]
        entries.append(entry)
    if folds:
        for entry, patient in zip(entries, patients):
            entry["folds"] = {f: result.scores(v) for f, v in patient.folds.items()}
    return {
        "classes": run.class_names,
        "models": f"mean probability of {len(names)} fold model(s): {', '.join(names)}",
        "patients": entries,
        "inputs": result.by_input(),
        result.inputs.kind: result.samples(),
        "notes": list(result.inputs.notes) + seen_notes(by_id, by_pixels) + notes,
    }


def pixel_matches(run: TrainedRun, result: Prediction) -> tuple[dict[str, list[dict]], list[str]]:
    """The patients of `result` with an image identical or near-identical to a training image, by the fingerprints
    the run or package keeps (glioscope.leakcheck), each with its matches; and notes."""
    paths = result.table[result.inputs.path_column].astype(str).tolist()  # each input's file, in the inputs' order
    return leakcheck.training_matches(run.path, run.fingerprints(result.inputs), paths)


def seen_notes(by_id: set[str], by_pixels: dict[str, list[dict]]) -> list[str]:
    """Notes on the patients seen in training, by id and by pixels (the closest match named)."""
    notes = []
    if by_id:
        notes.append(f"patient(s) {', '.join(sorted(by_id))} were in this run's cohort: not an independent test")
    for patient, matches in sorted(by_pixels.items()):
        first = matches[0]
        what = first.get("input", first["sample"])
        distance = f", {first['bits_apart']} of 256 bits apart" if first["match"] != "identical" else ""
        notes.append(
            f"patient {patient}: {SEEN_BY_PIXELS} ({len(matches)} image(s); {what} is {first['match']} to "
            f"training image {first['training_image']}{distance}): not an independent test"
        )
    return notes
