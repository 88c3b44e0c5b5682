"""Voxel grids in clinical orientations: reorienting volumes, DICOM slice stacks, display slices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel import orientations

# nibabel axis codes (the direction each array axis increases towards) of a DICOM
# slice stack: (columns, rows, slices). The first two give the conventional
# ImageOrientationPatient of each plane: axial [1,0,0,0,1,0], sagittal [0,1,0,0,0,-1],
# coronal [1,0,0,0,0,-1].
PLANE_AXES = {"axial": ("L", "P", "S"), "sagittal": ("P", "I", "R"), "coronal": ("L", "I", "P")}
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def reorient(volume: np.ndarray, affine: np.ndarray, axcodes) -> tuple[np.ndarray, np.ndarray]:
    """The same image with its array axes in the `axcodes` orientation, and the new affine."""
    transform = orientations.ornt_transform(orientations.io_orientation(affine), orientations.axcodes2ornt(axcodes))
    data = orientations.apply_orientation(volume, transform)
    return np.ascontiguousarray(data), affine @ orientations.inv_ornt_aff(transform, volume.shape)


def voxel_of(affine: np.ndarray, point_mm) -> np.ndarray:
    """Nearest voxel index of a world point."""
    inverse = np.linalg.inv(affine)
    return np.rint(inverse[:3, :3] @ np.asarray(point_mm, float) + inverse[:3, 3]).astype(int)


def axial_slice(volume: np.ndarray, affine: np.ndarray, z_mm: float, offset: int = 0) -> tuple[np.ndarray, int]:
    """The axial slice nearest `z_mm` (+ offset slices) and its index.

    Radiological view, as on a DICOM axial image: anterior up, patient's right on the left.
    """
    data, new_affine = reorient(volume, affine, PLANE_AXES["axial"])
    k = int(np.clip(voxel_of(new_affine, [0, 0, z_mm])[2] + offset, 0, data.shape[2] - 1))
    return data[:, :, k].T, k


@dataclass
class SliceStack:
    """Thick 2D slices of one series, in spatial order, with their DICOM geometry (LPS)."""

    pixels: np.ndarray  # (n, rows, columns)
    positions: np.ndarray  # (n, 3) ImagePositionPatient of each slice
    orientation: np.ndarray  # (6,) ImageOrientationPatient
    pixel_spacing: tuple[float, float]  # (between rows, between columns)
    thickness: float

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.orientation[:3], self.orientation[3:])


def slice_stack(
    volume: np.ndarray, affine: np.ndarray, plane: str, slab: int, fov_mm: float, keep: np.ndarray
) -> SliceStack:
    """Cut `volume` (RAS affine) into slices of `slab` voxels in `plane` covering the `keep` mask.

    In-plane, the matrix is padded (or cropped) to a square field of view, as scanners do.
    """
    data, grid = reorient(volume, affine, PLANE_AXES[plane])
    mask, _ = reorient(keep, affine, PLANE_AXES[plane])
    n_slabs = data.shape[2] // slab
    covered = np.flatnonzero(mask[:, :, : n_slabs * slab].any((0, 1)).reshape(n_slabs, slab).any(1))
    first, last = covered[0], covered[-1]
    slabs = data[:, :, first * slab : (last + 1) * slab].reshape(*data.shape[:2], -1, slab).mean(-1)
    spacing = np.sqrt((grid[:3, :3] ** 2).sum(0))
    starts = []
    for axis in (0, 1):
        size = int(round(fov_mm / spacing[axis]))
        starts.append((data.shape[axis] - size) // 2)  # negative: pad; positive: crop
        slabs = _fit(slabs, axis, starts[-1], size)
    shift = np.eye(4)
    shift[:3, 3] = [starts[0], starts[1], first * slab + (slab - 1) / 2]
    shift[2, 2] = slab
    lps = RAS_TO_LPS @ grid @ shift
    columns_dir, rows_dir = (lps[:3, a] / np.linalg.norm(lps[:3, a]) for a in (0, 1))
    positions = lps[:3, 2][None] * np.arange(slabs.shape[2])[:, None] + lps[:3, 3]
    pixels = np.rint(np.clip(slabs, 0, 65535)).astype(np.uint16).transpose(2, 1, 0)
    return SliceStack(
        pixels=np.ascontiguousarray(pixels),
        positions=positions,
        orientation=np.concatenate([columns_dir, rows_dir]),
        pixel_spacing=(float(spacing[1]), float(spacing[0])),
        thickness=float(spacing[2] * slab),
    )


def _fit(array: np.ndarray, axis: int, start: int, size: int) -> np.ndarray:
    """Samples start..start+size-1 of `array` along `axis`, zero beyond its ends."""
    low, high = max(start, 0), min(start + size, array.shape[axis])
    index = [slice(None)] * array.ndim
    index[axis] = slice(low, high)
    pad = [(0, 0)] * array.ndim
    pad[axis] = (low - start, start + size - high)
    return np.pad(array[tuple(index)], pad)
