"""Image folders: <class>/<image> or <split>/<class>/<image> (PNG, JPEG, TIFF, BMP)."""

from __future__ import annotations

import re
from pathlib import Path

from glioscope.cohort import NO_PATIENT_IDS, ReaderResult, Skip
from glioscope.errors import InputError
from glioscope.io.files import is_sidecar, walk_files
from glioscope.io.formats.common import Census, split_name
from glioscope.io.images import is_image, read_image_headers
from glioscope.io.labels import normalise_grade
from glioscope.io.options import ReadOptions

NAME = "imagefolder"
_GRADES = {"II", "III", "IV", "LGG", "HGG", "healthy"}


def detect(source: Path, found: Census) -> str | None:
    """A reason when `source` holds class folders of images, optionally inside split folders."""
    splits = [d for d in _folders(source) if split_name(d.name)]
    if splits and all(_class_folders(s) for s in splits):
        return f"split folders ({', '.join(d.name for d in splits)}) of class folders of images"
    classes = _class_folders(source)
    if classes:
        return f"class folders of images ({', '.join(d.name for d in classes[:6])})"
    return None


def _folders(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _class_folders(folder: Path) -> list[Path]:
    """Child folders that hold images directly; [] when any child folder holds none."""
    children = [d for d in _folders(folder) if not split_name(d.name)]
    with_images = [d for d in children if any(is_image(f) for f in d.iterdir())]
    return with_images if with_images and len(with_images) == len(children) else []


def read(source: Path, options: ReadOptions) -> ReaderResult:
    """One row per image; the class folder is the label, a split folder the source_split."""
    pattern = _compile(options.patient_regex)
    result = ReaderResult()
    splits = [d for d in _folders(source) if split_name(d.name)]
    layout = [(s, s.name) for s in splits] if splits else [(source, "")]
    candidates = []
    for folder, split in layout:
        for class_folder in _folders(folder):
            for path in walk_files(class_folder, within=source):  # links out of the source: listed by read_source
                if is_image(path):
                    candidates.append((path, class_folder.name, split))
                elif not is_sidecar(path):
                    result.skipped.append(Skip(str(path), "not an image (expected PNG, JPEG, TIFF or BMP)"))
    headers, skips = read_image_headers([c[0] for c in candidates], options.workers, options.progress)
    result.skipped += skips
    for path, label, split in candidates:
        header = headers.get(str(path))
        if header is None:
            continue
        patient = _patient(path, source, pattern, result)
        if patient is None:
            continue
        grade = normalise_grade(label)
        result.rows.append(
            {
                "patient_id": patient,
                "kind": "image",
                "label": label,
                "grade": grade if grade in _GRADES else "",
                "path": str(path),
                "rows": header["rows"],
                "cols": header["cols"],
                "source_format": NAME,
                "source_split": split,
            }
        )
    if pattern is None and result.rows:
        result.notes.insert(0, NO_PATIENT_IDS)
        result.patient_ids = False
    return result


def _compile(regex: str | None) -> re.Pattern | None:
    if not regex:
        return None
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise InputError(None, f"--patient-regex {regex!r} is not a valid regular expression ({exc})") from None
    if "patient" not in pattern.groupindex and pattern.groups == 0:
        raise InputError(None, f"--patient-regex {regex!r} needs a group: (?P<patient>...) or (...)")
    return pattern


def _patient(path: Path, source: Path, pattern: re.Pattern | None, result: ReaderResult) -> str | None:
    if pattern is None:
        # Unique and readable: the image's path without its suffix.
        return path.relative_to(source).with_suffix("").as_posix()
    match = pattern.search(path.name)
    patient = (match.group("patient") if "patient" in pattern.groupindex else match.group(1)) if match else None
    if not patient:
        result.skipped.append(Skip(str(path), f"file name does not match --patient-regex {pattern.pattern!r}"))
        return None
    return patient
