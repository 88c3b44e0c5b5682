"""SimCLR (Chen et al. 2020): a backbone learns, without labels, that two augmentations of one slice belong together.

Each image of a batch is drawn twice through the recipe's augmentations (the per-image
transforms, then the batch affine of glioscope.augment.batch: rotation, zoom, shift, flips);
the backbone and a projection head (Linear, BatchNorm, ReLU, Linear) map both views to
vectors, and NT-Xent, a cross-entropy over cosine similarities at a temperature, pulls each
image's two views together against the other 2N - 2 views of the batch. Only the backbone
is kept. The variant of the training loop (glioscope.train.loop.Trainer) overrides the step,
so epochs, checkpoints, resume and logs are the loop's own.
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset, default_collate

from glioscope.train.loop import Trainer


def nt_xent(projections: torch.Tensor, temperature: float) -> tuple[torch.Tensor, int]:
    """NT-Xent of 2N projections, rows i and i + N being two views of one image; and how many rows find their pair."""
    n = len(projections) // 2
    z = F.normalize(projections, dim=1)
    similarity = (z @ z.t()) / temperature
    self_pairs = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    similarity = similarity.masked_fill(self_pairs, float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    loss = F.cross_entropy(similarity, partner)
    return loss, int((similarity.argmax(1) == partner).sum().item())


class SimCLRNet(nn.Module):
    """backbone -> features -> projection head (the head is discarded after pretraining)."""

    def __init__(self, backbone: nn.Module, width: int, projection: int = 128, hidden: int = 512):
        super().__init__()
        self.backbone = backbone
        self.projection = nn.Sequential(
            nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, projection)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.backbone(x))


class TwoViews(Dataset):
    """Two augmented views of each slice of a SliceDataset (labels ignored)."""

    def __init__(self, slices):
        self.slices = slices

    def __len__(self) -> int:
        return len(self.slices.images)

    def __getitem__(self, index: int):
        image, transform = self.slices.images[index], self.slices.transform
        if transform is None:
            return image, image
        return transform(image), transform(image)

    def collate(self, batch):
        first, second = default_collate(batch)
        return self.slices.prep(first), self.slices.prep(second)  # each its own random affine per image


class DropLast(Trainer):
    """The loop without a last batch of one image, which cannot train BatchNorm (the loop's own loader otherwise)."""

    def train_batches(self, dataset, epoch: int):
        return _NoSingleBatch(self.loader(dataset, epoch, shuffle=True))


class _NoSingleBatch:
    """A loader's batches but one of a single sample; its length and collate step are the loader's."""

    def __init__(self, loader):
        self.loader = loader
        self.collate_fn = getattr(loader, "collate_fn", None)  # the loop may prepare batches on the device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            first = batch[0] if isinstance(batch, (tuple, list)) else batch
            if len(first) > 1:
                yield batch


class SimCLRTrainer(DropLast):
    """Trainer's loop with the NT-Xent step; train_accuracy is the share of views whose nearest view is their pair.

    temperature: NT-Xent's (the other arguments: Trainer's).
    """

    def __init__(self, *args, temperature: float = 0.5, **kwargs):
        self.temperature = temperature  # before Trainer.__init__, whose build_loss reads it
        super().__init__(*args, **kwargs)

    def build_loss(self):
        """NT-Xent at this trainer's temperature: 2N projections -> (loss, how many rows find their pair)."""
        return functools.partial(nt_xent, temperature=self.temperature)

    def train_step(self, batch) -> dict[str, float]:
        first, second = (self.precision.prepare(t.to(self.device, non_blocking=True)) for t in batch)
        with self.precision.autocast(self.device):
            projections = self.model(torch.cat([first, second]))  # one pass: BatchNorm sees both views
        loss, found = self.criterion(projections.float())
        self.backward(loss)
        n = len(first)
        return {"loss_sum": loss.item() * n, "correct": found / 2, "count": n, "images": 2 * n}

    def timing_step(self, model, sample, precision) -> None:
        first, second = (precision.prepare(t) for t in sample)
        with precision.autocast(self.device):
            loss, _ = self.criterion(model(torch.cat([first, second])).float())
        loss.backward()
        model.zero_grad(set_to_none=True)

    def timing_sample(self, dataset):
        first, second = next(iter(self.loader(dataset, 0, shuffle=False)))
        return first.to(self.device), second.to(self.device)
