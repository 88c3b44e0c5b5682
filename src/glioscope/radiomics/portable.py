"""A fitted radiomics classifier as plain arrays, and its probabilities from them.

scikit-learn persists models with pickle, which runs code when a file is loaded. A run folder
or model package holds instead the fitted pipeline's numbers (a .npz read with
allow_pickle=False): the features it takes, the imputer's medians, the features the variance
filter kept, then the scaler, the correlation filter and the logistic regression's coefficients,
or every tree of the forest (children, split features and thresholds, leaf class values).
`PortableClassifier.predict_proba` computes what the pipeline's `predict_proba` computes
(glioscope.radiomics.classifier.make_model's steps; tested equal to scikit-learn's within 1e-12).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import expit, softmax
from sklearn.pipeline import Pipeline

from glioscope.errors import InputError
from glioscope.util import atomic

FORMAT = "glioscope-radiomics-classifier-1"


@dataclass
class PortableClassifier:
    """The pipeline's parameters: `arrays` holds them by name (see `from_pipeline`)."""

    model: str  # logistic | ovr (one-vs-rest L1 logistic) | forest
    features: list[str]  # the input features, in order
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline, features: list[str]) -> PortableClassifier:
        steps = pipeline.named_steps
        arrays = {
            "medians": np.asarray(steps["impute"].statistics_, float),
            "kept": np.flatnonzero(steps["constant"].get_support()),
            "classes": np.asarray(pipeline.classes_),
        }
        if "forest" in steps:
            return cls("forest", list(features), {**arrays, **_trees(steps["forest"])})
        arrays.update(
            mean=steps["scale"].mean_, scale=steps["scale"].scale_, filtered=np.asarray(steps["filter"].keep_)
        )
        logistic = steps["logistic"]
        parts = getattr(logistic, "estimators_", None)
        if parts is None:
            return cls("logistic", list(features), {**arrays, "coef": logistic.coef_, "intercept": logistic.intercept_})
        return cls(
            "ovr",
            list(features),
            {
                **arrays,
                "coef": np.vstack([p.coef_ for p in parts]),
                "intercept": np.concatenate([p.intercept_ for p in parts]),
            },
        )

    @property
    def classes_(self) -> np.ndarray:
        """The class indices of the probability columns (scikit-learn's name, so that either model serves)."""
        return self.arrays["classes"]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, len(classes)) probabilities of feature rows in `features` order, as the fitted pipeline gives them."""
        a = self.arrays
        X = np.asarray(X, dtype=float)
        X = np.where(np.isnan(X), a["medians"], X)[:, a["kept"]]
        if self.model == "forest":
            return _forest_proba(a, X)
        X = ((X - a["mean"]) / a["scale"])[:, a["filtered"]]
        decision = X @ a["coef"].T + a["intercept"]
        if self.model == "logistic" and decision.shape[1] > 1:
            return softmax(decision, axis=1)
        p = expit(decision)
        if p.shape[1] == 1:  # two classes: one unit for the second
            return np.hstack([1 - p, p])
        return p / p.sum(axis=1, keepdims=True)  # one against the rest, normalised

    def save(self, path: Path) -> None:
        """As a .npz of plain arrays (written atomically)."""
        header = np.array([FORMAT, self.model], dtype="U64")
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, header=header, features=np.array(self.features, dtype=str), **self.arrays)

    @classmethod
    def load(cls, path: Path) -> PortableClassifier:
        """A classifier written by `save`; InputError naming the file for anything else."""
        try:
            with np.load(path, allow_pickle=False) as archive:
                content = {k: archive[k] for k in archive.files}
        except (OSError, ValueError) as exc:
            raise InputError(path, f"is not a radiomics classifier file ({exc})") from None
        header = content.pop("header", np.array([]))
        if len(header) != 2 or header[0] != FORMAT or header[1] not in ("logistic", "ovr", "forest"):
            raise InputError(path, f"is not a radiomics classifier file ({FORMAT} expected)")
        return cls(str(header[1]), [str(f) for f in content.pop("features")], content)


def _trees(forest) -> dict[str, np.ndarray]:
    """Every tree's nodes, concatenated; `offsets` marks where each tree starts."""
    trees = [e.tree_ for e in forest.estimators_]
    values = [t.value[:, 0, :] for t in trees]
    return {
        "offsets": np.cumsum([0] + [t.node_count for t in trees]),
        "left": np.concatenate([t.children_left for t in trees]),
        "right": np.concatenate([t.children_right for t in trees]),
        "feature": np.concatenate([t.feature for t in trees]),
        "threshold": np.concatenate([t.threshold for t in trees]),
        "value": np.concatenate(values),
        "tree_classes": np.asarray(forest.classes_),
    }


def _forest_proba(a: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """The forest's mean of its trees' leaf class fractions (trees compare float32 features, as scikit-learn does)."""
    X = X.astype(np.float32).astype(float)
    rows = np.arange(len(X))
    total = np.zeros((len(X), a["value"].shape[1]))
    offsets = a["offsets"]
    for start in offsets[:-1]:
        node = np.full(len(X), start)
        while True:
            inner = a["left"][node] != -1
            if not inner.any():
                break
            go_left = X[rows, np.maximum(a["feature"][node], 0)] <= a["threshold"][node]
            child = np.where(go_left, a["left"][node], a["right"][node]) + start
            node = np.where(inner, child, node)
        leaf = a["value"][node]
        norm = leaf.sum(axis=1, keepdims=True)
        total += leaf / np.where(norm == 0, 1.0, norm)
    return total / (len(offsets) - 1)
