"""Slice geometry: the imaging plane and the order of slices along their normal."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# A normal within ~37 degrees of a patient axis still names that plane; clinical
# scans are often tilted 10-20 degrees to the AC-PC line and are still "axial".
PLANE_TOLERANCE = 0.8
_PLANE_BY_AXIS = ("sagittal", "coronal", "axial")  # normal along x (L-R), y (A-P), z (S-I)
_PLANE_WORDS = [
    (re.compile(r"(?<![A-Z])(AX|AXIAL|TRA|TRANS|TRANSVERSE)(?![A-Z])"), "axial"),
    (re.compile(r"(?<![A-Z])(SAG|SAGITTAL)(?![A-Z])"), "sagittal"),
    (re.compile(r"(?<![A-Z])(COR|CORONAL)(?![A-Z])"), "coronal"),
]


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit normal of a slice from ImageOrientationPatient (row and column direction cosines)."""
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:6], float)
    normal = np.cross(row, col)
    norm = np.linalg.norm(normal)
    if norm < 1e-6:
        raise ValueError(f"degenerate ImageOrientationPatient {list(orientation)}")
    return normal / norm


def plane_from_normal(normal: Sequence[float], tolerance: float = PLANE_TOLERANCE) -> str:
    """axial, sagittal or coronal by the dominant component of the normal; oblique when none dominates."""
    components = np.abs(np.asarray(normal, float))
    components = components / max(np.linalg.norm(components), 1e-12)
    axis = int(np.argmax(components))
    return _PLANE_BY_AXIS[axis] if components[axis] >= tolerance else "oblique"


def plane_from_orientation(orientation: Sequence[float] | None) -> str:
    """Plane of a DICOM slice from ImageOrientationPatient; 'unknown' when absent or degenerate."""
    if orientation is None or len(orientation) != 6:
        return "unknown"
    try:
        return plane_from_normal(slice_normal(orientation))
    except ValueError:
        return "unknown"


def plane_from_text(text: str) -> str:
    """Plane named in a series description (AX, SAG, COR), else 'unknown'."""
    upper = str(text or "").upper()
    for pattern, plane in _PLANE_WORDS:
        if pattern.search(upper):
            return plane
    return "unknown"


def plane_from_affine(affine: np.ndarray) -> str:
    """Plane of the stored slices of a volume: the direction of its third voxel axis."""
    return plane_from_normal(np.asarray(affine, float)[:3, 2])


def slice_positions(orientation: Sequence[float], positions: Sequence[Sequence[float]]) -> np.ndarray:
    """Distance of each slice along the normal (ImagePositionPatient projected on it)."""
    return np.asarray(positions, float) @ slice_normal(orientation)


def slice_spacing(sorted_positions: Sequence[float]) -> float | None:
    """Typical gap between consecutive slices (median), or None for a single slice."""
    gaps = np.diff(np.asarray(sorted_positions, float))
    gaps = gaps[np.abs(gaps) > 1e-4]
    return float(np.median(np.abs(gaps))) if len(gaps) else None


def format_spacing(x: float | None, y: float | None, z: float | None) -> str:
    """The cohort's "x,y,z" spacing text; empty when the in-plane spacing is unknown."""
    if x is None or y is None:
        return ""
    return ",".join(f"{v:.6g}" if v is not None else "" for v in (x, y, z))


def array_affine(spacing: float) -> np.ndarray:
    """The RAS affine of a (D, H, W) output array: D runs inferior to superior, H anterior to posterior,
    W the patient's right to left (an axial slice volume[d] displays radiologically, like the 2D slices)."""
    return np.array(
        [[0.0, 0.0, -spacing, 0.0], [0.0, -spacing, 0.0, 0.0], [spacing, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    )
