"""Pretrained weights from torchvision's local cache, an installed package or a file, never from the network."""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path

import torch
import torchvision.models as tvm

from glioscope.errors import GlioscopeError, InputError
from glioscope.models.registry import named_weights
from glioscope.util.tensors import UnsafeFile, load_tensors

# Names a recipe may give instead of a path.
NAMED_WEIGHTS = ("imagenet", "kinetics", "kinetics400")


class WeightsUnavailable(GlioscopeError):
    """Named pretrained weights (imagenet, kinetics, ...) were asked for but are not on this machine: a recipe
    may then train from scratch (model.weights_fallback)."""


class WeightsFileError(InputError):
    """A weights file given by path that does not load: always an error, never a reason to train from scratch."""


class StateDict(dict):
    """A state dict that remembers the file it was read from and the architecture it was read for."""

    origin: tuple[str, str] | None = None  # (source, arch)


_LOADS: contextvars.ContextVar[list | None] = contextvars.ContextVar("glioscope_weight_loads", default=None)


@contextlib.contextmanager
def recording_loads():
    """Collect the report of every load_matching inside the block (what loaded, what was skipped): a run's notes."""
    token = _LOADS.set([])
    try:
        yield _LOADS.get()
    finally:
        _LOADS.reset(token)


def cache_path(arch: str) -> Path:
    """Where torchvision keeps the default weights of `arch` once downloaded."""
    weights = tvm.get_model_weights(arch).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def named_file(source: str, arch: str) -> Path:
    """Where the named weights `source` of `arch` are read from: the file an installed package ships
    (register_package_weights), else torchvision's cache file; WeightsUnavailable when the package is missing."""
    for entry in named_weights(arch):
        if entry.package and entry.name == str(source).lower():
            path = entry.path
            if path is None:
                raise WeightsUnavailable(
                    f"{source} weights for {arch} come with the Python package {entry.package}, which is not "
                    f"installed: {entry.install_hint}. glioscope never downloads: install it, pass a weights file "
                    "with --set model.weights=PATH, or train from scratch with --set model.weights=none"
                )
            return path
    return cache_path(arch)


def read_state_dict(source: str | Path, arch: str) -> dict[str, torch.Tensor]:
    """Load a state dict for `arch` from a named source ('imagenet', 'kinetics') or a file.

    A file may hold a bare state dict or a checkpoint with a 'state_dict' / 'model' entry.
    """
    if str(source).lower() in NAMED_WEIGHTS:
        path = named_file(str(source), arch)
        if not path.is_file():
            raise WeightsUnavailable(
                f"{source} weights for {arch} are not on disk (expected {path}). "
                "glioscope never downloads: copy the file there, pass a weights file with --set model.weights=PATH, "
                "or train from scratch with --set model.weights=none"
            )
    else:
        path = Path(source)
        if not path.is_file():
            raise WeightsFileError(
                path, "weights file not found (model.weights names a file; use none to train from scratch)"
            )
    try:
        state = load_tensors(path)  # an UnsafeFile is an error, never a reason to fall back to scratch
    except UnsafeFile:
        raise
    except Exception as exc:  # a torch error deep inside: report the file instead
        error = WeightsUnavailable if str(source).lower() in NAMED_WEIGHTS else WeightsFileError
        message = f"cannot be read as PyTorch weights ({type(exc).__name__}: {exc})"
        raise (error(f"{path}: {message}") if error is WeightsUnavailable else error(path, message)) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsFileError(path, f"expected a state dict, found {type(state).__name__}")
    state = StateDict(state)
    state.origin = (str(source), arch)
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
    origin = getattr(state, "origin", None)
    if not loaded and origin is not None and origin[0].lower() not in NAMED_WEIGHTS:
        raise WeightsFileError(
            origin[0],
            f"none of its {len(state)} tensors fits {origin[1]} (their names or shapes "
            f"differ, e.g. {', '.join(list(state)[:3]) or 'no tensor at all'})",
        )
    model.load_state_dict(own)
    missing = [n for n in own if n not in set(loaded)]
    report = {"loaded": loaded, "skipped": skipped, "initialised": missing}
    recorded = _LOADS.get()
    if recorded is not None:
        recorded.append({**report, "origin": getattr(state, "origin", None)})
    return report


def load_notes(records: list[dict]) -> list[str]:
    """One note per weights file loaded (recording_loads): how many tensors loaded, which were skipped or new."""
    notes, seen = [], {}
    for record in records:
        source, arch = record.get("origin") or ("a state dict", "the model")
        if source.lower() in NAMED_WEIGHTS:
            continue  # torchvision's own weights: their load is the documented one
        skipped, new = record["skipped"], record["initialised"]
        text = (
            f"model.weights {source}: {len(record['loaded'])} tensors loaded into {arch}; "
            f"{len(skipped)} in the file skipped"
            + (f" (name or shape not in the model{_some(skipped)})" if skipped else "")
            + f"; {len(new)} not in the file, initialised afresh{_some(new)}; the classification head is new"
        )
        seen[text] = seen.get(text, 0) + 1
    for text, count in seen.items():
        notes.append(text + (f" (each of {count} member networks)" if count > 1 else ""))
    return notes


def _some(names: list[str], shown: int = 4) -> str:
    if not names:
        return ""
    return ": " + ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
