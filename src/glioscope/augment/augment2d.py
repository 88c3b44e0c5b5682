"""2D augmentation with torchvision transforms v2, built from a recipe's `augment` block.

Per-image transforms work on uint8 (C, H, W) tensors in the dataset; geometric ones
on whole float batches (augment/batch.py); normalisation comes last.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from glioscope.augment.batch import BatchRandomAffine
from glioscope.augment.svhn import random_policy
from glioscope.errors import GlioscopeError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_train_transform(augment: dict) -> v2.Compose | None:
    """Per-image random transforms on uint8 (C, H, W) tensors; None when there are none.

    The geometric ones (rotation, zoom, shift, flips) are not here but in
    `build_batch_affine`, which transforms a whole batch at once.
    """
    steps: list = []
    if augment.get("autoaugment"):
        if str(augment["autoaugment"]).lower() != "svhn":
            raise GlioscopeError(f"augment.autoaugment: only 'svhn' is supported, got {augment['autoaugment']!r}")
        steps.append(random_policy())
    if augment.get("brightness"):
        low, high = augment["brightness"]
        steps.append(RandomBrightness(float(low), float(high)))
    blur = augment.get("gaussian_blur")
    if blur:
        sizes = blur if isinstance(blur, (list, tuple)) else [blur]
        for size in sizes:
            if int(size) % 2 == 0:
                raise GlioscopeError(f"augment.gaussian_blur: kernel sizes must be odd, got {size}")
        # seed 000's optional filter: one of the kernel sizes, sigma as OpenCV derives it from the size
        steps.append(v2.RandomChoice([v2.GaussianBlur(int(s), sigma=0.3 * ((int(s) - 1) * 0.5 - 1) + 0.8) for s in sizes]))
    return v2.Compose(steps) if steps else None


class RandomBrightness(torch.nn.Module):
    """Scale an image's intensities by a factor drawn uniformly from [low, high], any channel count.

    What torchvision's ColorJitter(brightness=...) does to a uint8 image (multiply, clamp to
    0..255), without its limit to 1 or 3 channels (the MGMT recipes stack four sequences).
    """

    def __init__(self, low: float, high: float):
        super().__init__()
        if not 0 <= low <= high:
            raise GlioscopeError(f"augment.brightness: need 0 <= low <= high, got [{low}, {high}]")
        self.low, self.high = low, high

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        factor = float(torch.empty(1).uniform_(self.low, self.high))
        scaled = image.float() * factor
        if image.dtype == torch.uint8:
            return scaled.clamp_(0, 255).to(torch.uint8)  # truncated, as torchvision does
        return scaled.clamp_(0, 1)


def build_batch_affine(augment: dict) -> BatchRandomAffine | None:
    """Random rotation (+-degrees), zoom, shift and flips, drawn per image, applied per batch."""
    affine = BatchRandomAffine(
        degrees=float(augment.get("rotation") or 0),
        scale=augment.get("zoom"),
        translate=float(augment.get("shift") or 0),
        hflip=float(augment.get("hflip") or 0),
        vflip=float(augment.get("vflip") or 0),
    )
    return affine if affine else None


def normalisation(name: str | None, channels: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(mean, std) shaped (C, 1, 1) for 'imagenet'; None for no normalisation."""
    if not name or str(name).lower() == "none":
        return None
    if str(name).lower() != "imagenet":
        raise GlioscopeError(f"data.normalize: expected 'imagenet' or 'none', got {name!r}")
    mean = torch.tensor(IMAGENET_MEAN if channels == 3 else [sum(IMAGENET_MEAN) / 3] * channels)
    std = torch.tensor(IMAGENET_STD if channels == 3 else [sum(IMAGENET_STD) / 3] * channels)
    return mean.view(-1, 1, 1), std.view(-1, 1, 1)
