"""Uploaded studies: size-limited, written to a temporary folder that is removed afterwards, zips unpacked safely.

    with save_upload([(name, fileobj), ...], mask=None, limits=Limits()) as upload:
        predict(run, upload.input)                          # a file or a folder inside upload.folder

One upload is one study: DICOM files (one series or a study, in any folder layout), a zip of them,
a NIfTI volume, or a 2D image. File names are reduced to safe characters; a zip is refused when
a member would land outside the folder (an absolute path, "..", a drive), is a link or encrypted,
when it has too many members, or when it would unpack to more than the limit (declared sizes
and the bytes actually written are both counted, and an extreme compression ratio is refused:
a zip bomb never fills the disk).
"""

from __future__ import annotations

import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from glioscope.errors import GlioscopeError
from glioscope.io.images import is_image
from glioscope.io.nifti import is_nifti
from glioscope.util.paths import inside

MB = 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one upload may be (sizes in bytes)."""

    max_upload: int = 512 * MB  # the request body, all files together
    max_files: int = 4000  # files in one request (a DICOM series is a few hundred)
    max_unzipped: int = 2048 * MB  # a zip's members, unpacked, together
    max_members: int = 10000
    max_ratio: int = 1000  # unpacked / packed size of one member: DEFLATE tops out near 1032, reached by constant bytes


class UploadError(GlioscopeError):
    """An upload refused before anything is predicted; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)


@dataclass
class Upload:
    """A saved study: `input` is what predict reads; `folder` (temporary) holds everything and is removed on close."""

    folder: Path
    input: Path
    kind: str  # "dicom" | "nifti" | "image"
    names: list[str] = field(default_factory=list)  # the files as the user named them (safe forms)
    mask: Path | None = None

    def public(self, text: str) -> str:
        """`text` with the temporary folder's path removed: paths read as the names uploaded."""
        for prefix in (str(self.folder.resolve()), str(self.folder)):
            text = text.replace(prefix + "/", "").replace(prefix, "upload")
        return text

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "Upload":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def safe_name(name: str | None, fallback: str = "file") -> str:
    """The last component of an uploaded file name in letters, digits and . _ - only; never hidden, never empty."""
    base = re.split(r"[\\/]", str(name or ""))[-1].strip()
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")[:160]
    return base or fallback


def _copy(source: BinaryIO, target: Path, budget: list[int], what: str, status: int = 413) -> None:
    """Copy in chunks, taking the bytes from budget[0]; over budget, stop and refuse."""
    with open(target, "wb") as out:
        while chunk := source.read(_CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise UploadError(what, status)
            out.write(chunk)


def _unique(folder: Path, name: str) -> Path:
    path, k = folder / name, 1
    while path.exists():
        stem, dot, suffix = name.partition(".")
        path = folder / f"{stem}-{k}{dot}{suffix}"
        k += 1
    return path


def save_upload(
    files: list[tuple[str | None, BinaryIO]], limits: Limits = Limits(), mask: tuple[str | None, BinaryIO] | None = None
) -> Upload:
    """Write the files of one study into a new temporary folder (see the module docstring)."""
    files = [(name, handle) for name, handle in files if name]  # a form's empty file field has no name
    if not files:
        raise UploadError("no file was uploaded: choose DICOM files, a zip of a series, a NIfTI volume or a 2D image")
    if len(files) > limits.max_files:
        raise UploadError(f"{len(files)} files uploaded; at most {limits.max_files} at once (zip a large series)", 413)
    folder = Path(tempfile.mkdtemp(prefix="glioscope-serve-"))
    try:
        upload = _save(folder, files, limits)
        if mask is not None and mask[0]:
            upload.mask = _save_mask(folder, mask, limits)
        return upload
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _save(folder: Path, files: list[tuple[str, BinaryIO]], limits: Limits) -> Upload:
    budget = [limits.max_upload]
    too_large = f"the upload is larger than the limit of {limits.max_upload // MB} MB"
    names = [safe_name(n) for n, _ in files]
    if len(files) == 1 and names[0].lower().endswith(".zip"):
        archive = folder / "upload.zip"
        _copy(files[0][1], archive, budget, too_large)
        study = folder / (Path(names[0]).stem or "study")
        study.mkdir()
        extracted = extract_zip(archive, study, limits)
        archive.unlink()
        return Upload(folder, _zip_input(study, extracted), _kind(extracted), names)
    if len(files) == 1 and (is_nifti(Path(names[0])) or is_image(Path(names[0]))):
        target = folder / names[0]
        _copy(files[0][1], target, budget, too_large)
        return Upload(folder, target, "nifti" if is_nifti(target) else "image", names)
    study = folder / "study"
    study.mkdir()
    saved = []
    for name, (_, handle) in zip(names, files):
        target = _unique(study, name)
        _copy(handle, target, budget, too_large)
        saved.append(target)
    return Upload(folder, study, _kind(saved), names)


def _save_mask(folder: Path, mask: tuple[str, BinaryIO], limits: Limits) -> Path:
    name = safe_name(mask[0], "mask")
    if not (is_nifti(Path(name)) or is_image(Path(name))):
        raise UploadError(f"mask {name}: expected a NIfTI volume (.nii, .nii.gz) or a 2D image", 422)
    (folder / "mask").mkdir()
    target = folder / "mask" / name
    _copy(mask[1], target, [limits.max_upload], f"the mask is larger than {limits.max_upload // MB} MB")
    return target


def _kind(paths: list[Path]) -> str:
    if paths and all(is_nifti(p) for p in paths):
        return "nifti"
    if len(paths) == 1 and is_image(paths[0]):
        return "image"
    return "dicom"


def _zip_input(study: Path, extracted: list[Path]) -> Path:
    """What predict reads of an unpacked zip: a lone volume or image itself, a lone top folder, else the whole."""
    if len(extracted) == 1 and (is_nifti(extracted[0]) or is_image(extracted[0])):
        return extracted[0]
    top = [p for p in study.iterdir()]
    if len(top) == 1 and top[0].is_dir():
        return top[0]  # e.g. a zipped BraTS case folder keeps the case's name (its patient id)
    return study


def extract_zip(archive: Path, dest: Path, limits: Limits) -> list[Path]:
    """Unpack `archive` into `dest`, refusing anything unsafe (see the module docstring); the files written."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            _check_members(members, limits)
            budget = [limits.max_unzipped]
            written = []
            for info in members:
                parts = _member_parts(info)
                if info.is_dir() or parts is None:
                    continue
                target = dest.joinpath(*parts)
                if not inside(target, dest):
                    raise UploadError(f"zip member {info.filename!r} would be written outside the upload folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                target = _unique(target.parent, target.name)
                with zf.open(info) as source:
                    _copy(
                        source,
                        target,
                        budget,
                        f"the zip unpacks to more than {limits.max_unzipped // MB} MB (refused as a possible zip bomb)",
                    )
                written.append(target)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise UploadError(f"the zip cannot be read ({exc})", 422) from None
    if not written:
        raise UploadError("the zip holds no file", 422)
    return written


def _check_members(members: list[zipfile.ZipInfo], limits: Limits) -> None:
    if len(members) > limits.max_members:
        raise UploadError(f"the zip has {len(members)} members; at most {limits.max_members}", 413)
    declared = sum(m.file_size for m in members)
    if declared > limits.max_unzipped:
        raise UploadError(
            f"the zip would unpack to {declared // MB} MB, more than the limit of "
            f"{limits.max_unzipped // MB} MB (refused as a possible zip bomb)",
            413,
        )
    for info in members:
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or (parts and re.match(r"^[A-Za-z]:", parts[0])):
            raise UploadError(f"zip member {info.filename!r} points outside the upload folder: refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UploadError(f"zip member {info.filename!r} is a symbolic link: refused")
        if info.flag_bits & 0x1:
            raise UploadError(f"zip member {info.filename!r} is encrypted: give an unencrypted zip", 422)
        if info.file_size > MB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UploadError(
                f"zip member {info.filename!r} is compressed {info.file_size // max(info.compress_size, 1)}"
                " times (refused as a possible zip bomb)",
                413,
            )


def _member_parts(info: zipfile.ZipInfo) -> list[str] | None:
    """A member's path as safe components; None for what is not part of a study (macOS resource forks)."""
    parts = [p for p in PurePosixPath(info.filename.replace("\\", "/")).parts if p not in ("", ".")]
    if not parts or parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] == ".DS_Store":
        return None
    return [safe_name(p) for p in parts]
