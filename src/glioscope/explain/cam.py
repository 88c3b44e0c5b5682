"""The fold models' Grad-CAM of a sample set, averaged: what `glioscope.explain` puts on the study."""

from __future__ import annotations

import numpy as np

from glioscope.errors import GlioscopeError
from glioscope.evaluate.gradcam import grad_cam
from glioscope.models.build import input_normalisation

# Grad-CAM needs a backward pass per sample: a longer series is not explained.
MAX_SAMPLES = 256
_BATCH = 16


def ensemble_cam(run, samples, classes: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """Each sample's Grad-CAM of its class `classes[i]`, averaged over the fold models and scaled to [0, 1]
    per sample: (N, *input shape) float32, or (None, why not)."""
    n = len(samples)
    if n > MAX_SAMPLES:
        return None, f"Grad-CAM not computed: {n} samples, more than {MAX_SAMPLES}"
    normalisation = input_normalisation(run.recipe.model, run.recipe.data.normalize)
    dataset = samples.dataset(np.ones(n, bool), np.zeros(n, np.int64), None, normalisation)
    folds = run.folds(samples)
    chunks = []
    try:
        for start in range(0, n, _BATCH):
            rows = range(start, min(start + _BATCH, n))
            inputs = dataset.inputs(rows)
            chunks.append(sum(grad_cam(model, inputs, class_index=classes[list(rows)]) for _, model in folds))
    except GlioscopeError as exc:
        return None, f"Grad-CAM not available for this model: {exc}"
    total = np.concatenate(chunks)
    flat = total.reshape(n, -1)
    high = flat.max(axis=1, keepdims=True)
    flat = np.where(high > 0, flat / np.maximum(high, 1e-12), 0.0)
    return flat.reshape(total.shape).astype(np.float32), None
