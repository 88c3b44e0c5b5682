"""Datasets over samples held in memory: uint8 slices (2D) and preprocessed volumes (3D)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from glioscope.augment.prep import BatchPrep


class SliceDataset(Dataset):
    """uint8 slices (N, C, H, W) in memory; items are (uint8 image, class index).

    `transform` holds per-image transforms (uint8 in, uint8 out); `prep` turns a
    collated batch into model input (see BatchPrep). `variants` (fixed transforms,
    e.g. the SVHN expansion) multiply the dataset: index i is image
    i // (len(variants) + 1) under variant i % (len(variants) + 1), variant 0 being
    the original image.
    """

    def __init__(
        self, images: np.ndarray | torch.Tensor, targets, transform=None, prep: BatchPrep | None = None, variants=()
    ):
        self.images = torch.as_tensor(images)
        self.targets = torch.tensor(np.asarray(targets), dtype=torch.long)  # a copy: pandas arrays are read-only
        self.transform = transform
        self.prep = prep or BatchPrep()
        self.variants = list(variants)

    def __len__(self) -> int:
        return len(self.images) * (len(self.variants) + 1)

    def __getitem__(self, index: int):
        base, variant = divmod(index, len(self.variants) + 1)
        image = self.images[base]
        if variant:
            image = self.variants[variant - 1](image)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[base]

    def collate(self, batch):
        images, targets = default_collate(batch)
        return self.prep(images), targets

    def raw_collate(self, batch):
        """The uint8 batch, for `finish` to prepare where it is copied to (the GPU)."""
        return default_collate(batch)

    def finish(self, batch):
        images, targets = batch
        return self.prep(images), targets

    def inputs(self, indices) -> torch.Tensor:
        """Model input for the given items, without random augmentation (for explanations)."""
        images = torch.stack([self.images[self.base_index(i)] for i in indices])
        return self.prep.without_augmentation()(images)

    def base_index(self, index: int) -> int:
        return index // (len(self.variants) + 1)

    @property
    def base_targets(self) -> torch.Tensor:
        """One target per dataset index (variants included)."""
        return self.targets.repeat_interleave(len(self.variants) + 1)


class VolumeDataset(Dataset):
    """Preprocessed volumes (N, C, D, H, W) in memory; items are (float32 volume, class index).

    `transform` is a 3D augmentation (a TorchIO preset) applied per item, so that it
    runs in the DataLoader's workers when there are any.
    """

    def __init__(self, volumes: np.ndarray | torch.Tensor, targets, transform=None):
        self.volumes = torch.as_tensor(volumes)
        self.targets = torch.tensor(np.asarray(targets), dtype=torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, index: int):
        volume = self.volumes[index].float()
        if self.transform is not None:
            volume = self.transform(volume)
        return volume, self.targets[index]

    def inputs(self, indices) -> torch.Tensor:
        """Model input for the given items, without random augmentation (for explanations)."""
        return torch.stack([self.volumes[i].float() for i in indices])

    @property
    def base_targets(self) -> torch.Tensor:
        return self.targets
