"""Predicting many studies at once: a cohort table, a folder of many patients, or several inputs.

    result = predict_batch(RUN, [cohort_or_folder, ...])     # one row per patient, every input accounted for
    write_batch(result, Path("predictions.csv"))              # and predictions.json beside it

Each input is read as `glioscope ingest` reads a source (any layout it knows: DICOM trees,
RSNA-MICCAI, BraTS, IXI, image folders, manifests), or taken as it is when it is a cohort
table (a folder with cohort.csv, or the CSV); labels are not needed. The run's plane and
sequence selection picks the series; its samples are made as in training, and every fold
model predicts every sample, in batches, with a progress bar. A patient's probability is
the mean over its samples and the fold models. Files and series that could not be used
are listed with their reasons, beside the patients. A patient seen in training (its id in
the run's cohort, or an image identical or near-identical to a training image) says why. An
attention model's patients also list their most attended slices (`attention`; in the CSV,
slices_that_decided: "#17 (0.31), #18 (0.22), ...", slice index and weight).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope import cohort
from glioscope.cohort import COHORT_FILE
from glioscope.errors import InputError
from glioscope.evaluate.conformal import SetOptions, set_fields
from glioscope.evaluate.degenerate import assess as same_for_all
from glioscope.ingest import ingest
from glioscope.trained import ATTENTION_NOTE, TrainedRun, decided_text, seen_in_training
from glioscope.typicality import assess, csv_columns
from glioscope.util import atomic


def _cohort_table(path: Path) -> bool:
    return (path / COHORT_FILE).is_file() or (path.is_file() and path.name == COHORT_FILE)


def read_inputs(inputs: list[Path], progress: bool = True) -> tuple[list[pd.DataFrame], list[dict], list[str]]:
    """(cohort rows of each input read, skipped files, notes); an input that cannot be read is a skip."""
    frames, skipped, notes = [], [], []
    for path in inputs:
        try:
            frame, skips, more = _rows(path, progress)
        except InputError as exc:  # one unusable input does not stop the others
            skipped.append({"path": str(path), "reason": str(exc)})
            continue
        frames.append(frame)
        skipped += skips
        notes += more
    return frames, skipped, notes


def many_studies(inputs: list[Path], progress: bool = True):
    """The read inputs (see read_inputs) when they are many studies — several inputs, a cohort table, a folder of
    more than one patient —, else None: one study, for `predict`'s single-study JSON."""
    path = Path(inputs[0])
    table = _cohort_table(path)
    if len(inputs) == 1 and not table and not path.is_dir():
        return None
    read = read_inputs(inputs, progress)
    frames = read[0]
    if len(inputs) == 1 and not table and (not frames or frames[0]["patient_id"].nunique() <= 1):
        return None  # one study (or not a layout ingest reads: predict says what is wrong with it)
    return read


def _rows(path: Path, progress: bool) -> tuple[pd.DataFrame, list[dict], list[str]]:
    """(cohort rows, skipped files, notes) of one input."""
    path = Path(path)
    if _cohort_table(path):
        return cohort.load(path), [], []
    frame, summary = ingest([path], None, progress=progress, echo=None)
    return frame, summary["skipped"], summary["notes"]


def predict_batch(
    run_dir: Path,
    inputs: list[Path],
    progress: bool = True,
    read=None,
    accept_altered: bool = False,
    sets: SetOptions | None = None,
) -> dict:
    """JSON-ready: one entry per patient (mean probability over its samples and the fold models, its prediction
    set), and the skips.

    `read`: the inputs already read (read_inputs), so that they are not read twice; `accept_altered`: a package
    altered since export is used anyway, and the notes say so; `sets`: the prediction sets' level (default 90%).
    """
    run = TrainedRun(run_dir, accept_altered)
    frames, skipped, notes = read if read is not None else read_inputs(inputs, progress)
    skipped, notes = list(skipped), list(notes)
    if not frames:
        raise InputError(None, f"none of the {len(inputs)} input(s) could be read; e.g. {skipped[0]['reason']}")
    frame = pd.concat(frames, ignore_index=True)
    frame["item_id"] = [f"item{k:06d}" for k in range(len(frame))]  # unique over all inputs
    wanted = run.selection()
    if wanted:
        chosen = cohort.select(frame, wanted)
        if len(chosen) < len(frame):
            notes.append(f"{len(frame) - len(chosen)} input row(s) are not in the run's selection {wanted}")
        frame = chosen
    if frame.empty:
        raise InputError(None, f"no input row matches the run's selection {wanted}")
    result = run.predict_rows(frame, None, progress)
    skipped += [{"path": s.path, "reason": s.reason} for s in result.inputs.skipped]
    seen = seen_in_training(run, result)
    unlike = assess(run, result, progress)
    conformal = set_fields(run.prediction_sets(sets), [p.probabilities for p in result.patients()])
    patients = [{**p, **c, **unlike.of(p["patient_id"])} for p, c in zip(_patients(result, seen), conformal.entries)]
    if any("attention" in p for p in patients):
        notes.append(ATTENTION_NOTE)
    notes += one_answer(patients, run.class_names)
    return {
        "run": str(run_dir),
        "recipe": run.recipe.name,
        "classes": run.class_names,
        "patients": patients,
        "conformal": conformal.described,
        "skipped": skipped,
        "notes": list(run.notes) + notes + list(result.inputs.notes) + seen.notes + conformal.notes + unlike.notes,
    }


def one_answer(patients: list[dict], names: list[str]) -> list[str]:
    """A note when every patient of the batch gets one score or one class (glioscope.evaluate.degenerate)."""
    probabilities = np.array([[p["probabilities"][n] for n in names] for p in patients], dtype=float)
    finding = same_for_all(probabilities, None, names)
    if not finding:
        return []
    if finding["finding"] == "one score":
        same = finding["detail"].split("(", 1)[1].rstrip(")")
        return [
            f"warning: the model gives all {len(patients)} patients the same probabilities ({same}): it does not tell them apart"
        ]
    return [
        f"{finding['detail'][0].upper()}{finding['detail'][1:]} ({len(patients)} patients): if they are not all of "
        f"one class, check the run's report for fold models that predict one class"
    ]


def _patients(result, seen) -> list[dict]:
    path_column = result.inputs.path_column
    entries = []
    for patient in result.patients():
        inputs = sorted(set(result.table.loc[patient.rows, path_column].astype(str)))
        scores = result.scores(patient.probabilities)
        entries.append(
            {
                "patient_id": patient.patient_id,
                "prediction": scores["prediction"],
                "probabilities": scores["probabilities"],
                "n_samples": int(len(patient.rows)),
                "n_inputs": len(inputs),
                "inputs": inputs,
                **seen.of(patient.patient_id),
            }
        )
        if patient.attention is not None:
            entries[-1]["attention"] = patient.ranked()
    return entries


def write_batch(result: dict, out: Path) -> tuple[Path, Path]:
    """OUT (CSV: one row per patient) and OUT with the suffix .json (everything, skips included), atomically."""
    out = Path(out)
    rows = [
        {
            "patient_id": p["patient_id"],
            "prediction": p["prediction"],
            **{f"prob_{n}": p["probabilities"][n] for n in result["classes"]},
            "prediction_set": "; ".join(p["prediction_set"]) if "prediction_set" in p else None,
            "uncertain": p.get("uncertain"),
            "n_samples": p["n_samples"],
            "n_inputs": p["n_inputs"],
            "seen_in_training": p["seen_in_training"],
            "seen_because": "; ".join(p.get("seen_because", [])),
            **csv_columns(p),
            **({"slices_that_decided": decided_text(p["attention"])} if "attention" in p else {}),
        }
        for p in result["patients"]
    ]
    columns = [
        "patient_id",
        "prediction",
        *[f"prob_{n}" for n in result["classes"]],
        "prediction_set",
        "uncertain",
        "n_samples",
        "n_inputs",
        "seen_in_training",
        "seen_because",
        *csv_columns({}),
        *(["slices_that_decided"] if any("attention" in p for p in result["patients"]) else []),
    ]
    with atomic.atomic_paths(out, out.with_suffix(".json")) as (table, everything):
        atomic.csv_to(table, pd.DataFrame(rows, columns=columns))
        everything.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return out, out.with_suffix(".json")
