"""Batch preparation: uint8 batches to model input, with batch augmentation and normalisation."""

from __future__ import annotations

import torch


class BatchPrep:
    """A uint8 batch -> the model's input: float in [0, 1], batch augmentation, channels, normalisation.

    Runs on whole batches (as the DataLoader's collate step, or on the device), which
    is where vectorised work is cheapest. `channels` > 1 repeats a single grey channel
    (seed 000's 1-to-3 stacking) as a view, after augmenting the one channel.
    """

    def __init__(self, norm=None, channels: int | None = None, affine=None):
        self.norm = norm
        self.channels = channels
        self.affine = affine

    def __call__(self, images: torch.Tensor, augment: bool = True) -> torch.Tensor:
        shape = images.shape
        x = images.reshape(-1, *shape[-3:]).float().div_(255.0)
        if augment and self.affine is not None:
            x = self.affine(x)
        if self.channels and x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        if self.norm is not None:
            x = (x - self.norm[0].to(x.device)) / self.norm[1].to(x.device)
        return x.reshape(*shape[:-3], *x.shape[1:])

    def without_augmentation(self) -> "BatchPrep":
        return BatchPrep(self.norm, self.channels, None)
