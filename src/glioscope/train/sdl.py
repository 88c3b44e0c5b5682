"""The SDL variant of the loop: members see different images; synergic layers judge pairs.

Loss = sum of the members' cross-entropy + lambda * sum of the pairs' binary
cross-entropy. The synergic layers appear only in the second term, so they learn
from it alone, while its gradient also reaches the members (they learn from each
other). At test time each member classifies alone; their mean probability is
reported as a further model (the names: the sdl registry entry's).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from glioscope.models import model_entry
from glioscope.models.spec import ModelSpec
from glioscope.train.loop import Trainer
from glioscope.train.pairs import TupleDataset, make_tuples
from glioscope.util.schema import SettingError


class SDLTrainer(Trainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.synergic_lambda = self.settings.synergic_lambda
        self.pairs_mode = self.settings.sdl_pairs
        self.leftovers = 0
        self._tuple_set: TupleDataset | None = None  # this epoch's pairs, kept while they stay the same

    def build_loss(self):
        """Each member's cross-entropy, weighted by the class weights (the synergic term is in `losses`)."""
        if self.binary:
            raise SettingError(
                "model.sigmoid",
                "got true, but SDL's members learn with cross-entropy over the "
                "classes, not one sigmoid unit; expected false for model sdl",
            )
        return super().build_loss()

    @property
    def members(self) -> int:
        return self.raw_model.n_members

    def tuples(self, dataset, epoch: int) -> np.ndarray:
        draw = 0 if self.pairs_mode == "fixed" else epoch
        rng = np.random.default_rng([self.settings.seed, draw])
        tuples, leftovers = make_tuples(dataset.base_targets.numpy(), self.members, rng)
        if len(leftovers) != self.leftovers and self.context.is_main and self.progress:
            tqdm.write(f"{self.name}: {len(tuples)} synergic pairs; {len(leftovers)} image(s) left unpaired this epoch")
        self.leftovers = len(leftovers)
        return tuples

    def train_batches(self, dataset, epoch: int):
        tuples = self.tuples(dataset, epoch)
        held = self._tuple_set
        if held is None or held.base is not dataset or not np.array_equal(held.tuples, tuples):
            held = self._tuple_set = TupleDataset(dataset, tuples)  # the same pairs: the same (kept) loader
        return self.loader(held, epoch, shuffle=True)

    def losses(self, model, images: torch.Tensor, targets: torch.Tensor, precision):
        """(total loss, member logits, synergic logits, synergic labels) for a batch of tuples."""
        xs = [precision.prepare(images[:, m]) for m in range(images.shape[1])]
        with precision.autocast(self.device):
            logits, synergic = model(xs)
        ce = [self.criterion(l.float(), targets[:, m]) for m, l in enumerate(logits)]
        same = [(targets[:, i] == targets[:, j]).float() for i, j in self.raw_model.pairs]
        bce = [F.binary_cross_entropy_with_logits(s.float(), y) for s, y in zip(synergic, same)]
        return sum(ce) + self.synergic_lambda * sum(bce), ce, bce, logits, synergic, same

    def train_step(self, batch) -> dict[str, float]:
        images, targets = (t.to(self.device, non_blocking=True) for t in batch)
        loss, ce, bce, logits, synergic, same = self.losses(self.model, images, targets, self.precision)
        self.backward(loss)
        n = len(targets)
        out = {"loss_sum": loss.item() * n, "count": n, "images": n * self.members}
        for m, (l, c) in enumerate(zip(logits, ce)):
            out[f"ce_sum/net{m + 1}"] = c.item() * n
            out[f"correct/net{m + 1}"] = (l.argmax(1) == targets[:, m]).sum().item()
        out["bce_sum"] = sum(b.item() for b in bce) / len(bce) * n
        out["synergic_correct"] = sum(((s > 0).float() == y).sum().item() for s, y in zip(synergic, same)) / len(same)
        return out

    def epoch_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        count = max(sums["count"], 1)
        row = {}
        for m in range(self.members):
            row[f"train_loss/net{m + 1}"] = sums[f"ce_sum/net{m + 1}"] / count
            row[f"train_accuracy/net{m + 1}"] = sums[f"correct/net{m + 1}"] / count
        row["train_loss"] = float(np.mean([row[f"train_loss/net{m + 1}"] for m in range(self.members)]))
        row["train_accuracy"] = float(np.mean([row[f"train_accuracy/net{m + 1}"] for m in range(self.members)]))
        row["synergic_loss"] = sums["bce_sum"] / count
        row["synergic_accuracy"] = sums["synergic_correct"] / count
        row["total_loss"] = sums["loss_sum"] / count
        return row

    def default_reported(self) -> list[str]:
        return model_entry("sdl").reported_names(self.name, ModelSpec(name="sdl", members=self.members))

    def timing_step(self, model, sample, precision) -> None:
        images, targets = sample
        loss = self.losses(model, images, targets, precision)[0]
        loss.backward()
        model.zero_grad(set_to_none=True)

    def timing_sample(self, dataset):
        images, targets = next(iter(self.device_batches(self.train_batches(dataset, 0))))
        return images.to(self.device), targets.to(self.device)
