"""External validation: a trained run applied, untouched, to a labelled cohort from elsewhere.

    predict_external(RUN, COHORT, folder)      # glioscope.workflows.external_test: + evaluation and report

The external cohort goes through the run's own selection and preprocessing; every fold
model predicts every sample. The headline model is the mean of the fold models (named as
the run's headline, e.g. "sdl/mean"); each fold model is reported too ("sdl/mean (fold0)").
OUT is a run-like folder (glioscope.rundir): the external rows (cohort.csv), the samples,
predictions.csv (fold "test"), run.json with what was checked.

Before anything is predicted:
- the external labels must be the run's classes, or map onto them (`class_map`, e.g.
  {"LGG": "II"}); an unknown class is an error naming both sets;
- no patient id may be in the run's cohort (the leak check); `allow_shared_patients`
  tests anyway and stamps the result;
- glioscope.leakcheck compares the images themselves (exact and near duplicates).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope import __version__, cohort, leakcheck, plan
from glioscope.errors import InputError, PatientLeakError
from glioscope.evaluate.operating_point import youden_threshold
from glioscope.models.build import input_normalisation, reported_names
from glioscope.predict import fold_models, fold_probabilities
from glioscope.rundir import RunFolder, prediction_table
from glioscope.samples import build_samples

SHARED_PATIENTS_STAMP = ("NOT AN EXTERNAL TEST: patients of this cohort are also in the run's training cohort "
                         "(allowed with --allow-shared-patients); results overestimate performance on new patients.")


@dataclass
class ExternalSettings:
    """What the user says about an external test."""

    class_map: dict[str, str] = field(default_factory=dict)  # external label -> run class
    allow_shared_patients: bool = False
    allow_duplicates: bool = False


def predict_external(run_dir: Path, cohort_path: Path, out: Path, settings: ExternalSettings | None = None,
                     progress: bool = True, cache_dir: Path | None = None) -> Path:
    """Predict the external cohort with every fold model of `run_dir` into the (new, empty) folder `out`."""
    settings = settings or ExternalSettings()
    run, out = RunFolder(run_dir), Path(out)
    recipe, info = run.recipe(), run.info()
    names = list(info["class_names"])
    frame, notes = plan.load_cohort(cohort_path, recipe.task, recipe.data)
    frame = _mapped(frame, names, settings.class_map, cohort_path)
    shared = _shared_patients(run, frame, settings.allow_shared_patients)
    cache = Path(cache_dir) if cache_dir else recipe.data.cache_dir()
    samples = build_samples(frame, recipe.data, cache, progress)
    training = run.training_fingerprints(recipe.data, progress)
    duplicates = leakcheck.compare(training, samples) if training is not None else leakcheck.Duplicates()
    if training is None:
        notes.append("the images the run trained on are not available: identical and near-identical images "
                     "were not looked for")
    if duplicates.exact and not settings.allow_duplicates:
        raise PatientLeakError(f"{len(duplicates.exact)} image(s) of the external cohort are identical to images the "
                               f"run trained on (e.g. {duplicates.exact[0][1]} = {duplicates.exact[0][0]}): the same "
                               "patient under two ids? Remove them, or pass --allow-duplicates")
    models = fold_models(run, recipe.model, names, samples.channels)
    per_fold = fold_probabilities(models, samples, input_normalisation(recipe.model, recipe.data.normalize), progress)
    headline = reported_names(recipe.model, recipe.name)[-1]
    predictions = _predictions(samples, names, headline, per_fold)
    notes += _notes(samples, shared, duplicates, settings)
    folder = RunFolder(out)
    folder.write_inputs(recipe, frame, split_table(frame), {"statement": _statement(shared)}, samples)
    folder.write_info(_info(run, recipe, names, headline, list(per_fold), frame, cohort_path, shared, notes,
                            settings, operating_point(run, names, headline)))
    folder.write_predictions(predictions)
    duplicates.write(out)
    return out


def _mapped(frame: pd.DataFrame, names: list[str], class_map: dict[str, str], cohort_path: Path) -> pd.DataFrame:
    """The external labels as the run's classes; InputError naming both sets when one does not map."""
    bad_targets = sorted(set(class_map.values()) - set(names))
    if bad_targets:
        raise InputError(None, f"--map names {', '.join(bad_targets)}, not a class of the run ({', '.join(names)})")
    labels = frame["label"].astype(str).map(lambda label: class_map.get(label, label))
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise InputError(cohort_path, f"has class(es) {', '.join(unknown)}, which the run does not know (its classes: "
                                      f"{', '.join(names)}); map them with --map, e.g. --map {unknown[0]}={names[0]}")
    return frame.assign(label=labels)


def _shared_patients(run: RunFolder, frame: pd.DataFrame, allowed: bool) -> list[str]:
    """Patients of the external cohort that are in the run's cohort; an error unless allowed."""
    shared = sorted(run.seen_patients(frame["patient_id"]))
    if shared and not allowed:
        raise PatientLeakError(f"patient leak: {len(shared)} patient(s) of the external cohort are in the run's "
                               f"cohort (e.g. {', '.join(shared[:3])}): an external test must not share patients "
                               "with the training cohort (--allow-shared-patients tests anyway, stamped as not external)")
    return shared


def split_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Every external row in the test partition (a split table, so that the folder reads like a run)."""
    return pd.DataFrame({"item_id": frame["item_id"], "patient_id": frame["patient_id"], "label": frame["label"],
                         "partition": "test", "fold": -1, "leaky": False})


def _predictions(samples, names: list[str], headline: str, per_fold: dict[str, np.ndarray]) -> pd.DataFrame:
    """The headline (the fold models' mean) and each fold model, as the "test" fold of a predictions table."""
    probs = {headline: np.mean(list(per_fold.values()), axis=0), **{f"{headline} ({f})": p for f, p in per_fold.items()}}
    everything = np.ones(len(samples), dtype=bool)
    return prediction_table(probs, samples.keys(everything), samples.targets(names), "test", names)


def operating_point(run: RunFolder, names: list[str], headline: str) -> dict | None:
    """Binary runs: the threshold chosen on the run's own CV predictions (patient level, pooled), by Youden's J
    (a model package carries the one chosen when it was exported)."""
    if len(names) != 2:
        return None
    if not (run / "predictions.csv").is_file():
        return run.info().get("operating_point")
    from glioscope.evaluate.aggregate import to_patients

    cv = run.predictions(names)
    cv = cv[(cv["set"] == "cv") & (cv["model"] == headline)]
    if cv.empty:
        return None
    patients = to_patients(cv, by=("fold",))
    threshold = youden_threshold(patients["target"].to_numpy(), patients[f"prob_{names[1]}"].to_numpy())
    return {"threshold": threshold, "positive_class": names[1],
            "chosen_on": f"the run's cross-validation predictions of {headline} (patient level, all folds pooled, "
                         f"{len(patients)} patients), maximising Youden's J (sensitivity + specificity - 1)"}


def _statement(shared: list[str]) -> str:
    if shared:
        return SHARED_PATIENTS_STAMP
    return ("External test: no patient of this cohort is in the run's cohort (checked by patient id), and no image "
            "is identical to one the run trained on; every fold model predicts every patient.")


def _notes(samples, shared: list[str], duplicates, settings: ExternalSettings) -> list[str]:
    notes = list(samples.notes)
    if samples.skipped:
        notes.append(f"{len(samples.skipped)} external item(s) could not be used (samples_skipped.csv)")
    if settings.class_map:
        notes.append("classes mapped: " + ", ".join(f"{a} → {b}" for a, b in settings.class_map.items()))
    if shared:
        notes.append(f"{len(shared)} patient(s) also in the run's cohort, tested anyway: {', '.join(shared[:5])}")
    return notes + duplicates.notes()


def _info(run: RunFolder, recipe, names, headline, folds, frame, cohort_path, shared, notes, settings,
          operating_point) -> dict:
    trained = run.info()
    return {
        "recipe": recipe.name, "task": trained.get("task"), "label": trained.get("label"), "class_names": names,
        "models": [headline, *[f"{headline} ({fold})" for fold in folds]], "folds": [], "leaky": bool(shared),
        "split_statement": _statement(shared), "seed_tables": trained.get("seed_tables"),
        "caveat": trained.get("caveat"), "patient_ids": cohort.has_patient_ids(cohort_path), "notes": notes,
        "samples": {"kind": trained.get("samples", {}).get("kind"), "count": int(frame["patient_id"].nunique())},
        "external": {"run": str(run.path.resolve()), "cohort": str(Path(cohort_path).resolve()),
                     "class_map": settings.class_map,
                     "shared_patients": shared, "headline": headline, "operating_point": operating_point},
        "created": datetime.datetime.now().isoformat(timespec="seconds"), "glioscope_version": __version__,
        "cohort": str(cohort_path),
    }
