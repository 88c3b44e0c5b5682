"""MR contrasts from tissue fractions, then scanner effects: bias field, Rician noise, scaling."""

from __future__ import annotations

import numpy as np
import torch
import torchio as tio

from glioscope.synth import warp
from glioscope.synth.presets import SITES, Site

SEQUENCES = ("T1", "T1c", "T2", "FLAIR")

# Relative signal of each tissue (white matter on T1 ~ 0.9). T1: WM > GM > CSF, fat
# bright; T1c: enhancing tumour brighter than WM, necrosis dark; T2: fluid brightest;
# FLAIR: free fluid suppressed, oedema and infiltrative tumour brightest.
INTENSITY: dict[str, dict[str, float]] = {
    #                T1    T1c    T2   FLAIR
    "gm": dict(zip(SEQUENCES, (0.62, 0.64, 0.62, 0.64))),
    "wm": dict(zip(SEQUENCES, (0.90, 0.90, 0.44, 0.48))),
    "csf": dict(zip(SEQUENCES, (0.20, 0.22, 1.00, 0.08))),
    "csf_rim": dict(zip(SEQUENCES, (0.20, 0.30, 0.95, 0.10))),
    "skull": dict(zip(SEQUENCES, (0.05, 0.05, 0.05, 0.05))),
    "marrow": dict(zip(SEQUENCES, (0.85, 0.88, 0.55, 0.55))),
    "scalp": dict(zip(SEQUENCES, (1.00, 1.00, 0.75, 0.80))),
    "necrosis": dict(zip(SEQUENCES, (0.30, 0.30, 1.00, 0.45))),
    "non_enhancing": dict(zip(SEQUENCES, (0.50, 0.52, 0.86, 0.95))),
    "enhancing": dict(zip(SEQUENCES, (0.55, 1.45, 0.70, 0.82))),
    "oedema": dict(zip(SEQUENCES, (0.58, 0.60, 0.85, 1.00))),
}
TUMOUR = ("necrosis", "non_enhancing", "enhancing")
BASE_SCALE = {"T1": 900.0, "T1c": 900.0, "T2": 1300.0, "FLAIR": 1100.0}
MAX_VALUE = 4095  # 12 bits stored, as many MR scanners write

CONTRAST_JITTER = 0.04  # per-subject log-sd of each tissue's signal (scanner, protocol)
BIAS_COEFFICIENTS = 0.3  # TorchIO RandomBiasField, polynomial order 3
BIAS_GRID_MM = 12.0  # the cubic field is smooth: evaluate it this coarsely, then interpolate
NOISE_FRACTION = (0.01, 0.03)  # noise sd relative to white-matter signal
SCALE_RANGE = (0.7, 1.35)  # global intensity scaling


def synthesise(
    fractions: dict[str, np.ndarray], texture: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Noise-free images: the fraction-weighted tissue signals, tumour textured."""
    jitter = {t: np.exp(rng.normal(0, CONTRAST_JITTER, len(SEQUENCES))) for t in INTENSITY}
    names = list(fractions)
    weights = np.array([[INTENSITY[t][s] * jitter[t][i] for t in names] for i, s in enumerate(SEQUENCES)], np.float32)
    lesion = np.array([t in TUMOUR or t == "oedema" for t in names])
    stack = np.stack([fractions[t] for t in names]).reshape(len(names), -1)
    # One small matrix product per part instead of a loop over tissues and sequences.
    images = weights[:, ~lesion] @ stack[~lesion] + (weights[:, lesion] @ stack[lesion]) * (1 + texture.reshape(-1))
    return {sequence: images[i].reshape(texture.shape) for i, sequence in enumerate(SEQUENCES)}


def scanner(
    images: dict[str, np.ndarray], affine: np.ndarray, rng: np.random.Generator, site: Site = SITES["A"]
) -> dict[str, np.ndarray]:
    """Apply a bias field (TorchIO, seeded by the caller), Rician noise and a global scaling, as `site`'s scanner."""
    shape = next(iter(images.values())).shape
    fields = bias_fields(list(images), shape, affine, BIAS_COEFFICIENTS * site.bias)
    out = {}
    for name, clean in images.items():
        sigma = rng.uniform(*NOISE_FRACTION) * INTENSITY["wm"][name] * site.noise
        # Magnitude of a complex signal with Gaussian noise in both channels: Rician.
        # (In place: these are the largest arrays of the simulation.)
        real = rng.standard_normal(shape, dtype=np.float32)
        real *= sigma
        real += clean * fields[name]
        imaginary = rng.standard_normal(shape, dtype=np.float32)
        imaginary *= sigma
        np.square(real, out=real)
        real += np.square(imaginary, out=imaginary)
        np.sqrt(real, out=real)
        real *= BASE_SCALE[name] * rng.uniform(*SCALE_RANGE) * site.scale
        out[name] = np.clip(real, 0, MAX_VALUE, out=real)
    return out


def bias_fields(
    names: list[str], shape, affine: np.ndarray, coefficients: float = BIAS_COEFFICIENTS
) -> dict[str, np.ndarray]:
    """One smooth multiplicative field per sequence from TorchIO's RandomBiasField.

    The field is a low-order polynomial over the field of view: TorchIO evaluates it on
    a coarse grid and it is interpolated onto the image grid.
    """
    coarse_shape, coarse_affine, factor = warp.coarse_grid(shape, affine, BIAS_GRID_MM)
    ones = torch.ones((1, *coarse_shape))
    subject = tio.Subject({name: tio.ScalarImage(tensor=ones.clone(), affine=coarse_affine) for name in names})
    biased = tio.RandomBiasField(coefficients=coefficients, order=3)(subject)
    fields = warp.upsample(np.concatenate([biased[name].data.numpy() for name in names]), shape, factor)
    return dict(zip(names, fields))
