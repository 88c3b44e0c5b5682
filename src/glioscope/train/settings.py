"""What a recipe's `train` section asks for (defaults: base.yaml), and its phases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Literal

from glioscope import defaults
from glioscope.util import schema
from glioscope.util.schema import Range, at_least, fraction

_default = defaults.of("train")
_finetune = defaults.of("train.finetune")
_PATIENCE = Annotated[int, at_least(1)] | None
_FREEZE = Literal["none", "backbone", "batchnorm"]


@dataclass(frozen=True)
class FinetuneSettings:
    """A second phase from the first one's best weights, when epochs > 0 (Spoorthy et al.)."""

    epochs: Annotated[int, at_least(0)] = _finetune("epochs")
    lr: Annotated[float, at_least(0.0)] = _finetune("lr")
    freeze: _FREEZE = _finetune("freeze")
    early_stopping: _PATIENCE = _finetune("early_stopping")

    def __post_init__(self):
        schema.check(self, "train.finetune")


@dataclass(frozen=True)
class InnerValidation:
    """A patient-level validation split of each fold's training patients."""

    fraction: float
    seed: int


@dataclass(frozen=True)
class TrainSettings:
    """The training loop's settings; base.yaml's `train` section says what each one means."""

    epochs: Annotated[int, at_least(0)] = _default("epochs")
    batch_size: Annotated[int, at_least(1)] = _default("batch_size")
    accumulate: Annotated[int, at_least(1)] = _default("accumulate")
    optimizer: Literal["sgd", "adam", "adamw"] = _default("optimizer")
    lr: Annotated[float, at_least(0.0)] = _default("lr")
    momentum: Annotated[float, fraction()] = _default("momentum")
    weight_decay: Annotated[float, at_least(0.0)] = _default("weight_decay")
    fused_optimizer: bool = _default("fused_optimizer")
    schedule: Literal["none", "inverse_decay", "step", "plateau"] = _default("schedule")
    decay: Annotated[float, at_least(0.0)] = _default("decay")
    step_size: Annotated[int, at_least(1)] = _default("step_size")
    gamma: Annotated[float, Range(0.0, 1.0, low_open=True)] = _default("gamma")
    plateau_patience: Annotated[int, at_least(0)] = _default("plateau_patience")
    early_stopping: _PATIENCE = _default("early_stopping")
    monitor: Literal["val_loss", "val_accuracy", "train_loss"] = _default("monitor")
    keep_best: bool = _default("keep_best")
    validation: Literal["none", "inner"] = _default("validation")
    validation_fraction: Annotated[float, fraction(open_low=True, open_high=True)] = _default("validation_fraction")
    class_weights: Literal["none", "complement", "inverse"] = _default("class_weights")
    freeze: _FREEZE = _default("freeze")
    finetune: FinetuneSettings = _default("finetune")
    synergic_lambda: Annotated[float, at_least(0.0)] = _default("synergic_lambda")
    sdl_pairs: Literal["fixed", "per_epoch"] = _default("sdl_pairs")
    precision: Literal["auto", "fp32", "bf16", "fp16", "measure"] = _default("precision")
    channels_last: bool | Literal["auto", "measure"] = _default("channels_last")
    num_workers: Annotated[int, at_least(0)] = _default("num_workers")
    cuda_workers: Annotated[int, at_least(0)] | Literal["auto"] = _default("cuda_workers")
    persistent_workers: bool | Literal["auto"] = _default("persistent_workers")
    prefetch_factor: Annotated[int, at_least(1)] = _default("prefetch_factor")
    batch_on_device: bool | Literal["auto"] = _default("batch_on_device")
    compile: bool = _default("compile")
    seed: int = _default("seed")
    device: str | None = _default("device")
    tensorboard: bool = _default("tensorboard")

    def __post_init__(self):
        schema.check(self, "train")

    @classmethod
    def of(cls, settings: "TrainSettings | Mapping") -> "TrainSettings":
        """TrainSettings, from a mapping of some of its fields (the others: base.yaml's) when given one."""
        return settings if isinstance(settings, cls) else schema.build(cls, settings, "train")

    @property
    def inner_validation(self) -> InnerValidation | None:
        """The inner validation split asked for, or None."""
        return InnerValidation(self.validation_fraction, self.seed) if self.validation == "inner" else None

    def phases(self) -> list[tuple[str, "TrainSettings"]]:
        """(folder, settings) of each training phase: one, or two when `finetune` has epochs.

        The MGMT paper: first the head alone on a frozen backbone, then everything but the
        BatchNorm layers at a lower learning rate, from the first phase's best weights.
        """
        second = self.finetune
        if not second.epochs:
            return [("", self)]
        return [
            ("phase1", self),
            (
                "phase2",
                replace(
                    self, epochs=second.epochs, lr=second.lr, freeze=second.freeze, early_stopping=second.early_stopping
                ),
            ),
        ]

    def from_scratch(self, notes: list[str]) -> "TrainSettings":
        """These settings for a network whose pretrained weights were missing (see the note added)."""
        if self.freeze != "backbone":
            return self
        notes.append("train.freeze: backbone dropped, since the backbone starts from scratch")
        return replace(self, freeze="none")  # a frozen backbone without its weights would stay random
