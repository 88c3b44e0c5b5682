"""Pretrained weights from torchvision's local cache or a file, never from the network."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision.models as tvm

from glioscope.errors import GlioscopeError
from glioscope.util.tensors import UnsafeFile, load_tensors

# Names a recipe may give instead of a path.
NAMED_WEIGHTS = ("imagenet", "kinetics", "kinetics400")


class WeightsUnavailable(GlioscopeError):
    """Pretrained weights were asked for but are not on this machine."""


def cache_path(arch: str) -> Path:
    """Where torchvision keeps the default weights of `arch` once downloaded."""
    weights = tvm.get_model_weights(arch).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def read_state_dict(source: str | Path, arch: str) -> dict[str, torch.Tensor]:
    """Load a state dict for `arch` from a named source ('imagenet', 'kinetics') or a file.

    A file may hold a bare state dict or a checkpoint with a 'state_dict' / 'model' entry.
    """
    if str(source).lower() in NAMED_WEIGHTS:
        path = cache_path(arch)
        if not path.is_file():
            raise WeightsUnavailable(
                f"{source} weights for {arch} are not in the local torch cache (expected {path}). "
                "glioscope never downloads: copy the file there, pass a weights file with --set model.weights=PATH, "
                "or train from scratch with --set model.weights=none"
            )
    else:
        path = Path(source)
        if not path.is_file():
            raise WeightsUnavailable(f"{path}: weights file not found")
    try:
        state = load_tensors(path)  # an UnsafeFile is an error, never a reason to fall back to scratch
    except UnsafeFile:
        raise
    except Exception as exc:  # a torch error deep inside: report the file instead
        raise WeightsUnavailable(f"{path}: cannot be read as PyTorch weights ({type(exc).__name__}: {exc})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsUnavailable(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def load_matching(model: torch.nn.Module, state: dict[str, torch.Tensor], skip_prefixes=()) -> dict[str, list[str]]:
    """Copy every tensor whose name and shape match; report what was loaded and skipped."""
    own = model.state_dict()
    loaded, skipped = [], []
    for name, tensor in state.items():
        if any(name.startswith(p) for p in skip_prefixes) or name not in own or own[name].shape != tensor.shape:
            skipped.append(name)
            continue
        own[name] = tensor
        loaded.append(name)
    model.load_state_dict(own)
    missing = [n for n in own if n not in set(loaded)]
    return {"loaded": loaded, "skipped": skipped, "initialised": missing}
