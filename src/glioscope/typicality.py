"""How unlike the run's training data each predicted patient is, with a warning beyond a stated threshold.

    unlike = assess(run, result)          # after run.apply / predict_study / predict_rows
    unlike.of(patient_id)                 # {"unlike_training": {p_value, distance, threshold, warning} or None}
    unlike.notes                          # what the scores mean, who is flagged, or why nothing can be told

The calibration (glioscope.evaluate.typicality: the method) is made once per run from its own cohort and split:
every cross-validation patient through the fold models (Method.embeddings), each fold's training patients the
reference, its held-out patients the calibration. It is kept in RUN/typicality.npz with a digest of the fold
models' files, and made again when they change; a model package carries the run's (glioscope.export). When it
cannot be made (the cohort's images are gone, a kind of model without a feature space, fewer held-out patients
than a p-value below the threshold needs), every output says that it cannot tell, and why.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from glioscope.errors import GlioscopeError
from glioscope.methods.base import Method
from glioscope.evaluate.typicality import ALPHA, MIN_CALIBRATION, NEIGHBOURS, Calibration, Reference
from glioscope.rundir import COHORT, INFO, METRICS, REPORT, SPLITS, TYPICALITY
from glioscope.util import csvfiles

CANNOT_TELL = "cannot tell how unlike the training data this is"
_DIGESTS: dict[tuple, str] = {}  # (file, size, mtime) -> SHA-256: a web app scores many uploads with one run
_UNTOLD: dict[tuple, str] = {}  # (run folder, models' digest) -> why it cannot be measured: not tried again per upload


class Untold(Exception):
    """Why a run cannot tell how unlike its training data an input is."""


@dataclass
class Unlike:
    """Each patient's score ({} when nothing can be told) and the notes an output carries."""

    entries: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    reason: str | None = None  # why nothing can be told; None when the scores are there

    def of(self, patient_id: str) -> dict:
        """A patient's entry: its score, or null and why nothing can be told."""
        entry = self.entries.get(str(patient_id))
        if entry is not None:
            return {"unlike_training": entry}
        return {"unlike_training": None, "unlike_training_note": f"{CANNOT_TELL}: {self.reason or 'not measured'}"}


def models_key(run, folder=None) -> str:
    """A digest of the fold models' files (name and content) of the run (or of `folder`, a package of the same
    kind), so that a retrained fold remakes the calibration."""
    whole = hashlib.sha256()
    for fold, path in run.method.fold_files(folder or run.folder):
        stat = path.stat()
        memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if memo not in _DIGESTS:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            _DIGESTS[memo] = digest.hexdigest()
        whole.update(f"{fold}:{_DIGESTS[memo]};".encode())
    return whole.hexdigest()


def calibration(run, progress: bool = True) -> Calibration:
    """The run's calibration: the one kept in the folder when it belongs to these fold models, else made from the
    run's cohort and kept; Untold when neither can be had."""
    path, key = run.folder / TYPICALITY, models_key(run)
    if path.is_file():
        try:
            kept = Calibration.load(path)
        except GlioscopeError as exc:
            kept, why = None, str(exc)
        else:
            why = f"{TYPICALITY} was made with other fold models"
        if kept is not None and kept.key == key:
            return kept
        if not (run.folder / COHORT).is_file():
            raise Untold(why)
    if not (run.folder / COHORT).is_file():
        raise Untold(
            f"this model package carries no {TYPICALITY} (exported by an earlier version, or from a run that could "
            f"not be measured: its {INFO} notes say why)"
        )
    if type(run.method).embeddings is Method.embeddings:  # before decoding a whole cohort for nothing
        raise Untold(f"the models of this run ({run.method.kind}) give no feature space to measure it in")
    memo = (str(run.path.resolve()), key)
    if memo in _UNTOLD:
        raise Untold(_UNTOLD[memo])
    try:
        made = _calibrate(run, key, progress)
    except Untold as why:
        _UNTOLD[memo] = str(why)
        raise
    except (GlioscopeError, KeyError, ValueError, OSError) as exc:  # e.g. a run folder of an earlier version
        _UNTOLD[memo] = f"the run's cohort could not be measured again ({type(exc).__name__}: {exc})"
        raise Untold(_UNTOLD[memo]) from None
    try:
        made.save(path)
    except OSError:  # a read-only run folder: measured again next time
        return made
    _refresh_report(run)
    return made


def _calibrate(run, key: str, progress: bool) -> Calibration:
    splits = csvfiles.read(run.folder / SPLITS)
    splits = splits[splits["partition"].astype(str) == "cv"]
    fold_of = splits.groupby(splits["patient_id"].astype(str))["fold"].first().astype(int)
    if len(fold_of) < MIN_CALIBRATION:  # before decoding a whole cohort for a calibration that could flag nothing
        raise Untold(
            f"the run has {len(fold_of)} held-out patient(s); at least {MIN_CALIBRATION} are needed for a "
            f"p-value below {ALPHA}"
        )
    cohort = run.folder.cohort()
    frame = cohort[cohort["patient_id"].astype(str).isin(fold_of.index)].reset_index(drop=True)
    if progress:
        print(
            f"measuring the run's {len(fold_of)} cross-validation patients in its fold models' feature space "
            f"(once: kept in {TYPICALITY})",
            file=sys.stderr,
            flush=True,
        )
    try:
        inputs = run.rows_inputs(frame, run.recipe.data.cache_dir(), progress)
    except GlioscopeError as exc:
        raise Untold(f"the run's cohort images cannot be read again ({exc})") from None
    if len(inputs) == 0:
        raise Untold("none of the run's cohort images can be read again")
    vectors = _patient_vectors(run, inputs, progress)
    patients = pd.Index(next(iter(vectors.values())).index)
    references, held_out = {}, []
    for fold, table in vectors.items():
        number = int(fold.removeprefix("fold")) if fold.removeprefix("fold").isdigit() else None
        held = fold_of.reindex(patients).to_numpy() == number
        if number is None or held.all() or not held.any():
            continue  # a model of no cross-validation fold (or one without training patients here)
        references[fold] = Reference.of(table.to_numpy()[~held])
        held_out.append(references[fold].distances(table.to_numpy()[held]))
    if not references:
        raise Untold("no fold model matches a cross-validation fold of the run's split")
    return Calibration(references, np.concatenate(held_out), key)


def _patient_vectors(run, inputs, progress: bool) -> dict[str, pd.DataFrame]:
    """Each fold model's feature vectors of the inputs, averaged per patient (rows: patient ids, sorted)."""
    found = run.method.embeddings(run.folds(inputs), inputs, run.recipe, run.record, progress)
    if found is None:
        raise Untold(f"the models of this run ({run.method.kind}) give no feature space to measure it in")
    patients = inputs.table["patient_id"].astype(str).to_numpy()
    return {fold: pd.DataFrame(v).groupby(patients, sort=True).mean() for fold, v in found.items()}


def _refresh_report(run) -> None:
    """The run report shows the calibration: written again once it is made."""
    if not ((run.folder / REPORT).is_file() and (run.folder / METRICS).is_file()):
        return
    from glioscope.evaluate.run import load_metrics
    from glioscope.report import write_report

    try:
        metrics = load_metrics(run.path)
        write_report(run.path, run.folder.gradcam_panels(), metrics.get("n_boot") or 1000, metrics.get("seed") or 0)
    except (GlioscopeError, OSError, KeyError):
        return  # the report stays as it was; the outputs still state the threshold


def export_calibration(run, package, progress: bool = True) -> list[str]:
    """Write the run's calibration into a package folder (bound to the package's fold model files); the notes of
    a package that cannot carry one."""
    try:
        made = calibration(run, progress)
    except Untold as why:
        return [f"the package carries no {TYPICALITY}: its predictions {CANNOT_TELL} ({why})"]
    Calibration(made.references, made.held_out, models_key(run, package)).save(package / TYPICALITY)
    return []


def assess(run, result, progress: bool = False) -> Unlike:
    """How unlike the run's training data each patient of `result` (a glioscope.trained.Prediction) is."""
    try:
        made = calibration(run, progress)
        if len(made.held_out) < MIN_CALIBRATION:
            raise Untold(
                f"the run has {len(made.held_out)} held-out patient(s); at least {MIN_CALIBRATION} are needed for a "
                f"p-value below {ALPHA}"
            )
        vectors = _patient_vectors(run, result.inputs, progress)
        vectors = {fold: v for fold, v in vectors.items() if fold in made.references}
        if not vectors:
            raise Untold(f"none of the fold models is in {TYPICALITY}")
    except Untold as why:
        return Unlike(notes=[f"unlike_training: {CANNOT_TELL}: {why}"], reason=str(why))
    patients = list(next(iter(vectors.values())).index)
    p, distance = made.score({fold: v.to_numpy() for fold, v in vectors.items()})
    entries = {
        str(patient): {
            "p_value": round(float(pv), 4),
            "distance": round(float(d), 4),
            "threshold": ALPHA,
            "warning": bool(pv < ALPHA),
        }
        for patient, pv, d in zip(patients, p, distance)
    }
    return Unlike(entries, explained(made, [k for k, e in entries.items() if e["warning"]]))


def explained(made: Calibration, flagged: list[str]) -> list[str]:
    """The notes of scored patients: what the p-value is, the threshold, and who is beyond it."""
    notes = [
        f"unlike_training: p_value is the share of the run's own {len(made.held_out)} held-out patients that were at "
        f"least as far from the training patients in the fold models' feature space (median over "
        f"{len(made.references)} fold model(s); distance: in reference SDs per feature, to the {NEIGHBOURS} nearest); "
        f"warning when p_value < {ALPHA} (distance beyond about {made.distance_threshold():.3g})"
    ]
    if flagged:
        shown = ", ".join(flagged[:10]) + (f" and {len(flagged) - 10} more" if len(flagged) > 10 else "")
        notes.append(
            f"patient(s) {shown}: unlike the run's training data (p < {ALPHA}): the prediction may not hold for them"
        )
    return notes


def warning_line(patient: dict) -> str | None:
    """One line for a person reading a patient's prediction (an entry of `predict`'s JSON): the warning, or why
    nothing can be told; None when the patient is like the training data."""
    entry = patient.get("unlike_training")
    if entry is None:
        note = patient.get("unlike_training_note") or CANNOT_TELL
        return note[0].upper() + note[1:]
    if entry["warning"]:
        return (
            f"Unlike the training data: farther from the run's training patients than {1 - entry['threshold']:.0%} "
            f"of the run's own held-out patients (p = {entry['p_value']:.3f} < {entry['threshold']}); this "
            "prediction may not hold."
        )
    return None


def csv_columns(patient: dict) -> dict:
    """A patient's score as table columns (empty where nothing can be told); csv_columns({}) gives their names."""
    entry = patient.get("unlike_training") or {}
    return {f"unlike_{key}": entry.get(key) for key in ("p_value", "distance", "threshold", "warning")}


def summary(unlike: Unlike) -> dict:
    """What an external test's record keeps: the threshold, patients scored and flagged, or why none could be."""
    flagged = sum(e["warning"] for e in unlike.entries.values())
    scored = len(unlike.entries)
    return {
        "threshold": ALPHA,
        "patients": scored,
        "flagged": int(flagged),
        "share_flagged": round(flagged / scored, 4) if scored else None,
        "median_p_value": round(float(np.median([e["p_value"] for e in unlike.entries.values()])), 4)
        if scored
        else None,
        "note": None if unlike.reason is None else f"{CANNOT_TELL}: {unlike.reason}",
    }


def table(unlike: Unlike) -> pd.DataFrame:
    """One row per patient scored: patient_id, p_value, distance, threshold, warning."""
    rows = [{"patient_id": patient, **entry} for patient, entry in sorted(unlike.entries.items())]
    return pd.DataFrame(rows, columns=["patient_id", "p_value", "distance", "threshold", "warning"])
