"""NIfTI volumes: check header and data once at ingest (in parallel), load them later.

Both read the header first and refuse a volume larger than the input limits (glioscope.io.limits)
before any voxel is decompressed: a few KB of gzip can promise 4000 x 4000 x 4000 float32 voxels.
"""

from __future__ import annotations

import functools
from pathlib import Path

import nibabel as nib
import numpy as np

from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.io import geometry
from glioscope.io.limits import REFUSED, InputLimits, count, current, dims
from glioscope.io.parallel import map_files

NIFTI_SUFFIXES = (".nii", ".nii.gz")
MAX_DIM = 4096  # larger axes are a corrupted header, not an MRI
# Decompressing a volume takes ~0.1 s, so a pool pays off from a handful of files on.
PARALLEL_MIN_VOLUMES = 8


def is_nifti(path: Path) -> bool:
    """True for .nii and .nii.gz files."""
    return Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def check_volume(path: str | Path, check_data: bool = True, limits: InputLimits | None = None) -> dict | Skip:
    """Shape, spacing and plane of one NIfTI file, or a Skip saying why it cannot be used.

    With `check_data` the voxels of floating-point volumes are read once to find NaN
    and inf; integer volumes (which cannot hold NaN) are read only when their size on
    disk disagrees with the header, which is how a truncated file shows. A volume over
    `limits` (default: the environment's) is skipped before any voxel is read.
    """
    path, limits = Path(path), limits or current()
    try:
        image = nib.load(path)
        problem = (
            _shape_problem(image.shape)
            or _spacing_problem(image.header.get_zooms()[:3])
            or _limit_problem(image, limits)
        )
        floating = np.issubdtype(image.get_data_dtype(), np.floating)
        if not problem and check_data and (floating or not _size_matches_header(path, image)):
            problem = _data_problem(np.asanyarray(image.dataobj))
    except Exception as exc:  # noqa: BLE001 - nibabel, gzip and zlib errors all mean this file is damaged
        return Skip(str(path), f"cannot be read as NIfTI ({type(exc).__name__}: {str(exc)[:200]})")
    if problem:
        return Skip(str(path), problem)
    shape = image.shape[:3]
    return {
        "path": str(path),
        "shape": tuple(int(s) for s in shape),
        "spacing": tuple(float(z) for z in image.header.get_zooms()[:3]),
        "plane": geometry.plane_from_affine(image.affine),
    }


def _shape_problem(shape: tuple) -> str:
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        return f"expected a 3D volume, got {len(shape)}D data of shape {tuple(shape)}"
    if min(shape) < 1 or max(shape) > MAX_DIM:
        return f"implausible volume shape {tuple(shape)}"
    return ""


def _limit_problem(image, limits: InputLimits) -> str:
    """Why the volume the header promises is too large to decode (see glioscope.io.limits), or ''."""
    shape = image.shape
    itemsize = image.get_data_dtype().itemsize
    problem = limits.problem(f"{dims(shape)} voxels of {image.get_data_dtype()}", count(shape), itemsize)
    return f"{REFUSED}: its header promises {problem}" if problem else ""


def _spacing_problem(zooms) -> str:
    if not all(np.isfinite(z) and z > 0 for z in zooms):
        return f"voxel sizes {tuple(float(z) for z in zooms)} are not positive numbers"
    return ""


def _size_matches_header(path: Path, image) -> bool:
    """Whether the file holds as many bytes as the header promises, without decompressing."""
    header = image.header
    expected = int(image.dataobj.offset) + int(np.prod(image.shape)) * header.get_data_dtype().itemsize
    with open(path, "rb") as handle:
        if not path.name.lower().endswith(".gz"):
            return handle.seek(0, 2) >= expected
        # A gzip member ends with the uncompressed size modulo 2**32 (RFC 1952); a cut file ends elsewhere.
        handle.seek(-4, 2)
        return int.from_bytes(handle.read(4), "little") == expected % 2**32


def _data_problem(data: np.ndarray) -> str:
    if np.issubdtype(data.dtype, np.floating):
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        if bad:
            return f"contains {bad} NaN or infinite voxel(s)"
    return ""


def check_volumes(paths: list[Path], check_data: bool = True, workers: int | None = None, progress: bool = True):
    """check_volume over many files in parallel: (infos by path, skips)."""
    # The limits are read here, not in the workers, whose environment is that of the pool's first start.
    check = functools.partial(check_volume, check_data=check_data, limits=current())
    results = map_files(check, [str(p) for p in paths], workers, progress, "NIfTI volumes", PARALLEL_MIN_VOLUMES)
    infos = {r["path"]: r for r in results if isinstance(r, dict)}
    return infos, [r for r in results if isinstance(r, Skip)]


def check_size(path: str | Path) -> None:
    """InputError naming the file when its header promises a volume over the input limits (for other readers)."""
    try:
        image = nib.load(path)
    except Exception:  # noqa: BLE001 - an unreadable file is the caller's reader's to report
        return
    problem = _limit_problem(image, current())
    if problem:
        raise InputError(path, problem)


def load_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Voxels as float32 (x, y, z) and the affine; InputError naming the file when unusable or over the limits."""
    path, limits = Path(path), current()
    try:
        image = nib.load(path)
        problem = _shape_problem(image.shape) or _limit_problem(image, limits)
        if problem:
            raise InputError(path, problem)
        data = np.asanyarray(image.dataobj)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - nibabel, gzip and zlib errors
        raise InputError(path, f"cannot be read as NIfTI ({type(exc).__name__}: {exc})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    problem = _shape_problem(data.shape) or _data_problem(data)
    if problem:
        raise InputError(path, problem)
    return data.astype(np.float32, copy=False), image.affine
