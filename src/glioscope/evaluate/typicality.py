"""How unlike a run's training data a patient is: distances in the fold models' feature space, calibrated on the
run's own held-out patients (conformal p-values), and the file that keeps the calibration.

For each fold model, a patient's vector is the mean of its inputs' feature vectors (Method.embeddings). The
reference is the fold's training patients: their vectors standardised by the reference's own mean and SD per
feature; a patient's distance is the mean, over its K nearest reference patients, of the Euclidean distance
divided by the square root of the number of features (a root-mean-square difference in reference SDs).
The calibration distances are every cross-validation patient's distance under the fold model that did not train
on it. A new patient's p-value under one fold model is (1 + #calibration distances >= its distance) / (n + 1)
(cross-conformal: the held-out patients of every fold pooled, so that a cohort of n patients gives p-values down
to 1 / (n + 1)); its score is the median over the fold models, and it is flagged below ALPHA.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glioscope.errors import InputError
from glioscope.util import atomic

ALPHA = 0.05  # flagged when farther than 95% of the run's own held-out patients would be
NEIGHBOURS = 5  # K: the reference patients a distance is averaged over (fewer when the reference is smaller)
FORMAT = "glioscope-typicality-1"
MIN_CALIBRATION = int(np.floor(1 / ALPHA))  # n + 1 > 1 / ALPHA: the fewest held-out patients that can give p < ALPHA


@dataclass
class Reference:
    """One fold model's training patients in its feature space."""

    vectors: np.ndarray  # (patients, D) each training patient's mean feature vector
    mean: np.ndarray
    sd: np.ndarray

    @classmethod
    def of(cls, vectors: np.ndarray) -> Reference:
        vectors = np.asarray(vectors, dtype=np.float64)
        sd = vectors.std(axis=0)
        return cls(vectors, vectors.mean(axis=0), np.where(sd > 1e-12, sd, 1.0))  # a constant feature: raw units

    def distances(self, vectors: np.ndarray) -> np.ndarray:
        """Each row's mean distance to its K nearest reference patients, in reference SDs per feature."""
        z_ref = (self.vectors - self.mean) / self.sd
        z = (np.asarray(vectors, dtype=np.float64) - self.mean) / self.sd
        squared = (z**2).sum(1)[:, None] + (z_ref**2).sum(1)[None, :] - 2 * z @ z_ref.T
        apart = np.sqrt(np.maximum(squared, 0.0)) / np.sqrt(z.shape[1])
        k = min(NEIGHBOURS, len(self.vectors))
        return np.sort(apart, axis=1)[:, :k].mean(axis=1)


@dataclass
class Calibration:
    """Every fold model's reference and the pooled held-out distances; `key` names the fold models' files."""

    references: dict[str, Reference]
    held_out: np.ndarray  # every calibration patient's distance under the fold model that did not train on it
    key: str

    def p_values(self, distances: np.ndarray) -> np.ndarray:
        """The conformal p-value of each distance among the held-out ones."""
        held = np.sort(self.held_out)
        at_least = len(held) - np.searchsorted(held, np.asarray(distances, dtype=np.float64), side="left")
        return (1 + at_least) / (len(held) + 1)

    def distance_threshold(self) -> float:
        """The distance a patient must exceed to be flagged (p < ALPHA): the (j+1)-th largest held-out distance,
        j the most held-out distances that may be at least as far for a p-value below ALPHA; inf when none can."""
        allowed = int(np.ceil(ALPHA * (len(self.held_out) + 1) - 1 - 1e-9)) - 1
        return float(np.sort(self.held_out)[::-1][allowed]) if allowed >= 0 else float("inf")

    def score(self, vectors: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(median p-value, median distance) over the fold models of patients' vectors {fold: (patients, D)}."""
        distances = np.vstack([self.references[fold].distances(v) for fold, v in vectors.items()])
        p = np.vstack([self.p_values(d) for d in distances])
        return np.median(p, axis=0), np.median(distances, axis=0)

    def save(self, path: Path) -> None:
        """As a .npz of plain arrays (no patient id), written atomically."""
        arrays = {"header": np.array([FORMAT, self.key], dtype="U128"), "held_out": self.held_out}
        arrays["folds"] = np.array(list(self.references), dtype="U64")
        for k, ref in enumerate(self.references.values()):
            arrays.update({f"vectors_{k}": ref.vectors, f"mean_{k}": ref.mean, f"sd_{k}": ref.sd})
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """A calibration written by `save`; an InputError naming the file for anything else."""
        try:
            with np.load(path, allow_pickle=False) as archive:
                a = {k: archive[k] for k in archive.files}
            header, folds = a["header"], [str(f) for f in a["folds"]]
            references = {f: Reference(a[f"vectors_{k}"], a[f"mean_{k}"], a[f"sd_{k}"]) for k, f in enumerate(folds)}
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(path, f"is not a typicality calibration ({type(exc).__name__}: {exc})") from None
        if len(header) != 2 or header[0] != FORMAT:
            raise InputError(path, f"is not a typicality calibration ({FORMAT} expected)")
        return cls(references, a["held_out"].astype(np.float64), str(header[1]))


def held_out_summary(path: Path) -> dict | None:
    """What a run report shows of a saved calibration: the held-out distances, their count and the threshold;
    None when there is none (or it cannot be read)."""
    if not Path(path).is_file():
        return None
    try:
        calibration = Calibration.load(path)
    except InputError:
        return None
    return {
        "held_out": calibration.held_out,
        "n": len(calibration.held_out),
        "folds": list(calibration.references),
        "distance_threshold": calibration.distance_threshold(),
        "alpha": ALPHA,
    }
