"""Helpers shared by the format readers: folder checks, nearby files, split names, a quick census."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from glioscope.errors import InputError
from glioscope.io.dicom import has_dicom_magic, read_header
from glioscope.io.files import inside, is_sidecar, is_special
from glioscope.io.images import is_image
from glioscope.io.nifti import is_nifti

_SPLIT_NAMES = {"train", "training", "val", "valid", "validation", "test", "testing"}
_BRATS_SPLIT = re.compile(r"(Training|Validation|Testing)Data$", re.IGNORECASE)


def source_folder(source: Path) -> Path:
    """The absolute source folder; InputError when it is missing or not a folder."""
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise InputError(source, "does not exist")
    if not source.is_dir():
        raise InputError(source, "expected a folder")
    return source


def find_nearby(source: Path, name: str, up: int = 2) -> Path | None:
    """`name` in `source` or one of its `up` parents (case-insensitive), nearest first."""
    folder = Path(source)
    for _ in range(up + 1):
        for candidate in _children(folder):
            if candidate.name.lower() == name.lower() and candidate.is_file():
                return candidate
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def split_name(name: str) -> str:
    """The split a folder name states (Training, TEST, MICCAI_BraTS2020_ValidationData...), else ''."""
    if name.lower() in _SPLIT_NAMES:
        return name
    match = _BRATS_SPLIT.search(name)
    return match.group(1) if match else ""


def split_of(path: Path, root: Path) -> str:
    """The innermost split folder between `root` and `path`, else ''."""
    for part in reversed(Path(path).relative_to(root).parts[:-1]):
        if split_name(part):
            return split_name(part)
    return split_name(root.name)


@dataclass
class Census:
    """What a quick look at the first files of a tree found."""

    nifti: list[Path] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    dicom_candidates: list[Path] = field(default_factory=list)

    @functools.cached_property
    def dicom(self) -> list[Path]:
        """Candidates that really are DICOM (preamble, or parsed without one), among the first 20."""
        return [p for p in self.dicom_candidates[:20] if has_dicom_magic(p) or isinstance(read_header(p), dict)]


def census(root: Path, limit: int = 5000) -> Census:
    """Sort the first `limit` files under `root` into NIfTI, 2D images and possible DICOM."""
    found = Census()
    seen = 0
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_symlink() and not inside(path, root) or is_special(path):
                continue  # not followed, never opened (read_source lists them)
            if is_nifti(path):
                found.nifti.append(path)
            elif is_image(path):
                found.images.append(path)
            elif not is_sidecar(path):
                found.dicom_candidates.append(path)
            seen += 1
            if seen >= limit:
                return found
    return found
