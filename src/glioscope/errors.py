"""Errors a user can act on: each names the file and what was expected."""

from __future__ import annotations

from pathlib import Path


class GlioscopeError(Exception):
    """Base class: the CLI prints these as one clear line and exits non-zero."""


class InputError(GlioscopeError):
    """A file or folder given by the user cannot be used."""

    def __init__(self, path: str | Path | None, message: str):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class OutputError(GlioscopeError):
    """An output could not be written (a full disk, no permission); nothing partial is left behind."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        super().__init__(f"{self.path}: could not be written ({reason})")


class PatientLeakError(GlioscopeError):
    """The same patient appears in two partitions that must be disjoint."""
