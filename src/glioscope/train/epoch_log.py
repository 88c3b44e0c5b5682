"""A trainer's record of its epochs: metrics.csv rewritten each epoch, TensorBoard scalars, one line on the terminal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tqdm import tqdm

from glioscope.train.checkpoint import HISTORY
from glioscope.util import atomic


class EpochLog:
    """Where a trainer (named `name`) writes each finished epoch; TensorBoard when asked and installed."""

    def __init__(self, out_dir: Path, name: str, tensorboard: bool):
        self.out_dir, self.name = Path(out_dir), name
        self.writer = self._tensorboard() if tensorboard else None

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional at run time
            return None
        return SummaryWriter(str(self.out_dir / "tensorboard"))

    def write(self, history: list[dict]) -> None:
        """The history so far (metrics.csv) and its last row (TensorBoard, the terminal)."""
        row = history[-1]
        atomic.write_csv(self.out_dir / HISTORY, pd.DataFrame(history))
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()
        shown = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items() if "/" not in k}
        tqdm.write(f"{self.name} " + " ".join(f"{k}={v}" for k, v in shown.items()))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
