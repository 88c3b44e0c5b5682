"""Reading PyTorch files without unpickling: the one loader of glioscope's model, checkpoint and weights files."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from glioscope.errors import InputError


class UnsafeFile(InputError):
    """A file holds pickled objects besides tensors and plain values: loading it could run code."""


def load_tensors(path: str | Path, mmap: bool = False):
    """`torch.load(path, weights_only=True)`: tensors and plain values only, on the CPU.

    `mmap`: the tensors' bytes are mapped, not read (what their shapes say costs nothing).
    UnsafeFile for a file that holds other objects (nothing in it runs); the loader's own
    exception (OSError, RuntimeError, UnpicklingError ...) for a missing or damaged one.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines()]
        objects = [line for line in lines if "global" in line.lower()]
        if not objects:  # not an object refused, but bytes that are no pickle at all: a damaged file
            raise
        raise UnsafeFile(
            path,
            "refused: it holds pickled objects besides tensors and plain values, and loading "
            "them could run code; glioscope reads weights only (torch.load weights_only=True) "
            f"({objects[0][:160]})",
        ) from None
