"""Batch preparation: uint8 batches to model input, with batch augmentation and normalisation."""

from __future__ import annotations

import torch


class BatchPrep:
    """A uint8 batch -> the model's input: float in [0, 1], batch augmentation, channels, normalisation.

    Runs on whole batches, which is where vectorised work is cheapest: in the DataLoader's
    collate step on a CPU, on the GPU after the uint8 batch is copied there on CUDA
    (train.batch_on_device; glioscope.train.data_path). `channels` > 1 repeats a single grey channel
    (the SDL paper's 1-to-3 stacking) as a view, after augmenting the one channel.
    """

    def __init__(self, norm=None, channels: int | None = None, affine=None):
        self.norm = norm
        self.channels = channels
        self.affine = affine
        self._norm_on: dict = {}  # the statistics on each device they were used on, copied once

    def __call__(self, images: torch.Tensor, augment: bool = True) -> torch.Tensor:
        shape = images.shape
        x = images.reshape(-1, *shape[-3:]).float().div_(255.0)
        if augment and self.affine is not None:
            x = self.affine(x)
        if self.channels and x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        if self.norm is not None:
            mean, std = self._statistics(x.device)
            x = (x - mean) / std
        return x.reshape(*shape[:-3], *x.shape[1:])

    def _statistics(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device.type == "cpu":
            return self.norm
        if device not in self._norm_on:
            self._norm_on[device] = tuple(t.to(device) for t in self.norm)
        return self._norm_on[device]

    def __getstate__(self):  # DataLoader workers get the statistics, not copies on a GPU
        return {**self.__dict__, "_norm_on": {}}

    def without_augmentation(self) -> "BatchPrep":
        return BatchPrep(self.norm, self.channels, None)
