"""The numeric precision and memory format a training uses: chosen from the device and the recipe, not timed.

`auto` (the default) is deterministic, so that the same recipe, cohort and seed give the
same result on the same machine:

    CUDA: bf16 autocast where the GPU supports it, else fp16 with a GradScaler; channels_last.
    CPU:  fp32, the standard layout.

On a CPU, bf16 autocast was faster than fp32 for AlexNet on one of this project's 2-core
machines (0.029 s vs 0.053 s a batch) and slower on another (0.093 s vs 0.066 s): its speed
depends on the CPU's instructions and its load, and it changes the results, so it is an
explicit choice (`train.precision: bf16`), never an automatic one. `measure` times a few
steps of each candidate and takes the fastest, as an explicit opt-in; the choice can then
differ from run to run, and run.json records it with its timings. A resumed run reuses the
choice its checkpoint holds.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass

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

    def record(self, chosen_by: str, timings: dict | None = None) -> dict:
        """What run.json and the report say of this choice."""
        return {**asdict(self), "chosen_by": chosen_by, **({"seconds_per_step": timings} if timings else {})}


def device_default(device: torch.device) -> Precision:
    """`auto`: bf16 (else fp16) autocast and channels_last on CUDA; fp32 in the standard layout on a CPU."""
    if device.type == "cuda":
        return Precision("bf16" if torch.cuda.is_bf16_supported() else "fp16", True)
    return Precision("fp32", False)


def choose(
    model: torch.nn.Module,
    step,
    sample,
    device: torch.device,
    dtype: str = "auto",
    channels_last: str | bool = "auto",
    steps: int = 2,
    dims: int = 4,
) -> tuple[Precision, dict]:
    """The setting to train with, and its record (how it was chosen; the timings when measured).

    `sample` is a function giving one batch on the device; it is called only to `measure`.
    `step(model, batch, precision)` runs one forward and backward pass; `dims` is 4 for 2D
    models (N, C, H, W) and 5 for 3D ones.
    """
    default = device_default(device)
    dtypes = _candidates(dtype, default.dtype, ["fp32", "bf16"] if device.type == "cpu" else [default.dtype, "fp32"])
    layouts = _candidates(channels_last, default.channels_last, [False, True])
    if len(dtypes) == 1 and len(layouts) == 1:
        chosen = Precision(dtypes[0], layouts[0])
        how = "auto" if dtype == "auto" and channels_last == "auto" else "recipe"
        return chosen, chosen.record(f"{how}: {_words(chosen)} on {device.type.upper()}")
    timings = _measure(model, step, sample(), device, dtypes, layouts, steps, dims)
    best = min(timings, key=timings.get)
    chosen = Precision(best.split("+")[0], best.endswith("channels_last"))
    log.info("precision: %s (seconds per step: %s)", best, {k: round(v, 4) for k, v in timings.items()})
    return chosen, chosen.record(
        "measured: the fastest of a few timed steps (not reproducible)", {k: round(v, 5) for k, v in timings.items()}
    )


def _candidates(asked, default, measured: list) -> list:
    if asked == "measure":
        return measured
    return [default] if asked == "auto" else [asked]


def _words(precision: Precision) -> str:
    kind = "fp32" if precision.dtype == "fp32" else f"{precision.dtype} autocast"
    return f"{kind}{', channels_last' if precision.channels_last else ''}"


def _measure(model, step, sample, device, dtypes, layouts, steps: int, dims: int) -> dict[str, float]:
    candidates = {
        f"{d}{'+channels_last' if layout else ''}": Precision(d, layout) for d in dtypes for layout in layouts
    }
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
            if device.type == "cuda":
                torch.cuda.synchronize()
            timings[name] = min(timings[name], (time.perf_counter() - start) / steps)
    return timings
