"""Choose the numeric precision and memory format by measuring, not assuming.

On a GPU: CUDA autocast (bf16 where supported, else fp16 with a GradScaler) and
channels_last. On a CPU: fp32 or bf16 autocast, with or without channels_last,
whichever trains fastest for this model and input in a few timed steps.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Precision:
    dtype: str = "fp32"  # fp32 | bf16 | fp16
    channels_last: bool = False

    def autocast(self, device: torch.device):
        if self.dtype == "fp32":
            return torch.autocast(device.type, enabled=False)
        dtype = torch.bfloat16 if self.dtype == "bf16" else torch.float16
        return torch.autocast(device.type, dtype=dtype)

    def prepare(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.channels_last and tensor.dim() in (4, 5):
            fmt = torch.channels_last if tensor.dim() == 4 else torch.channels_last_3d
            return tensor.contiguous(memory_format=fmt)
        return tensor

    def prepare_model(self, model: torch.nn.Module, dims: int) -> torch.nn.Module:
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last if dims == 4 else torch.channels_last_3d)
        return model


def choose(model: torch.nn.Module, step, sample, device: torch.device, dtype: str = "auto",
           channels_last: str | bool = "auto", steps: int = 2, dims: int = 4) -> tuple[Precision, dict]:
    """The setting to train with, and the timings that decided it.

    `step(model, sample, precision)` runs one forward and backward pass; `dims` is 4
    for 2D models (N, C, H, W) and 5 for 3D ones.
    """
    if dtype != "auto" and channels_last != "auto":
        return Precision(dtype, bool(channels_last)), {}
    if device.type == "cuda":
        chosen = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return Precision(chosen if dtype == "auto" else dtype, True if channels_last == "auto" else bool(channels_last)), {}
    dtypes = ["fp32", "bf16"] if dtype == "auto" else [dtype]
    layouts = [False, True] if channels_last == "auto" else [bool(channels_last)]
    candidates = {f"{d}{'+channels_last' if layout else ''}": Precision(d, layout) for d in dtypes for layout in layouts}
    # Copies, so that timing steps change neither weights nor BatchNorm statistics.
    trials = {name: c.prepare_model(copy.deepcopy(model), dims).train() for name, c in candidates.items()}
    for name, trial in trials.items():  # warm-up: first calls allocate and pick kernels
        for _ in range(2):
            step(trial, sample, candidates[name])
    timings = {name: float("inf") for name in candidates}
    for _ in range(2):  # two interleaved rounds, the faster counts: the machine's other load hits all alike
        for name, trial in trials.items():
            start = time.perf_counter()
            for _ in range(steps):
                step(trial, sample, candidates[name])
            timings[name] = min(timings[name], (time.perf_counter() - start) / steps)
    del trials
    best = min(timings, key=timings.get)
    chosen = Precision(best.split("+")[0], best.endswith("channels_last"))
    log.info("precision: %s (seconds per step: %s)", best, {k: round(v, 4) for k, v in timings.items()})
    return chosen, timings
