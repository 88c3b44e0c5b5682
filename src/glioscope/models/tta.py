"""Test-time augmentation: a model's probabilities averaged over mirrored copies of its input.

    tta_probabilities(model, images, "hflip")   # [each reported model's (N, classes)], as `probabilities`

The recipe's `evaluate.tta` chooses the copies. `none`: the image alone (the probabilities are exactly
those of one pass). `hflip`: the image and its left-right mirror. `flips`: also its up-down mirror and
both. Mirrors flip the last two tensor axes: for 2D slices (N, C, H, W), W is the image's horizontal axis
(left-right) and H its vertical one; for 3D volumes (N, C, D, H, W) of glioscope.samples.volumes, W runs
from the patient's right to left and H from anterior to posterior, so `hflip` mirrors the brain's left
and right halves, and `flips` also its front and back; D (inferior-superior) is never flipped. The
probabilities of the copies are averaged, per reported model (SDL: each member and their mean), in
the order above. Cross-validation (glioscope.train.loop.Trainer.predict) and every road that applies
a trained run (glioscope.methods.deep) call this one function, so that they agree.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from glioscope.models.outputs import probabilities

MODES = ("none", "hflip", "flips")
FLIPS = {"none": [()], "hflip": [(), (-1,)], "flips": [(), (-1,), (-2,), (-2, -1)]}  # tensor axes flipped per copy
WORDS = {
    "none": None,
    "hflip": "mean of the image and its left-right mirror",
    "flips": "mean of the image, its left-right mirror, its up-down mirror and both",
}


def views(images: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """The copies of a batch (N, C, H, W) or (N, C, D, H, W) that `mode` averages over, the image first."""
    if mode not in FLIPS:
        raise ValueError(f"test-time augmentation: expected one of {', '.join(MODES)}, got {mode!r}")
    return [images.flip(axes) if axes else images for axes in FLIPS[mode]]


def tta_probabilities(
    model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, mode: str = "none"
) -> list[torch.Tensor]:
    """The class probabilities of each model `model` reports (glioscope.models.outputs.probabilities), averaged
    over the copies of `images` that `mode` names; `none`: one pass, untouched."""
    passes = [probabilities(model(view)) for view in views(images, mode)]
    if len(passes) == 1:
        return passes[0]
    return [torch.stack([p[k] for p in passes]).mean(0) for k in range(len(passes[0]))]


def note(mode: str) -> str | None:
    """What a run's record and report say about its test-time augmentation; None for none."""
    words = WORDS.get(mode)
    return f"test-time augmentation: {words} (evaluate.tta: {mode})" if words else None
