"""Checkpoints written atomically every epoch, with everything needed to resume exactly."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from glioscope.errors import InputError
from glioscope.util.atomic import atomic_path


def rng_state() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, **state) -> None:
    """torch.save to a temporary file, then rename: a kill never leaves half a checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict:
    try:
        # Checkpoints hold RNG states and metric dicts as well as tensors: written by us, so trusted.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a damaged file: say which
        raise InputError(path, f"cannot be read as a glioscope checkpoint ({type(exc).__name__}: {exc})") from None
