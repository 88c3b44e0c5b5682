"""Class weights of the loss (train.class_weights)."""

from __future__ import annotations

import numpy as np
import torch


def class_weights(mode: str, targets: np.ndarray, n_classes: int) -> torch.Tensor | None:
    """none | complement (W_c = 1 - n_c / N, the spatio-spatial paper) | inverse (N / (C n_c))."""
    if mode == "none":
        return None
    counts = np.bincount(targets, minlength=n_classes).astype(float)
    if mode == "complement":
        weights = 1.0 - counts / counts.sum()
    elif mode == "inverse":
        weights = counts.sum() / (n_classes * np.maximum(counts, 1))
    else:
        raise ValueError(f"train.class_weights: choose none, complement or inverse, got {mode!r}")
    return torch.tensor(weights, dtype=torch.float32)
