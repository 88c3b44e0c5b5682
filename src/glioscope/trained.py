"""A trained run applied: one object for a run folder or a model package, whatever its kind of method.

    run = TrainedRun("runs/sdl")                  # or a model package (glioscope export)
    result = run.predict_study("new/study/")      # one study (glioscope.io.study): predict, the web app
    result = run.predict_rows(cohort_rows)        # cohort rows: batch prediction, external tests
    result.ensemble                               # the fold models' mean probability of every input
    result.patients()                             # per patient: its inputs, the ensemble's and each fold's probability

The run's recipe and record say how new data becomes the method's inputs (slices, volumes or
radiomics features: glioscope.methods); every fold model predicts every input; the ensemble is
the mean over the fold models per input, then over a patient's inputs (weighted by the recipe's
vote when it has one), as cross-validation aggregates them. `predict`, batch prediction, `test`,
`serve` and `export` use this and add only their own concerns (JSON, tables, the viewer, leak
checks, packaging).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope import leakcheck, methods
from glioscope.errors import InputError
from glioscope.evaluate.aggregate import patient_mean
from glioscope.evaluate.conformal import PredictionSets, SetOptions, stored_calibration
from glioscope.evaluate.operating_point import cv_operating_point
from glioscope.io.study import read_study
from glioscope.leakcheck import SEEN_BY_ID, SEEN_BY_PIXELS
from glioscope.rundir import CONFIG, INFO, METADATA, RunFolder, check_package

NO_PATIENT_IDS = (
    "this model package holds no patient ids (exported with --no-patient-ids): whether a patient was in its "
    "training data cannot be checked (seen_in_training: null)"
)


@dataclass
class PatientResult:
    """One patient's rows among the inputs, the ensemble's probability and each fold model's."""

    patient_id: str
    rows: np.ndarray
    probabilities: np.ndarray
    folds: dict[str, np.ndarray] = field(default_factory=dict)
    attention: list[dict] | None = None  # its most weighed samples, where the method can say (Method.explain)

    def ranked(self) -> list[dict] | None:
        """The most weighed samples as JSON (their thumbnails left out); None where the method cannot say."""
        return (
            None if self.attention is None else [{k: v for k, v in a.items() if k != "image"} for a in self.attention]
        )


@dataclass
class Prediction:
    """Every fold model's probabilities of a set of inputs (a SampleSet, or a method's own set with its table)."""

    inputs: object
    per_fold: dict[str, np.ndarray]
    class_names: list[str]
    explained: dict[str, list[dict]] | None = None  # patient id -> its most weighed samples (Method.explain)

    @cached_property
    def ensemble(self) -> np.ndarray:
        """The fold models' mean probability of every input (N, classes)."""
        return np.mean(list(self.per_fold.values()), axis=0)

    @cached_property
    def table(self) -> pd.DataFrame:
        """The inputs' table, indexed 0..N-1."""
        return self.inputs.table.reset_index(drop=True)

    def patients(self) -> list[PatientResult]:
        """Every patient, sorted by id: the mean (or the recipe's weighted vote) of its inputs' probabilities."""
        weights = self.inputs.vote_weights()
        results = []
        for patient, group in self.table.groupby("patient_id", sort=True):
            rows = group.index.to_numpy()
            vote = None if weights is None else weights[rows]
            results.append(
                PatientResult(
                    str(patient),
                    rows,
                    patient_mean(self.ensemble[rows], vote),
                    {f: patient_mean(p[rows], vote) for f, p in self.per_fold.items()},
                    None if self.explained is None else self.explained.get(str(patient)),
                )
            )
        return results

    def by_input(self) -> list[dict]:
        """Every input given: each series, volume or image (or patient's features) with its probability, then the
        files that could not be used with their reasons."""
        weights = self.inputs.vote_weights()
        entries = []
        for _, group in self.table.groupby(self.inputs.item_column, sort=False):
            first, rows = group.iloc[0], group.index.to_numpy()
            mean = patient_mean(self.ensemble[rows], None if weights is None else weights[rows])
            entries.append(
                {
                    "path": str(first[self.inputs.path_column]),
                    "patient_id": str(first["patient_id"]),
                    "series_id": str(first.get("series_id", "")),
                    "status": "predicted",
                    "n_samples": int(len(group)),
                    **self.scores(mean),
                }
            )
        return entries + [{"path": s.path, "status": "skipped", "reason": s.reason} for s in self.inputs.skipped]

    def samples(self) -> list[dict]:
        """Every input sample (a slice, a volume, a patient's features) with its probability."""
        return [{**self.inputs.describe(i), **self.scores(self.ensemble[i])} for i in range(len(self.inputs))]

    def scores(self, p: np.ndarray) -> dict:
        """A probability vector as JSON: per class, and the class predicted."""
        return {
            "probabilities": {n: round(float(v), 6) for n, v in zip(self.class_names, p)},
            "prediction": self.class_names[int(np.argmax(p))],
        }


class TrainedRun:
    """A run folder or model package of any kind of method, ready to apply (see the module docstring).

    A package is checked against its manifest first (glioscope.rundir.seal): one altered since export, or
    without a manifest, is an InputError unless `accept_altered`, and then `notes` says so for every output.
    Then the fold models' files are checked against run.json, config.yaml and a package's metadata.json.
    """

    def __init__(self, path: str | Path, accept_altered: bool = False):
        self.folder = RunFolder(path)
        self.path = self.folder.path
        self.notes = check_package(self.folder, accept_altered)  # before anything in it is believed
        config = self.folder.config()
        self.method = methods.method_of_config(config, self.path).bind(self.folder)
        self.recipe = self.method.recipe_from_config(config)
        self.record = self.folder.record()
        self.class_names = list(self.record.class_names)
        self.takes = self.method.check_folds(self.folder, self.recipe, self.record)
        if (self.folder / METADATA).is_file():
            check_metadata(self.folder / METADATA, self.method.input_words(self.recipe, self.record), self)
        self._folds: dict[tuple, list] = {}

    @property
    def headline(self) -> str:
        """The model the run reports first (its fold models' mean is named after it)."""
        return self.record.models[-1]

    @property
    def kind(self) -> str:
        """The kind of the run's inputs: slices, volumes or radiomics."""
        return self.record.samples.get("kind") or self.recipe.data.kind

    def model_files(self) -> list[tuple[str, Path]]:
        """(fold, file) of every fold model; an InputError when there is none."""
        return self.method.fold_files(self.folder)

    def selection(self) -> dict[str, list[str]]:
        """The plane and sequence the run's recipe selects (what a batch of new studies is filtered by)."""
        return {k: v for k, v in self.recipe.data.selection().items() if k in ("plane", "sequence")}

    def rows_inputs(self, frame: pd.DataFrame, cache_dir: Path | None = None, progress: bool = True):
        """The model inputs of cohort rows (`cache_dir` None: decoded afresh)."""
        return self.method.inputs(self.recipe, self.record, frame, cache_dir, progress)

    def study_inputs(self, path: str | Path, mask: str | Path | None = None):
        """The model inputs of the study at `path` (glioscope.io.study), with `mask` when the recipe needs one."""
        return self.method.study_inputs(self.recipe, self.record, read_study(path, mask))

    def folds(self, inputs) -> list[tuple[str, object]]:
        """The fold models, loaded once per model files and input channels (a web app applies a run many times)."""
        key = (tuple((str(p), p.stat().st_mtime_ns) for _, p in self.model_files()), getattr(inputs, "channels", 0))
        if key not in self._folds:
            self._folds = {key: self.method.load_folds(self.folder, self.recipe, self.record, inputs)}
        return self._folds[key]

    def apply(self, inputs, progress: bool = False) -> Prediction:
        """Every fold model's probabilities of `inputs`; an InputError naming the fold models that give NaN or
        infinite ones (broken weights: no answer, and no NaN in a JSON)."""
        folds = self.folds(inputs)
        per_fold = self.method.probabilities(folds, inputs, self.recipe, self.record, progress)
        broken = [str(path) for fold, path in self.model_files() if not np.isfinite(per_fold.get(fold, 0.0)).all()]
        if broken:
            raise InputError(
                broken[0],
                f"gives NaN or infinite probabilities: the fold model's weights are broken "
                f"({len(broken)} of {len(per_fold)} fold models); the run cannot be applied",
            )
        return Prediction(inputs, per_fold, self.class_names, self.method.explain(inputs, per_fold))

    def predict_study(self, path: str | Path, mask: str | Path | None = None) -> Prediction:
        return self.apply(self.study_inputs(path, mask))

    def predict_rows(self, frame: pd.DataFrame, cache_dir: Path | None = None, progress: bool = True) -> Prediction:
        return self.apply(self.rows_inputs(frame, cache_dir, progress), progress)

    def seen_patients(self, patient_ids) -> set[str] | None:
        """The given patients that the run trained or validated on (a package: by hashed id); None when a package
        holds no ids (`export --no-patient-ids`): nobody can tell."""
        return self.folder.seen_patients(patient_ids)

    def fingerprints(self, inputs):
        """The leak check's fingerprints of inputs made by this run (glioscope.leakcheck)."""
        return self.method.fingerprints(inputs)

    def training_fingerprints(self, progress: bool = True):
        """The fingerprints of what the run trained on; None when its files are no longer there."""
        return self.method.training_fingerprints(self.folder, self.recipe, self.record, progress)

    def operating_point(self) -> dict | None:
        """A binary run's threshold, chosen on its own cross-validation (a package: the one it carries)."""
        return cv_operating_point(self.folder, self.class_names, self.headline) or self.record.operating_point

    def calibration(self) -> dict | None:
        """The prediction sets' calibration on the run's own CV (glioscope.evaluate.conformal); None without one."""
        return stored_calibration(self.folder, self.class_names, self.headline)

    def prediction_sets(self, options: SetOptions | None = None) -> PredictionSets | None:
        """Conformal prediction sets at `options`' level (default 90%, standard); None without a calibration."""
        calibration = self.calibration()
        return None if calibration is None else PredictionSets(calibration, options or SetOptions())


ATTENTION_NOTE = (
    "attention: each patient's slices ranked by the weight the model's attention gave them (mean over the fold "
    "models; a patient's weights sum to 1 over all its slices, the top ones are listed): where the model looked, "
    "not why"
)


def decided_text(ranked: list[dict]) -> str:
    """A patient's most weighed samples in a line: "#17 (0.31), #18 (0.22), ..." (a slice id where no index)."""
    return ", ".join(
        f"{'#' + str(a['slice_index']) if a.get('slice_index') is not None else a.get('slice_id')} "
        f"({a['attention']:.2f})"
        for a in ranked
    )


def seen_notes(seen: set[str] | None) -> list[str]:
    """What an output's notes say of the patients a run has seen (TrainedRun.seen_patients), or that none can tell."""
    if seen is None:
        return [NO_PATIENT_IDS]
    return [f"patient(s) {', '.join(sorted(seen))} were in this run's cohort: not an independent test"] if seen else []


@dataclass
class Seen:
    """Which patients of a prediction the run saw in training: by id (None: a package without ids cannot tell), and
    by the pixels of their images (glioscope.leakcheck, from the fingerprints the run or package keeps)."""

    by_id: set[str] | None
    by_pixels: dict[str, list[dict]]
    notes: list[str]

    def of(self, patient_id: str, shown: int = 5) -> dict:
        """A patient's entry: seen_in_training (True, False, or None when nothing can tell), why, what matched."""
        reasons = [SEEN_BY_ID] * (self.by_id is not None and patient_id in self.by_id)
        reasons += [SEEN_BY_PIXELS] * (patient_id in self.by_pixels)
        seen = True if reasons else None if self.by_id is None else False
        entry = {"seen_in_training": seen, "seen_because": reasons}
        if patient_id in self.by_pixels:
            entry["matching_training_images"] = self.by_pixels[patient_id][:shown]
        return entry


def seen_in_training(run: TrainedRun, result: Prediction) -> Seen:
    """The patients of `result` that `run` saw in training, by id and by pixels, with the notes that say so."""
    by_id = run.seen_patients([p.patient_id for p in result.patients()])
    paths = result.table[result.inputs.path_column].astype(str).tolist()  # each input's file, in the inputs' order
    by_pixels, notes = leakcheck.training_matches(run.path, run.fingerprints(result.inputs), paths)
    for patient, matches in sorted(by_pixels.items()):
        first = matches[0]
        distance = f", {first['bits_apart']} of 256 bits apart" if first["match"] != "identical" else ""
        notes.append(
            f"patient {patient}: {SEEN_BY_PIXELS} ({len(matches)} image(s); {first.get('input', first['sample'])} is "
            f"{first['match']} to training image {first['training_image']}{distance}): not an independent test"
        )
    return Seen(by_id, by_pixels, seen_notes(by_id) + notes)


def check_metadata(path: Path, words: dict, run: TrainedRun) -> None:
    """A package's metadata.json against run.json's classes, config.yaml's input and the weights' channels."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["network_data_format"]
        image, pred = data["inputs"]["image"], data["outputs"]["pred"]
        said = {
            "outputs.pred.num_channels": pred["num_channels"],
            "outputs.pred.channel_def": pred["channel_def"],
            "inputs.image.num_channels": image["num_channels"],
            "inputs.image.spatial_shape": image["spatial_shape"],
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"cannot be read as a model package's metadata ({type(exc).__name__}: {exc})") from None
    names = run.class_names
    truth = {
        "outputs.pred.num_channels": (len(names), f"{INFO}'s classes"),
        "outputs.pred.channel_def": ({str(k): n for k, n in enumerate(names)}, f"{INFO}'s classes"),
        "inputs.image.num_channels": (run.takes.get("channels"), f"the fold models' input ({CONFIG}, weights)"),
        "inputs.image.spatial_shape": (words.get("shape"), f"{CONFIG}'s data section"),
    }
    for key, (expected, source) in truth.items():
        if expected is not None and said[key] != expected:
            raise InputError(path, f"network_data_format {key} is {said[key]!r}, but {source} give {expected!r}")
