"""Optimisers and learning-rate schedules named in recipes."""

from __future__ import annotations

import torch

from glioscope.errors import GlioscopeError


def build_optimizer(params, name: str, lr: float, momentum: float, weight_decay: float, fused: bool = False):
    """sgd | adam | adamw (train.optimizer; momentum is SGD's).

    `fused` (train.fused_optimizer) updates all parameters in one kernel instead of one tensor at a
    time: for AlexNet's 57 M parameters on a CPU, Adam's step takes a sixth of the time. Its rounding
    differs from the per-tensor update, so a recipe's results depend on it: it is a setting, the same
    on every machine, and never chosen by a timing.
    """
    extra = {"fused": True} if fused else {}
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, **extra)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **extra)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **extra)
    raise GlioscopeError(f"unknown optimizer {name!r}; choose sgd, adam or adamw")


def build_schedule(
    optimizer, name: str, decay: float, step_size: int, gamma: float, patience: int, factor: float = 0.1
):
    """Schedules step once per epoch; 'plateau' steps on the validation loss (by `factor`, Keras' default).

    inverse_decay is the SDL paper's lr / (1 + decay * epoch); step is the ResNet18 paper's StepLR(7, 0.1).
    """
    if name == "none":
        return None
    if name == "inverse_decay":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0 / (1.0 + decay * epoch))
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=factor, patience=patience)
    raise GlioscopeError(f"unknown schedule {name!r}; choose none, inverse_decay, step or plateau")


class EarlyStopping:
    """Stop when the monitored value has not improved for `patience` epochs."""

    def __init__(self, patience: int | None, mode: str = "min", min_delta: float = 0.0):
        self.patience = patience
        self.sign = 1.0 if mode == "min" else -1.0
        self.min_delta = min_delta
        self.best: float | None = None
        self.bad_epochs = 0

    def improved(self, value: float) -> bool:
        """Record `value`; True when it is the best so far."""
        score = self.sign * value
        if self.best is None or score < self.best - self.min_delta:
            self.best = score
            self.bad_epochs = 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]
