"""Checkpoints written atomically every epoch, with everything needed to resume exactly, and nothing that runs.

A checkpoint (and a fold's model.pt) holds tensors and plain values only: numbers, strings,
None, lists, tuples and dicts of them, which `torch.load(..., weights_only=True)` reads
without unpickling any object. The random number generators' states are stored as tensors
and plain values for that reason. Every load here uses weights_only=True: a file holding
anything else (a pickled object, whose loading could run code) is refused with a clear
error, and nothing in it runs.
"""

from __future__ import annotations

import random
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from glioscope.errors import InputError, OutputError
from glioscope.util.atomic import atomic_path
from glioscope.util.tensors import UnsafeFile, load_tensors

LAST, BEST = "checkpoint_last.pt", "checkpoint_best.pt"  # a trainer's: resume state; best epoch's weights
HISTORY = "metrics.csv"  # a trainer's per-epoch metrics


def rng_state() -> dict:
    """Python's, NumPy's, torch's (and CUDA's) generator states, as tensors and plain values."""
    version, words, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": {"version": version, "state": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    python, numpy = state["python"], state["numpy"]
    random.setstate((python["version"], tuple(int(w) for w in python["state"].tolist()), python["gauss"]))
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["position"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, **state) -> None:
    """torch.save of tensors and plain values to a temporary file, then rename: a kill never leaves half a file."""
    state = plain(state)
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except (OSError, RuntimeError) as exc:  # torch's writer reports a full disk as a RuntimeError
        free = _free_bytes(Path(path).parent)
        hint = f"; {free / 2**20:.0f} MiB free on its disk" if free is not None else ""
        raise OutputError(path, f"{str(exc).splitlines()[0]}{hint}") from None


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def plain(value):
    """`value` with NumPy numbers and arrays made Python numbers and tensors; TypeError for any other object.

    So that nothing is written that `weights_only=True` could not read back.
    """
    if isinstance(value, torch.Tensor) or value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, torch.Size):
        return value
    if isinstance(value, dict):
        items = [(k, plain(v)) for k, v in value.items()]
        return OrderedDict(items) if isinstance(value, OrderedDict) else dict(items)
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value) if type(value) in (list, tuple) else list(map(plain, value))
    raise TypeError(f"a checkpoint holds tensors and plain values only, not {type(value).__name__}")


def load_checkpoint(path: Path, mmap: bool = False) -> dict:
    """A checkpoint or model file's contents (`mmap`: its tensors mapped, not read); UnsafeFile (an InputError) for
    one that holds more than weights."""
    try:
        return load_tensors(path, mmap)
    except UnsafeFile:
        raise
    except Exception as exc:  # a damaged or foreign file: say which
        raise InputError(path, f"cannot be read as a glioscope checkpoint ({type(exc).__name__}: {exc})") from None


_RESUME_KEYS = ("model", "optimizer", "stopper", "epoch", "history", "best_state", "best_epoch", "precision", "rng")


def check_resume_state(path: Path, state, epochs: int) -> None:
    """An InputError naming the checkpoint when it cannot be what a trainer saved after some of its `epochs`."""
    if not isinstance(state, dict):
        raise InputError(path, f"is not a checkpoint (a {type(state).__name__})")
    missing = [key for key in _RESUME_KEYS if key not in state]
    if missing:
        raise InputError(path, f"is not a resumable checkpoint: it lacks {', '.join(missing)}")
    epoch, precision, rng = state["epoch"], state["precision"], state["rng"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= epochs:
        raise InputError(path, f"says it finished epoch {epoch!r}, which a run of {epochs} epochs cannot have")
    if not isinstance(state["history"], list) or len(state["history"]) != epoch:
        raise InputError(
            path,
            f"holds {len(state['history']) if isinstance(state['history'], list) else 'no'} "
            f"epochs of history for epoch {epoch}",
        )
    if (
        not isinstance(precision, dict)
        or precision.get("dtype") not in ("fp32", "bf16", "fp16")
        or not isinstance(precision.get("channels_last"), bool)
    ):
        raise InputError(path, f"has an impossible precision {precision!r} (dtype fp32, bf16 or fp16)")
    if not isinstance(rng, dict) or not {"python", "numpy", "torch"} <= set(rng):
        raise InputError(path, "lacks the random generators' states: the run could not resume exactly")
