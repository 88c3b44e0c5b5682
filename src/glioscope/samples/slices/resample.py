"""Sequences of one study onto one grid: the first channel's, through patient (world) coordinates.

Stacked sequences that are not co-registered (the RSNA-MICCAI layout: FLAIR, T1w, T1wCE and
T2w are separate DICOM series, acquired axial, sagittal or coronal, with their own matrix and
slice count) share the patient's coordinates, given by each series' ImagePositionPatient and
ImageOrientationPatient (or a NIfTI affine). Every channel is resampled onto the grid of the FIRST
sequence named in `SliceSettings.channels`: its plane, matrix, slices and slice order, as the
slices of that channel alone would be cut. Slice i of every channel then shows the same anatomy.

A grid is a 4 x 4 matrix mapping the (slice, row, column) indices of a displayed stack to RAS mm
(`pixels.load_stack`). The voxel of the reference grid at index q takes the value of the source at
the continuous index inv(source grid) @ reference grid @ q, interpolated linearly by SimpleITK
(sitk.Resample on index-space images: both grids are RAS, so no LPS flip is needed, and sheared
grids of tilted acquisitions are handled exactly). A point within half a voxel of the source's
edge takes the edge value; one further out is 0. The grid is not smoothed first: a thin-slice
source sampled on a thick-slice reference is point-sampled, not averaged over the slab.

Stacks of the same shape whose grids agree within GRID_TOLERANCE_MM are co-registered (BraTS):
they are concatenated as they are, untouched by this module.
"""

from __future__ import annotations

import numpy as np

# Grids whose matrices differ by no more than this (mm per voxel step, mm of origin) are the same grid.
GRID_TOLERANCE_MM = 1e-3


def same_grid(shape_a: tuple, grid_a: np.ndarray | None, shape_b: tuple, grid_b: np.ndarray | None) -> bool:
    """Whether two stacks lie on one grid: same (slices, rows, cols) and the same index-to-RAS matrix."""
    if tuple(shape_a) != tuple(shape_b):
        return False
    if grid_a is None or grid_b is None:
        return True  # no patient coordinates to tell them apart: taken as co-registered, as before
    return bool(np.allclose(grid_a, grid_b, rtol=0.0, atol=GRID_TOLERANCE_MM))


def onto_grid(
    stack: np.ndarray, grid: np.ndarray, shape: tuple[int, int, int], reference: np.ndarray, nearest: bool = False
) -> np.ndarray:
    """A (slices, channels, rows, cols) stack on `grid` resampled onto `shape` slices on `reference`.

    Linear interpolation (nearest neighbour with `nearest`, for masks); 0 outside the source.
    """
    import SimpleITK as sitk

    # Index (slice, row, col) of the reference -> continuous index of the source, through RAS mm.
    to_source = np.linalg.inv(grid) @ reference
    # SimpleITK indexes (x, y, z) = (col, row, slice): reverse the axes on both sides.
    order = [2, 1, 0]
    matrix = to_source[:3, :3][np.ix_(order, order)]
    offset = to_source[:3, 3][order]
    transform = sitk.AffineTransform(3)
    transform.SetMatrix([float(v) for v in matrix.ravel()])
    transform.SetTranslation([float(v) for v in offset])
    target = sitk.Image([int(shape[2]), int(shape[1]), int(shape[0])], sitk.sitkFloat32)  # unit spacing at 0
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    channels = []
    for channel in np.moveaxis(stack, 1, 0):
        image = sitk.GetImageFromArray(np.ascontiguousarray(channel, dtype=np.float32))
        resampled = sitk.Resample(image, target, transform, interpolator, 0.0, sitk.sitkFloat32)
        channels.append(sitk.GetArrayFromImage(resampled))
    return np.stack(channels, axis=1)
