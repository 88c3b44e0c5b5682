"""Conformal prediction sets at patient level, calibrated on a run's own cross-validation (crepes).

    calibration = cv_calibration(folder, names, headline)     # what RUN/conformal.json stores
    sets = PredictionSets(calibration, SetOptions(level=0.9, mondrian=False))
    sets.entry(probabilities)      # {"prediction_set": ["II", "III"], "uncertain": True}
    coverage(sets.sets(P), y)      # empirical coverage with its Clopper-Pearson interval

Calibration: the headline model's out-of-fold patient probabilities, pooled over the folds (the
rows the operating point is chosen on), and the non-conformity score 1 - p(true class) of each
patient. A class c enters a new patient's set when the share of calibration patients (of class c
alone, Mondrian) whose score is at least 1 - p(c), counting the new patient, is at least 1 - level
(crepes' ConformalClassifier, p-values without smoothing: the same probabilities always give the
same set, and coverage is at least the level on exchangeable data). The level is the user's, at
use: the calibration keeps the scores, not a threshold.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np

from glioscope.errors import GlioscopeError
from glioscope.evaluate.operating_point import cv_patients
from glioscope.rundir import CONFORMAL, RunFolder
from glioscope.util import atomic

DEFAULT_LEVEL = 0.90
CAVEAT = (
    "the calibration scores came from single fold models on the patients they did not train on, while a new "
    "prediction is the mean of the fold models (less extreme where the folds disagree): the level is not guaranteed "
    "for the mean; glioscope test measures the coverage it reaches"
)

NO_SETS = (
    "no prediction sets: the run has no conformal calibration (no cross-validation predictions of its headline "
    "model, or a package exported before glioscope stored one)"
)


@dataclass(frozen=True)
class SetOptions:
    """The level of the prediction sets (0 < level < 1) and whether they are class-conditional (Mondrian)."""

    level: float = DEFAULT_LEVEL
    mondrian: bool = False

    def __post_init__(self):
        if not (isinstance(self.level, (int, float)) and 0 < float(self.level) < 1):
            raise GlioscopeError(
                f"--level must be a coverage strictly between 0 and 1 (e.g. 0.9 for 90%), got {self.level!r}"
            )


def cv_calibration(folder: RunFolder, names: list[str], headline: str) -> dict | None:
    """The calibration of a run's headline model from its cross-validation predictions (patient level, folds
    pooled); None without cross-validation predictions of it (a package, an external test)."""
    patients = cv_patients(folder, names, headline)
    if patients is None:
        return None
    probs = patients[[f"prob_{n}" for n in names]].to_numpy(float)
    target = patients["target"].to_numpy(int)
    scores = 1.0 - probs[np.arange(len(target)), target]
    order = np.lexsort((target, scores))  # sorted: the file says nothing of which patient had which score
    return {
        "model": headline,
        "class_names": list(names),
        "n_patients": int(len(target)),
        "n_per_class": {n: int((target == k).sum()) for k, n in enumerate(names)},
        "n_folds": int(patients["fold"].nunique()),
        "score": "1 - p(true class)",
        "scores": [round(float(s), 8) for s in scores[order]],
        "true_class": [int(t) for t in target[order]],
        "chosen_on": f"the run's cross-validation predictions of {headline} (patient level, "
        f"{patients['fold'].nunique()} folds pooled, {len(target)} patients)",
    }


def write_calibration(folder: RunFolder, names: list[str], headline: str | None) -> dict | None:
    """RUN/conformal.json from the run's cross-validation (nothing without one); returns what was written."""
    calibration = cv_calibration(folder, names, headline) if headline else None
    if calibration is not None:
        atomic.write_json(folder / CONFORMAL, calibration)
    return calibration


def stored_calibration(folder: RunFolder, names: list[str], headline: str) -> dict | None:
    """A run's or package's calibration: RUN/conformal.json, else (a run evaluated by an earlier version) derived
    from its cross-validation predictions; None when neither is there."""
    path = folder / CONFORMAL
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if list(data["class_names"]) != list(names) or len(data["scores"]) != len(data["true_class"]):
                raise ValueError("its classes or its lists do not match the run's")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise GlioscopeError(f"{path}: not a conformal calibration of this run ({exc})") from None
        return data
    return cv_calibration(folder, names, headline)


def _classifier(alphas: np.ndarray, bins: np.ndarray | None):
    with warnings.catch_warnings():  # crepes sets a global warnings filter on import: keep it inside
        from crepes import ConformalClassifier

        return ConformalClassifier().fit(alphas, bins=bins)


class PredictionSets:
    """Prediction sets of patient probabilities from a stored calibration at the user's level."""

    def __init__(self, calibration: dict, options: SetOptions = SetOptions()):
        self.calibration, self.options = calibration, options
        self.names = list(calibration["class_names"])
        scores = np.asarray(calibration["scores"], float)
        self.true_class = np.asarray(calibration["true_class"], int)
        self.classifier = _classifier(scores, self.true_class if options.mondrian else None)

    def sets(self, probabilities: np.ndarray) -> np.ndarray:
        """(N, classes) booleans: class c is in patient i's set."""
        alphas = 1.0 - np.atleast_2d(np.asarray(probabilities, float))
        level = float(self.options.level)
        if not self.options.mondrian:
            return self.classifier.predict_set(alphas, confidence=level, smoothing=False).astype(bool)
        columns = [
            self.classifier.predict_set(alphas[:, c], bins=np.full(len(alphas), c), confidence=level, smoothing=False)
            for c in range(len(self.names))
        ]
        return np.stack(columns, axis=1).astype(bool)

    def entry(self, probabilities: np.ndarray) -> dict:
        """One patient's set as JSON: the classes, most probable first, and whether it is uncertain (two or more)."""
        chosen = self.sets(probabilities)[0]
        order = np.argsort(-np.asarray(probabilities, float), kind="stable")
        members = [self.names[k] for k in order if chosen[k]]
        return {"prediction_set": members, "uncertain": len(members) > 1}

    def describe(self) -> dict:
        """How the sets were made, for an output's JSON."""
        c = self.calibration
        n, level = c["n_patients"], float(self.options.level)
        counts = c["n_per_class"] if self.options.mondrian else {"all": n}
        always = sorted(k for k, m in counts.items() if (m + 1) * (1 - level) < 1)
        kind = "Mondrian (class-conditional)" if self.options.mondrian else "standard (split conformal)"
        said = {
            "level": level,
            "mondrian": bool(self.options.mondrian),
            "method": kind,
            "n_patients": n,
            "n_per_class": c["n_per_class"],
            "model": c["model"],
            "calibrated_on": c["chosen_on"],
            "caveat": CAVEAT,
        }
        if always:
            said["too_few"] = (
                f"too few calibration patients ({', '.join(f'{k}: {counts[k]}' for k in always)}) for a level of "
                f"{level:g}: {'every class' if not self.options.mondrian else 'those classes'} will be in every set"
            )
        return said

    def note(self) -> str:
        """The calibration in one line, for an output's notes."""
        d = self.describe()
        return (
            f"prediction sets: {d['method']} conformal at {d['level']:.0%}, calibrated on {d['calibrated_on']}; "
            f"a set of more than one class is uncertain; {CAVEAT}" + (f"; {d['too_few']}" if "too_few" in d else "")
        )


@dataclass
class SetFields:
    """What an output adds for its patients' sets: each patient's fields, the calibration described, notes."""

    entries: list[dict]
    described: dict | None
    notes: list[str]


def set_fields(sets: PredictionSets | None, probabilities: list[np.ndarray]) -> SetFields:
    """Each patient's prediction set (nothing without a calibration, and a note saying so)."""
    if sets is None:
        return SetFields([{} for _ in probabilities], None, [NO_SETS])
    return SetFields([sets.entry(p) for p in probabilities], sets.describe(), [sets.note()])


def clopper_pearson(k: int, n: int) -> list[float | None]:
    """The exact 95% interval of k successes in n."""
    if n == 0:
        return [None, None]
    from scipy.stats import binomtest

    interval = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95)
    return [float(interval.low), float(interval.high)]


def coverage(sets: np.ndarray, target: np.ndarray, names: list[str], options: SetOptions) -> dict:
    """Empirical coverage of prediction sets (with its 95% Clopper-Pearson interval), the shares of uncertain (two
    or more classes) and empty sets, beside the nominal level; per class with Mondrian sets."""
    target = np.asarray(target, int)
    covered = sets[np.arange(len(target)), target]
    size = sets.sum(axis=1)
    result = {
        "level": float(options.level),
        "mondrian": bool(options.mondrian),
        "n": int(len(target)),
        "covered": int(covered.sum()),
        "coverage": float(covered.mean()) if len(target) else None,
        "ci": clopper_pearson(covered.sum(), len(target)),
        "uncertain": float((size > 1).mean()) if len(target) else None,
        "empty": float((size == 0).mean()) if len(target) else None,
        "mean_set_size": float(size.mean()) if len(target) else None,
    }
    if options.mondrian:
        result["per_class"] = {
            name: {
                "n": int((target == k).sum()),
                "covered": int(covered[target == k].sum()),
                "coverage": float(covered[target == k].mean()) if (target == k).any() else None,
                "ci": clopper_pearson(covered[target == k].sum(), (target == k).sum()),
            }
            for k, name in enumerate(names)
        }
    return result


def coverage_curve(calibration: dict, probabilities: np.ndarray, target: np.ndarray, options: SetOptions) -> dict:
    """Coverage and the share of uncertain sets at levels 0.50, 0.55, ..., 0.95, 0.99 (the report's figure)."""
    levels = [*np.round(np.arange(0.5, 0.951, 0.05), 2), 0.99]
    rows = []
    for level in levels:
        at = SetOptions(float(level), options.mondrian)
        found = coverage(PredictionSets(calibration, at).sets(probabilities), target, calibration["class_names"], at)
        rows.append({k: found[k] for k in ("level", "coverage", "ci", "uncertain", "empty")})
    return {"mondrian": options.mondrian, "levels": rows}


def evaluated_sets(folder: RunFolder, info: dict, names: list[str], patients) -> dict | None:
    """What evaluation does with prediction sets: a run with cross-validation writes its calibration (conformal.json);
    an external test made with sets (run.json's external.conformal) gets its coverage, for metrics.json."""
    external = info.get("external") or {}
    if not external.get("conformal"):
        write_calibration(folder, names, (info.get("models") or [None])[-1])
        return None
    if not (folder / CONFORMAL).is_file():
        return None
    options = SetOptions(external["conformal"]["level"], bool(external["conformal"]["mondrian"]))
    calibration = stored_calibration(folder, names, external["headline"])
    rows = patients[(patients["set"] == "test") & (patients["model"] == external["headline"])]
    probabilities = rows[[f"prob_{n}" for n in names]].to_numpy(float)
    target = rows["target"].to_numpy(int)
    sets = PredictionSets(calibration, options)
    return {
        **coverage(sets.sets(probabilities), target, names, options),
        "model": external["headline"],
        "calibration": sets.describe(),
        "curve": coverage_curve(calibration, probabilities, target, options),
    }
