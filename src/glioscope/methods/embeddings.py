"""Where each kind of model's inputs sit in its own feature space (Method.embeddings), for glioscope.typicality.

A deep network's penultimate features (models.heads.Classifier.forward_features; an SDL model: its members'
concatenated); a radiomics or deep-feature classifier's features as its fold's standardisation sees them
(imputed, constant features dropped, scaled); an attention model's slice embeddings, averaged per patient.
"""

from __future__ import annotations

import numpy as np
import torch

from glioscope.models.build import input_normalisation
from glioscope.util.progress import progress_bar

_BATCH = 64


@torch.no_grad()
def penultimate(model: torch.nn.Module, batch: torch.Tensor) -> np.ndarray | None:
    """The features a network's last layer reads, (N, D); None for a network without a Classifier's structure."""
    members = getattr(model, "members", None)
    if members is not None:
        parts = [penultimate(member, batch) for member in members]
        return None if any(p is None for p in parts) else np.concatenate(parts, axis=1)
    if not callable(getattr(model, "forward_features", None)):
        return None
    return model.forward_features(batch).flatten(1).float().numpy()


def deep_embeddings(folds, inputs, recipe, progress: bool) -> dict[str, np.ndarray] | None:
    """Each fold network's penultimate features of every input, as `probabilities` feeds them (no test-time
    augmentation); None when a network cannot say."""
    normalisation = input_normalisation(recipe.model, recipe.data.normalize)
    dataset = inputs.dataset(np.ones(len(inputs), bool), np.zeros(len(inputs), np.int64), None, normalisation)
    parts: dict[str, list[np.ndarray]] = {fold: [] for fold, _ in folds}
    for start in progress_bar(range(0, len(inputs), _BATCH), desc="features", unit="batch", disable=not progress):
        batch = dataset.inputs(range(start, min(start + _BATCH, len(inputs))))
        for fold, model in folds:
            features = penultimate(model, batch)
            if features is None:
                return None
            parts[fold].append(features.astype(np.float32))
    return {fold: np.concatenate(chunks) for fold, chunks in parts.items()} if len(inputs) else None


def seen_by_classifier(model, X: np.ndarray) -> np.ndarray:
    """A PortableClassifier's input rows as its fitted pipeline sees them before the classifier: medians for the
    missing values, constant features dropped, then (a linear model) scaled and correlation-filtered."""
    a = model.arrays
    X = np.asarray(X, dtype=float)
    X = np.where(np.isnan(X), a["medians"], X)[:, a["kept"]]
    if "scale" in a:
        X = ((X - a["mean"]) / a["scale"])[:, a["filtered"]]
    return X


def classifier_embeddings(folds, inputs) -> dict[str, np.ndarray]:
    """Each fold's features as its classifier sees them; an attention model (no such step): each patient's mean
    slice embedding."""
    out = {}
    for fold, model in folds:
        if hasattr(model, "arrays"):
            out[fold] = seen_by_classifier(model, inputs.columns(model.features))
        else:
            out[fold] = np.vstack([bag.mean(axis=0) for bag in inputs.bags()])
    return out
