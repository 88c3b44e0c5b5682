"""2D augmentation with torchvision transforms v2, built from a recipe's `augment` section.

Per-image transforms work on uint8 (C, H, W) tensors in the dataset; geometric ones
on whole float batches (augment/batch.py); normalisation comes last (augment/prep.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torchvision.transforms import v2

from glioscope.augment.batch import BatchRandomAffine
from glioscope.augment.settings import AugmentSettings
from glioscope.augment.svhn import expansion, random_policy
from glioscope.errors import GlioscopeError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TensorFlow's EfficientNet-Lite models: (x - 127) / 128 on 0..255 pixels, every channel alike.
TFLITE_MEAN, TFLITE_STD = 127 / 255, 128 / 255


def settings_of(augment: AugmentSettings | Mapping) -> AugmentSettings:
    """AugmentSettings, from a mapping of some of its fields when given one."""
    return augment if isinstance(augment, AugmentSettings) else AugmentSettings(**augment)


def build_train_transform(augment: AugmentSettings | Mapping) -> v2.Compose | None:
    """Per-image random transforms on uint8 (C, H, W) tensors; None when there are none.

    The geometric ones (rotation, zoom, shift, flips) are not here but in
    `build_batch_affine`, which transforms a whole batch at once.
    """
    augment = settings_of(augment)
    steps: list = []
    if augment.autoaugment == "svhn":
        steps.append(AnyChannels(random_policy()))
    if augment.brightness:
        steps.append(RandomBrightness(*augment.brightness))
    blur = augment.gaussian_blur
    if blur:
        sizes = blur if isinstance(blur, tuple) else (blur,)
        # the SDL paper's optional filter: one of the kernel sizes, sigma as OpenCV derives it from the size
        steps.append(v2.RandomChoice([v2.GaussianBlur(s, sigma=0.3 * ((s - 1) * 0.5 - 1) + 0.8) for s in sizes]))
    return v2.Compose(steps) if steps else None


def fixed_expansion(name: str | None) -> list:
    """Offline expansions a recipe may name: "svhn" (the AutoAugment paper's 56 variants), or none."""
    return [AnyChannels(variant) for variant in expansion()] if name == "svhn" else []


class AnyChannels(torch.nn.Module):
    """A torchvision transform made for 1- or 3-channel images (AutoAugment's Contrast, Equalize,
    AutoContrast refuse others) on any channel count: an image of another count (four stacked
    sequences, 2.5D slices) goes through as a batch of one-channel images, so that every channel
    gets the same op, magnitude and geometry, each channel's intensities adjusted on their own."""

    def __init__(self, transform):
        super().__init__()
        self.transform = transform

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-3] in (1, 3):
            return self.transform(image)
        return self.transform(image.unsqueeze(-3)).squeeze(-3)

    def extra_repr(self) -> str:
        return repr(self.transform)


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


def build_batch_affine(augment: AugmentSettings | Mapping) -> BatchRandomAffine | None:
    """Random rotation (+-degrees), zoom, shift and flips, drawn per image, applied per batch."""
    augment = settings_of(augment)
    affine = BatchRandomAffine(
        degrees=augment.rotation, scale=augment.zoom, translate=augment.shift, hflip=augment.hflip, vflip=augment.vflip
    )
    return affine if affine else None


def normalisation(name: str | None, channels: int, depth: int = 1) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(mean, std) shaped (C, 1, 1) for 'imagenet' or 'tflite' (a model's own: efficientnet_lite0's); None for none.

    Three channels take ImageNet's RGB statistics, any other count their mean. 2.5D slices (`depth`
    slices per channel, grouped per channel: glioscope.samples.slices.context) take the statistics of
    their `channels // depth` channels, each repeated over its group.
    """
    if not name or name == "none":
        return None
    if name == "tflite":
        return torch.full((channels, 1, 1), TFLITE_MEAN), torch.full((channels, 1, 1), TFLITE_STD)
    if name != "imagenet":
        raise GlioscopeError(f"normalisation: expected 'imagenet', 'tflite' or 'none', got {name!r}")
    base = channels // depth if channels % depth == 0 else channels
    mean = torch.tensor(IMAGENET_MEAN if base == 3 else [sum(IMAGENET_MEAN) / 3] * base)
    std = torch.tensor(IMAGENET_STD if base == 3 else [sum(IMAGENET_STD) / 3] * base)
    if base != channels:
        mean, std = mean.repeat_interleave(depth), std.repeat_interleave(depth)
    return mean.view(-1, 1, 1), std.view(-1, 1, 1)
