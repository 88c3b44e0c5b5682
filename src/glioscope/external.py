"""External validation: a trained run applied, untouched, to a labelled cohort from elsewhere.

    external_test(RUN, COHORT, OUT)            # predictions, evaluation and report in the new folder OUT
    predict_external(RUN, COHORT, folder)      # the predictions alone

The external cohort goes through the run's own selection and preprocessing (any kind of
method: slices, volumes, radiomics features; glioscope.trained); every fold model predicts every sample. The headline model is the mean of the fold models (named as
the run's headline, e.g. "sdl/mean"); each fold model is reported too ("sdl/mean (fold0)").
OUT is a run-like folder (glioscope.rundir): the external rows (cohort.csv), the samples,
predictions.csv (fold "test"), run.json with what was checked.

Before anything is predicted:
- a model package must match its manifest (glioscope.rundir.seal); `accept_altered_package`
  tests anyway and stamps the statement and notes;
- the external labels must be the run's classes, or map onto them (`class_map`, e.g.
  {"LGG": "II"}); an unknown class is an error naming both sets;
- no patient id may be in the run's cohort (the leak check); `allow_shared_patients`
  tests anyway and stamps the result; a package without patient ids cannot be checked,
  and the statement says so;
- glioscope.leakcheck compares the images themselves (exact and near duplicates); when the
  images the run trained on are not available, the statement, the notes and the report say
  that duplicate images were NOT checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope import cohort, leakcheck, plan, typicality
from glioscope.errors import InputError, PatientLeakError
from glioscope.evaluate.conformal import SetOptions
from glioscope.evaluate.run import evaluate_run
from glioscope.report.external import write_external_report
from glioscope.rundir import CONFORMAL, DUPLICATES, SKIPPED, UNLIKE, RunFolder, prediction_table
from glioscope.trained import NO_PATIENT_IDS, TrainedRun
from glioscope.util import atomic

SHARED_PATIENTS_STAMP = (
    "NOT AN EXTERNAL TEST: patients of this cohort are also in the run's training cohort "
    "(allowed with --allow-shared-patients); results overestimate performance on new patients."
)


@dataclass
class ExternalSettings:
    """What the user says about an external test."""

    class_map: dict[str, str] = field(default_factory=dict)  # external label -> run class
    allow_shared_patients: bool = False
    allow_duplicates: bool = False
    accept_altered_package: bool = False  # a package altered since export (or without a manifest), stamped
    site_column: str | None = None  # the external cohort's column naming each patient's site (glioscope.sites)
    sets: SetOptions = field(default_factory=SetOptions)  # the prediction sets' level, and Mondrian or not


def external_test(
    run_dir: str | Path,
    cohort_path: str | Path,
    out: str | Path,
    settings=None,
    overwrite: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
    cache_dir: Path | None = None,
) -> Path:
    """Apply a trained run to a labelled external cohort: predictions, metrics with intervals and calibration,
    and a report beside the run's own CV figures, in the new folder `out`."""
    out = Path(out)
    with atomic.atomic_dir(out, overwrite=overwrite) as tmp:
        predict_external(Path(run_dir), Path(cohort_path), tmp, settings, progress=progress, cache_dir=cache_dir)
        evaluate_run(tmp, n_boot=n_boot, seed=seed, name=out.name, site_column=getattr(settings, "site_column", None))
        write_external_report(tmp)
    return out


def predict_external(
    run_dir: Path,
    cohort_path: Path,
    out: Path,
    settings: ExternalSettings | None = None,
    progress: bool = True,
    cache_dir: Path | None = None,
) -> Path:
    """Predict the external cohort with every fold model of `run_dir` into the (new, empty) folder `out`."""
    settings = settings or ExternalSettings()
    run, out = TrainedRun(run_dir, settings.accept_altered_package), Path(out)
    names = run.class_names
    frame, notes = plan.load_cohort(cohort_path, run.recipe.task, run.recipe.data)
    frame = _mapped(frame, names, settings.class_map, cohort_path)
    shared = _shared_patients(run, frame, settings.allow_shared_patients)
    inputs = run.rows_inputs(frame, Path(cache_dir) if cache_dir else run.recipe.data.cache_dir(), progress)
    training = run.training_fingerprints(progress)
    checked = training is not None
    duplicates = leakcheck.compare(training, run.fingerprints(inputs)) if checked else leakcheck.Duplicates()
    if not checked:
        notes.append(leakcheck.NOT_CHECKED)
    if duplicates.exact and not settings.allow_duplicates:
        raise PatientLeakError(
            f"{len(duplicates.exact)} image(s) of the external cohort are identical to images the "
            f"run trained on (e.g. {duplicates.exact[0][1]} = {duplicates.exact[0][0]}): the same "
            "patient under two ids? Remove them, or pass --allow-duplicates"
        )
    result = run.apply(inputs, progress)
    unlike = typicality.assess(run, result, progress)
    headline = run.headline
    notes = list(run.notes) + notes + _notes(inputs, shared, duplicates, settings) + unlike.notes
    statement = " ".join([*run.notes, _statement(shared, duplicates, checked)])
    folder = RunFolder(out)
    folder.write_inputs(run.recipe, frame, split_table(frame), {"statement": statement}, inputs)
    calibration = run.calibration()  # kept with the test: its coverage is of sets made from this calibration
    if calibration is not None:
        atomic.write_json(out / CONFORMAL, calibration)
    folder.write_record(
        run.record.derived(
            models=[headline, *[f"{headline} ({fold})" for fold in result.per_fold]],
            folds=[],
            leaky=bool(shared),
            split_statement=statement,
            patient_ids=cohort.has_patient_ids(cohort_path),
            notes=notes,
            samples={"kind": run.kind, "count": int(frame["patient_id"].nunique())},
            cohort=str(cohort_path),
            training=None,
            radiomics=None,
            package=None,
            external={
                "run": str(run.path.resolve()),
                "cohort": str(Path(cohort_path).resolve()),
                "class_map": settings.class_map,
                "shared_patients": shared or [],
                "patient_ids_checked": shared is not None,
                "package_altered": list(run.notes),
                "images": _images(duplicates, checked),
                "headline": headline,
                "operating_point": run.operating_point(),
                "unlike_training": typicality.summary(unlike),
                "conformal": None if calibration is None else vars(settings.sets),
            },
        )
    )
    folder.write_predictions(_predictions(result, names, headline))
    atomic.write_csv(out / DUPLICATES, duplicates.frame())
    atomic.write_csv(out / UNLIKE, typicality.table(unlike))
    return out


def _mapped(frame: pd.DataFrame, names: list[str], class_map: dict[str, str], cohort_path: Path) -> pd.DataFrame:
    """The external labels as the run's classes; InputError naming both sets when one does not map."""
    bad_targets = sorted(set(class_map.values()) - set(names))
    if bad_targets:
        raise InputError(None, f"--map names {', '.join(bad_targets)}, not a class of the run ({', '.join(names)})")
    labels = frame["label"].astype(str).map(lambda label: class_map.get(label, label))
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise InputError(
            cohort_path,
            f"has class(es) {', '.join(unknown)}, which the run does not know (its classes: "
            f"{', '.join(names)}); map them with --map, e.g. --map {unknown[0]}={names[0]}",
        )
    return frame.assign(label=labels)


def _shared_patients(run: TrainedRun, frame: pd.DataFrame, allowed: bool) -> list[str] | None:
    """Patients of the external cohort that are in the run's cohort, an error unless allowed; None when a package
    holds no patient ids."""
    seen = run.seen_patients(frame["patient_id"])
    if seen is None:
        return None
    shared = sorted(seen)
    if shared and not allowed:
        raise PatientLeakError(
            f"patient leak: {len(shared)} patient(s) of the external cohort are in the run's "
            f"cohort (e.g. {', '.join(shared[:3])}): an external test must not share patients "
            "with the training cohort (--allow-shared-patients tests anyway, stamped as not external)"
        )
    return shared


def split_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Every external row in the test partition (a split table, so that the folder reads like a run)."""
    return pd.DataFrame(
        {
            "item_id": frame["item_id"],
            "patient_id": frame["patient_id"],
            "label": frame["label"],
            "partition": "test",
            "fold": -1,
            "leaky": False,
        }
    )


def _predictions(result, names: list[str], headline: str) -> pd.DataFrame:
    """The headline (the fold models' mean) and each fold model, as the "test" fold of a predictions table."""
    inputs = result.inputs
    probs = {headline: result.ensemble, **{f"{headline} ({f})": p for f, p in result.per_fold.items()}}
    everything = np.ones(len(inputs), dtype=bool)
    return prediction_table(probs, inputs.keys(everything), inputs.targets(names), "test", names)


def _statement(shared: list[str] | None, duplicates: leakcheck.Duplicates, checked: bool) -> str:
    """The external test's split statement: what was checked, and found, by patient id and by image (`shared`
    None: a package without patient ids, which cannot be checked by id)."""
    if shared:
        return SHARED_PATIENTS_STAMP
    if not checked:
        images = "duplicate images were NOT checked (the images the run trained on are not available)"
    elif duplicates.exact:
        images = (
            f"{len(duplicates.exact)} image(s) are identical to images the run trained on (tested anyway with "
            "--allow-duplicates)"
        )
    elif duplicates.near:
        images = (
            f"no image is identical to one the run trained on, but {len(duplicates.near)} pair(s) are "
            "near-identical (see the notes)"
        )
    else:
        images = "no image is identical or near-identical to one the run trained on"
    if checked and duplicates.legacy:
        images += " (near duplicates looked for with an earlier hash only: see the notes)"
    ids = (
        "patient ids were not checked: the model package holds none (exported with --no-patient-ids), so a patient "
        "of this cohort may have been in its training data"
        if shared is None
        else "no patient of this cohort is in the run's cohort (checked by patient id)"
    )
    return f"External test: {ids}, and {images}; every fold model predicts every patient."


def _images(duplicates: leakcheck.Duplicates, checked: bool) -> dict:
    """run.json's account of the image check (what `glioscope test` prints)."""
    if not checked:
        return {"checked": False}
    return {
        "checked": True,
        "legacy_hash": duplicates.legacy,
        "near": duplicates.words(),
        "identical": len(duplicates.exact),
        "near_identical": len(duplicates.near),
        "patient_pairs": len(duplicates.patients),
        "patients": [list(p) for p in duplicates.patients[:20]],
    }


def _notes(inputs, shared: list[str] | None, duplicates, settings: ExternalSettings) -> list[str]:
    notes = list(inputs.notes)
    if shared is None:
        notes.append(NO_PATIENT_IDS)
    if inputs.skipped:
        notes.append(f"{len(inputs.skipped)} external item(s) could not be used ({SKIPPED})")
    if settings.class_map:
        notes.append("classes mapped: " + ", ".join(f"{a} → {b}" for a, b in settings.class_map.items()))
    if shared:
        notes.append(f"{len(shared)} patient(s) also in the run's cohort, tested anyway: {', '.join(shared[:5])}")
    return notes + duplicates.notes()
