"""A trainer's record of its epochs: metrics.csv rewritten each epoch, TensorBoard scalars, one line on the terminal.

The line names the fold, the epoch of epochs and the time left, then the epoch's figures under their
metrics.csv column names:

    sdl · fold 1/5 · epoch 3/30 · train_loss 0.59 · train_accuracy 0.71 · val_loss 0.64 · val_accuracy 0.66 ·
    lr 0.001 · 212 img/s · 1.0 s/epoch · ~27 s left in this fold

(one line on the terminal). The time left is the mean time of the epochs trained in this process times the
epochs still to train: early stopping can end the fold sooner.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tqdm import tqdm

from glioscope.train.checkpoint import HISTORY
from glioscope.util import atomic


class EpochLog:
    """Where a trainer (named `name`) writes each finished epoch; TensorBoard when asked and installed."""

    def __init__(self, out_dir: Path, name: str, tensorboard: bool, fold: str | None = None):
        self.out_dir, self.name, self.fold = Path(out_dir), name, fold
        self.writer = self._tensorboard() if tensorboard else None

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional at run time
            return None
        return SummaryWriter(str(self.out_dir / "tensorboard"))

    def write(self, history: list[dict], epochs: int, seconds: list[float] | None = None) -> None:
        """The history so far (metrics.csv) and its last row (TensorBoard, the terminal).

        epochs: how many the trainer is set to train; seconds: the times of the epochs this process trained
        (a resumed run's earlier epochs ran on another process, perhaps another machine), default the last row's.
        """
        row = history[-1]
        atomic.write_csv(self.out_dir / HISTORY, pd.DataFrame(history))
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()
        tqdm.write(self.line(row, epochs, seconds or [row.get("seconds", 0.0)]))

    def line(self, row: dict, epochs: int, seconds: list[float]) -> str:
        """The terminal's line for `row` (the module docstring)."""
        parts = [self.name]
        if self.fold:
            parts.append(self.fold)
        parts.append(f"epoch {row['epoch']}/{epochs}")
        hidden = {"epoch", "seconds", "images_per_s", "lr"}  # shown in words below, or above
        parts += [f"{k} {_figure(v)}" for k, v in row.items() if "/" not in k and k not in hidden]
        if "lr" in row:
            parts.append(f"lr {_figure(row['lr'])}")
        if "images_per_s" in row:
            parts.append(f"{row['images_per_s']:.0f} img/s")
        per_epoch = sum(seconds) / max(len(seconds), 1)
        left = per_epoch * max(epochs - int(row["epoch"]), 0)
        parts.append(f"{per_epoch:.1f} s/epoch")
        parts.append(f"~{_duration(left)} left" + (" in this fold" if self.fold else ""))
        return " · ".join(parts)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _figure(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    """A time left in the unit a person reads it in: 27 s, 4.5 min, 2.1 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
