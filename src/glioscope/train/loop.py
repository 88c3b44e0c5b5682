"""One training loop for every model: epochs, validation, schedules, early stopping,
atomic checkpoints every epoch, exact resume, metrics to CSV and TensorBoard.

Variants subclass `Trainer`, in the way nnU-Net varies its trainers, and override its
documented hooks: build_loss, build_optimizer and build_schedule (called once, from
__init__), train_batches, train_step, epoch_metrics, predict_logits, timing_step and
timing_sample, default_reported, extra_state and load_extra_state. SDL (train/sdl.py) and
SimCLR (pretrain/simclr.py) are such variants.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from glioscope.errors import GlioscopeError
from glioscope.models.tta import tta_probabilities
from glioscope.train import data_path, ddp, losses, optim
from glioscope.train.epoch_log import EpochLog
from glioscope.train.freeze import apply_freeze
from glioscope.train.resume import Resumable
from glioscope.train.checkpoint import BEST, LAST, save_checkpoint
from glioscope.train.optim import EarlyStopping
from glioscope.train.precision import Precision, choose
from glioscope.train.settings import TrainSettings
from glioscope.util.progress import progress_bar


class Trainer(Resumable):
    """Trains `model` on a dataset of (image, target) pairs; writes into `out_dir`.

    settings: TrainSettings (or a mapping of some of them; base.yaml gives the rest).
    reported: the names of the models whose predictions `predict` returns, in the order
    of glioscope.models.outputs.probabilities (default: [name]; see the model registry).
    loss: "ce", cross-entropy over the classes' logits, or "bce", binary cross-entropy on one
    sigmoid unit for the second class (glioscope.models.build.loss_kind of the recipe's model).
    fold: the fold this trainer trains, in words ("fold 2/5"), named on each epoch line; None for none.
    """

    # Without a progress bar (a log file), a line this often during an epoch: a long one is seen to progress.
    progress_every_s = 30.0

    def __init__(
        self,
        model: torch.nn.Module,
        settings: TrainSettings | Mapping,
        class_names: list[str],
        out_dir: Path,
        name: str = "model",
        class_weights: torch.Tensor | None = None,
        progress: bool = True,
        context: ddp.DistContext | None = None,
        reported: list[str] | None = None,
        loss: str = "ce",
        fold: str | None = None,
    ):
        if loss not in losses.KINDS:
            raise GlioscopeError(f"Trainer(loss=...): expected one of {', '.join(losses.KINDS)}, got {loss!r}")
        self.settings = settings = TrainSettings.of(settings)
        self.class_names = list(class_names)
        self.out_dir = Path(out_dir)
        self.name = name
        self.fold = fold
        self.progress = progress
        self.context = context or ddp.init_distributed(settings.device)
        self.device = self.context.device
        self.raw_model = model.to(self.device)
        self.model = self.raw_model  # wrapped for DDP once the precision is known
        self.class_weights = class_weights.to(self.device) if class_weights is not None else None
        self.loss_kind = loss
        self.binary = loss == "bce"  # one sigmoid unit (the MGMT paper's Dense 1) for the second class
        self.criterion = self.build_loss()
        self.frozen = apply_freeze(self.raw_model, settings.freeze)  # before the optimiser: it takes what still learns
        self.optimizer = self.build_optimizer()
        self.schedule = self.build_schedule(self.optimizer)
        self.monitor = settings.monitor
        self.stopper = EarlyStopping(settings.early_stopping, "min" if self.monitor.endswith("loss") else "max")
        self.precision: Precision | None = None
        self.precision_record: dict = {}  # how the precision was chosen (run.json, the report)
        self.scaler = torch.amp.GradScaler("cuda") if self.device.type == "cuda" else None
        self.history: list[dict] = []
        self.best_state: dict | None = None
        self.best_epoch = -1
        self.epoch = 0  # epochs completed
        self.accumulate = settings.accumulate
        self.reported = list(reported) if reported else self.default_reported()
        self._pending = 0  # batches backpropagated since the last optimiser step
        self._loaders = data_path.Loaders()  # with persistent workers, the loaders kept from epoch to epoch

    # --- the parts a variant overrides ------------------------------------------------

    def build_loss(self):
        """The criterion `loss` calls, (logits, targets) -> loss, weighted by the class weights."""
        return losses.criterion(self.loss_kind, self.class_weights)

    def build_optimizer(self) -> torch.optim.Optimizer:
        """The optimiser of the parameters that are not frozen (train.optimizer, lr, momentum, weight_decay)."""
        s = self.settings
        return optim.build_optimizer(
            [p for p in self.raw_model.parameters() if p.requires_grad],
            s.optimizer,
            s.lr,
            s.momentum,
            s.weight_decay,
            fused=s.fused_optimizer,
        )

    def build_schedule(self, optimizer: torch.optim.Optimizer):
        """The learning-rate schedule of `optimizer`, stepped once per epoch (train.schedule); None for none."""
        s = self.settings
        return optim.build_schedule(optimizer, s.schedule, s.decay, s.step_size, s.gamma, s.plateau_patience)

    def train_batches(self, dataset, epoch: int):
        """The batches of one epoch (a variant may rebuild its dataset, e.g. SDL pairs)."""
        return self.loader(dataset, epoch, shuffle=True)

    def train_step(self, batch) -> dict[str, float]:
        images, targets = (t.to(self.device, non_blocking=True) for t in batch)
        images = self.precision.prepare(images)
        with self.precision.autocast(self.device):
            logits = self.model(images)
            loss = self.loss(logits.float(), targets)
        self.backward(loss)
        correct = (self.predicted_class(logits) == targets).sum().item()
        return {"loss_sum": loss.item() * len(targets), "correct": correct, "count": len(targets)}

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.criterion(logits, targets)

    def predicted_class(self, logits: torch.Tensor) -> torch.Tensor:
        return (logits[:, 0] > 0).long() if self.binary else logits.argmax(1)

    def epoch_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        count = max(sums["count"], 1)
        return {"train_loss": sums["loss_sum"] / count, "train_accuracy": sums["correct"] / count}

    def default_reported(self) -> list[str]:
        return [self.name]

    @torch.no_grad()
    def predict_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The network's raw output for one batch (see glioscope.models.outputs.probabilities)."""
        with self.precision.autocast(self.device):
            return self.model(self.precision.prepare(images)).float()

    def timing_step(self, model, sample, precision: Precision) -> None:
        images, targets = sample
        images = precision.prepare(images)
        with precision.autocast(self.device):
            loss = self.loss(model(images).float(), targets)
        loss.backward()
        model.zero_grad(set_to_none=True)

    def timing_sample(self, dataset):
        images, targets = next(iter(self.device_batches(self.loader(dataset, 0, shuffle=False))))
        return images.to(self.device), targets.to(self.device)

    # --- shared machinery ------------------------------------------------------------

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate; step the optimiser every `accumulate` batches (gradient accumulation)."""
        scaled = loss / self.accumulate
        if self._uses_scaler:
            self.scaler.scale(scaled).backward()
        else:
            scaled.backward()
        self._pending += 1
        if self._pending >= self.accumulate:
            self._optimizer_step()

    @property
    def _uses_scaler(self) -> bool:
        return self.scaler is not None and self.precision.dtype == "fp16"

    def _optimizer_step(self) -> None:
        if self._uses_scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._pending = 0

    def loader(self, dataset, epoch: int, shuffle: bool, batch_size: int | None = None) -> DataLoader:
        """Batches in an order fixed by (seed, epoch), so a resumed run sees the same data; iterate them through
        `device_batches`. Workers, pinning, prefetch, where batches are prepared: glioscope.train.data_path."""
        return self._loaders.get(
            dataset,
            epoch,
            shuffle,
            batch_size or self.settings.batch_size,
            self.settings,
            self.device,
            self.context.distributed,
        )

    def device_batches(self, batches):
        """The batches of `loader` (or `train_batches`) on the device, ready for the model."""
        return data_path.device_batches(batches, self.device)

    def _setup_precision(self, dataset) -> None:
        if self.precision is not None:
            return
        decision = None
        if self.context.is_main:  # with `measure`, timings differ between processes: all follow the first one's
            decision = choose(
                self.raw_model,
                self.timing_step,
                lambda: self.timing_sample(dataset),
                self.device,
                self.settings.precision,
                self.settings.channels_last,
                dims=self.dims,
            )
        self.precision, self.precision_record = ddp.broadcast(decision, self.context)
        self._apply_precision()

    @property
    def dims(self) -> int:
        """4 for 2D models, 5 for 3D ones (which set `is_3d`)."""
        return 5 if getattr(self.raw_model, "is_3d", False) else 4

    def _apply_precision(self) -> None:
        self.raw_model = self.precision.prepare_model(self.raw_model, self.dims)
        self.model = ddp.wrap(self.raw_model, self.context)
        if self.settings.compile:  # opt-in: the raw model keeps the weights and the state dicts
            self.model = torch.compile(self.model)

    def fit(self, train_set, val_set=None, resume: bool = False) -> pd.DataFrame:
        """Train for the configured epochs (or until early stopping); returns the history."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume and (self.out_dir / LAST).is_file():
            self._resume(self.out_dir / LAST)
        self._setup_precision(train_set)
        epoch_log = EpochLog(
            self.out_dir, self.name, self.context.is_main and self.settings.tensorboard, fold=self.fold
        )
        epochs = self.settings.epochs
        seconds: list[float] = []  # this process's epochs: what the time left is estimated from
        try:
            while self.epoch < epochs and not self.stopper.should_stop:
                row = self._run_epoch(train_set, val_set, self.epoch)
                self.history.append(row)
                seconds.append(row["seconds"])
                self.epoch += 1
                self._remember_best(row)
                if self.context.is_main:
                    epoch_log.write(self.history, epochs, seconds)
                    self._save(self.out_dir / LAST)
        finally:
            epoch_log.close()
        if self.settings.keep_best and self.best_state is not None:
            self.raw_model.load_state_dict(self.best_state)
        ddp.barrier(self.context)
        return pd.DataFrame(self.history)

    def _run_epoch(self, train_set, val_set, epoch: int) -> dict:
        self.model.train()
        for module in self.frozen:  # frozen parts keep their statistics (BatchNorm in inference mode)
            module.eval()
        start = time.perf_counter()
        sums: dict[str, float] = {}
        batches = self.train_batches(train_set, epoch)
        bar = progress_bar(
            self.device_batches(batches),
            total=len(batches) if hasattr(batches, "__len__") else None,
            desc=f"{self.name} {self.fold + ' ' if self.fold else ''}epoch {epoch + 1}/{self.settings.epochs}",
            unit="batch",
            disable=not (self.progress and self.context.is_main),
            summary=False,  # the epoch line says it
            every_s=self.progress_every_s,
        )
        self.optimizer.zero_grad(set_to_none=True)
        for batch in bar:
            out = self.train_step(batch)
            for key, value in out.items():
                sums[key] = sums.get(key, 0.0) + value
            elapsed = time.perf_counter() - start
            bar.set_postfix(
                loss=f"{sums['loss_sum'] / max(sums['count'], 1):.3f}",
                img_s=f"{sums.get('images', sums['count']) / max(elapsed, 1e-9):.1f}",
            )
        if self._pending:  # the epoch's last, incomplete accumulation
            self._optimizer_step()
        totals = torch.tensor([sums.get(k, 0.0) for k in sorted(sums)], dtype=torch.float64)
        sums = dict(zip(sorted(sums), ddp.all_reduce_sum(totals, self.context).tolist()))
        seconds = time.perf_counter() - start
        row = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"], **self.epoch_metrics(sums)}
        row["images_per_s"] = sums.get("images", sums["count"]) / max(seconds, 1e-9)
        if val_set is not None:
            row.update(self.validate(val_set))
        self._step_schedule(row)
        row["seconds"] = time.perf_counter() - start
        return row

    def _step_schedule(self, row: dict) -> None:
        if self.schedule is None:
            return
        if isinstance(self.schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.schedule.step(row.get(self.monitor, row["train_loss"]))
        else:
            self.schedule.step()

    def _remember_best(self, row: dict) -> None:
        value = row.get(self.monitor)
        if value is None:  # no validation set: the last epoch is the model
            self.best_state, self.best_epoch = None, row["epoch"]
            return
        if self.stopper.improved(value):
            self.best_state = copy.deepcopy(self.raw_model.state_dict())
            self.best_epoch = row["epoch"]
            if self.context.is_main:
                save_checkpoint(
                    self.out_dir / BEST, model=self.best_state, epoch=row["epoch"], monitor=self.monitor, value=value
                )

    @torch.no_grad()
    def predict(self, dataset, tta: str = "none") -> dict[str, np.ndarray]:
        """Class probabilities of each reported model, in dataset order; `tta`: averaged over the mirrored copies
        glioscope.models.tta names (a recipe's evaluate.tta), as a trained run applies them."""
        self.model.eval()
        outputs: list[list[torch.Tensor]] = []
        batch = max(self.settings.batch_size, 32)
        for images, _ in self.device_batches(self.loader(dataset, 0, shuffle=False, batch_size=batch)):
            outputs.append([p.cpu() for p in tta_probabilities(self.predict_logits, images.to(self.device), tta)])
        if outputs and len(outputs[0]) != len(self.reported):
            raise GlioscopeError(
                f"the model reports {len(outputs[0])} predictions but {len(self.reported)} names "
                f"were given ({', '.join(self.reported)})"
            )
        return {name: torch.cat([o[k] for o in outputs]).numpy() for k, name in enumerate(self.reported)}

    def validate(self, dataset) -> dict[str, float]:
        """Loss and accuracy of each reported model on `dataset` (columns val_loss/<model> for variants)."""
        targets = dataset.base_targets.numpy()
        probs = self.predict(dataset)
        row = {}
        for k, (name, p) in enumerate(probs.items()):
            loss = float(F.nll_loss(torch.log(torch.as_tensor(p).clamp_min(1e-8)), torch.as_tensor(targets)).item())
            accuracy = float((p.argmax(1) == targets).mean())
            suffix = "" if len(probs) == 1 else f"/{name.split('/')[-1]}"
            row[f"val_loss{suffix}"], row[f"val_accuracy{suffix}"] = loss, accuracy
        if len(probs) > 1:  # the headline figures are those of the last model: the combined one
            combined = list(probs)[-1].split("/")[-1]
            row["val_loss"], row["val_accuracy"] = row[f"val_loss/{combined}"], row[f"val_accuracy/{combined}"]
        self.model.train()
        return row
