"""The SDL paper's synergic pairs (and SDL-n's tuples), and the dataset that serves them."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from glioscope.samples.datasets import SliceDataset


def make_pairs(targets, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """The SDL paper's pairs: per class, shuffle; the first half is paired within the class
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
    """Index tuples for SDL-n: nets 1 and 2 get the SDL paper's pairs; each further net an image
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

    def raw_collate(self, batch):
        return default_collate(batch)  # uint8, prepared by `finish` on the device

    def finish(self, batch):
        images, targets = batch
        return self.base.prep(images), targets
