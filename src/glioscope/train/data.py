"""Datasets over decoded slices held in memory, and seed 000's synergic pairs."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from glioscope.augment.svhn import expansion


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


class SliceDataset(Dataset):
    """uint8 slices (N, C, H, W) in memory; items are (uint8 image, class index).

    `transform` holds per-image transforms (uint8 in, uint8 out); `prep` turns a
    collated batch into model input (see BatchPrep). `variants` (fixed transforms,
    e.g. the SVHN expansion) multiply the dataset: index i is image
    i // (len(variants) + 1) under variant i % (len(variants) + 1), variant 0 being
    the original image.
    """

    def __init__(self, images: np.ndarray | torch.Tensor, targets, transform=None, prep: BatchPrep | None = None,
                 variants=()):
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


def fixed_expansion(name: str | None) -> list:
    """Offline expansions a recipe may name: 'svhn' (seed 004's 56 variants)."""
    if not name:
        return []
    if str(name).lower() == "svhn":
        return expansion()
    from glioscope.errors import GlioscopeError

    raise GlioscopeError(f"augment.expand: only 'svhn' is supported, got {name!r}")


# --- synergic pairs ----------------------------------------------------------


def make_pairs(targets, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """Seed 000's pairs: per class, shuffle; the first half is paired within the class
    (synergic label 1); the rest is paired with images of another class (label 0).

    Returns (pairs as an (M, 3) array of index_a, index_b, same, leftovers) — the
    leftover indices could not be paired (an odd one out, or a last run of one class).
    """
    targets = np.asarray(targets)
    pairs: list[tuple[int, int, int]] = []
    leftovers: list[int] = []
    rest: dict[int, list[int]] = {}
    for label in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == label)).tolist()
        half = len(members) // 2
        same, others = members[:half], members[half:]
        if len(same) % 2:
            leftovers.append(same.pop())
        pairs += [(same[k], same[k + 1], 1) for k in range(0, len(same), 2)]
        rest[int(label)] = others
    # Pair across classes, always drawing from the two largest remaining pools, so that
    # as few images as possible are left over in a single class at the end.
    while True:
        sizes = sorted(((len(v), k) for k, v in rest.items() if v), reverse=True)
        if len(sizes) < 2:
            break
        (_, a), (_, b) = sizes[0], sizes[1]
        pairs.append((rest[a].pop(), rest[b].pop(), 0))
    for remaining in rest.values():
        leftovers += remaining
    order = rng.permutation(len(pairs))
    return np.array(pairs, dtype=np.int64).reshape(-1, 3)[order], leftovers


def make_tuples(targets, members: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """Index tuples for SDL-n: nets 1 and 2 get seed 000's pairs; each further net an image
    of the anchor's class or of another class with equal chance."""
    targets = np.asarray(targets)
    pairs, leftovers = make_pairs(targets, rng)
    columns = [pairs[:, 0], pairs[:, 1]]
    by_class = {int(c): np.flatnonzero(targets == c) for c in np.unique(targets)}
    for _ in range(members - 2):
        extra = np.empty(len(pairs), dtype=np.int64)
        for row, anchor in enumerate(pairs[:, 0]):
            own = int(targets[anchor])
            others = [c for c in by_class if c != own]
            label = own if (not others or rng.random() < 0.5) else others[rng.integers(len(others))]
            extra[row] = rng.choice(by_class[label])
        columns.append(extra)
    return np.stack(columns, axis=1), leftovers


class TupleDataset(Dataset):
    """Each item: the images of one SDL tuple (one per member) and their class indices."""

    def __init__(self, base: SliceDataset, tuples: np.ndarray):
        self.base = base
        self.tuples = tuples

    def __len__(self) -> int:
        return len(self.tuples)

    def __getitem__(self, index: int):
        images, targets = zip(*(self.base[int(i)] for i in self.tuples[index]))
        return torch.stack(images), torch.stack(targets)

    def collate(self, batch):
        images, targets = default_collate(batch)  # (B, members, C, H, W)
        return self.base.prep(images), targets


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
