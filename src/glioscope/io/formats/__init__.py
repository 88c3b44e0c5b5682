"""The format registry: which readers exist, how a source's format is detected, and reading one source."""

from __future__ import annotations

import os
from pathlib import Path

from glioscope.cohort import ReaderResult, Skip
from glioscope.errors import InputError
from glioscope.io.files import SPECIAL, outside_links, special_files
from glioscope.io.formats import brats, common, dicom, imagefolder, ixi, kaggle3m, manifest, rsna_miccai
from glioscope.io.options import ReadOptions

_READERS = {module.NAME: module for module in (dicom, rsna_miccai, brats, ixi, kaggle3m, imagefolder, manifest)}
FORMATS = tuple(_READERS)  # ("dicom", "rsna-miccai", "brats", "ixi", "kaggle3m", "imagefolder", "manifest")
# Specific layouts first: an RSNA or kaggle_3m folder would also pass the generic checks,
# which only run on trees that hold one kind of file.
_LAYOUTS = (rsna_miccai, kaggle3m, imagefolder)
_GENERIC = (ixi, brats, dicom)

__all__ = ["FORMATS", "ReadOptions", "detect_format", "read_source"]


def detect_format(source: Path) -> tuple[str, str]:
    """(format, reason) for a source folder or CSV; InputError when no reader fits."""
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise InputError(source, "does not exist")
    if source.is_file():
        reason = manifest.detect(source, common.Census())
        if reason:
            return manifest.NAME, reason
        raise InputError(source, "expected a folder of images or a CSV manifest")
    found = common.census(source)
    for module in _LAYOUTS:
        reason = module.detect(source, found)
        if reason:
            return module.NAME, reason
    _refuse_mixed(source, found)
    for module in _GENERIC:
        reason = module.detect(source, found)
        if reason:
            return module.NAME, reason
    if found.images:
        raise InputError(
            source,
            f"holds images (e.g. {found.images[0].name}) but not in class folders "
            "(<class>/<image> or <split>/<class>/<image>); list them in a manifest CSV",
        )
    raise InputError(source, "no images found (no DICOM, NIfTI or image files in a known layout)")


def _refuse_mixed(source: Path, found: common.Census) -> None:
    kinds = {"NIfTI": len(found.nifti), "DICOM": len(found.dicom), "2D image": len(found.images)}
    present = {k: n for k, n in kinds.items() if n}
    if len(present) > 1:
        listing = ", ".join(f"{k} files (e.g. {_example(source, found, k)})" for k in present)
        raise InputError(
            source,
            f"holds several kinds of files: {listing}; give each layout as its own source or choose one with --format",
        )


def _example(source: Path, found: common.Census, kind: str) -> str:
    paths = {"NIfTI": found.nifti, "DICOM": found.dicom, "2D image": found.images}[kind]
    return str(paths[0].relative_to(source))


def read_source(source: Path, format: str = "auto", options: ReadOptions | None = None) -> ReaderResult:
    """Read one source with the named reader (or the detected one); result.format says which."""
    options = options or ReadOptions()
    if format == "auto":
        format, reason = detect_format(source)
        options.say(f"detected format: {format} ({reason})")
    if format not in _READERS:
        raise InputError(None, f"unknown format {format!r}; choose one of auto, {', '.join(FORMATS)}")
    reader = _READERS[format]
    path = Path(source).expanduser().resolve()
    if format == manifest.NAME:
        if not path.is_file():
            raise InputError(path, "the manifest format expects a CSV file")
    else:
        path = common.source_folder(path)
    result = reader.read(path, options)
    result.format = format
    for link in outside_links(path) if path.is_dir() else []:  # the readers do not follow them
        result.skipped.append(
            Skip(str(link), f"a link to {os.readlink(link)}, outside the source folder: not followed")
        )
    for special in special_files(path) if path.is_dir() else []:  # nor open them
        result.skipped.append(Skip(str(special), SPECIAL))
    return result
