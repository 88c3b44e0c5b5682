"""Pixels of one source as a stack of displayed 2D slices, float32 (slices, channels, rows, cols).

Orientation: NIfTI volumes are reoriented to canonical RAS (as nibabel's
`as_closest_canonical` does) and cut along `axis`; each slice is then shown the
way a DICOM viewer shows it in radiological convention: axial with anterior up and
the patient's right on the left, sagittal with superior up and anterior on the left,
coronal with superior up and the patient's right on the left. Slices run from
right to left (sagittal), posterior to anterior (coronal), inferior to superior
(axial). DICOM series keep their stored slice order and each slice as acquired
(rows x columns), which for ordinary acquisitions is the same convention. 2D images
are taken as stored.

Each stack comes with its grid: the 4 x 4 matrix mapping its (slice, row, column) indices to
RAS mm (None for 2D images and for DICOM series without ImagePositionPatient and
ImageOrientationPatient), by which `resample` puts the sequences of a study on one grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel import orientations

from glioscope.errors import InputError
from glioscope.io import dicom, images, nifti
from glioscope.samples.slices import resample

# Index of the RAS axis that each plane cuts along.
_CUT_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}
# ITU-R 601 luma, as PIL's convert("L"): colour images of grey MRI come back to their grey levels.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Source:
    """One file (or DICOM series) of an item and which of its channels to keep."""

    kind: str  # series | volume | image
    path: str
    files: str = ""  # the cohort's JSON list of a series' slice files
    pick: str | tuple[int, ...] = "grey"  # "grey", "native", or channel indices of a multi-channel file


def load_stack(source: Source, axis: str) -> tuple[np.ndarray, bool, np.ndarray | None]:
    """(slices, channels, rows, cols) float32, whether the file held 8-bit values, and the stack's grid.

    The grid maps (slice, row, column) indices to RAS mm; None when the source has no position.
    """
    grid = None
    if source.kind == "series":
        volume, geometry = dicom.load_series({"path": source.path, "files": source.files})
        eight_bit = False
        stack = volume[:, None] if volume.ndim == 3 else np.moveaxis(volume, -1, 1)  # colour series: (S, R, C, 3)
        grid = series_grid(geometry)
    elif source.kind == "volume":
        data, affine = nifti.load_volume(source.path)
        stack, eight_bit = cut_volume(data, affine, axis)[:, None], False
        grid = cut_grid(affine, data.shape[:3], axis)
    elif source.kind == "image":
        pixels = images.load_image(source.path)
        eight_bit = pixels.dtype == np.uint8
        pixels = pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)
        stack = pixels[None].astype(np.float32)
    else:
        raise InputError(source.path, f"unknown kind {source.kind!r} in the cohort table")
    return _pick_channels(stack, source), eight_bit, grid


def cut_volume(data: np.ndarray, affine: np.ndarray, axis: str) -> np.ndarray:
    """A 3D array reoriented to RAS and cut into displayed slices: (slices, rows, cols)."""
    canonical = orientations.apply_orientation(data, orientations.io_orientation(affine))
    stack = np.moveaxis(canonical, _CUT_AXIS[axis], 0)  # (n, first remaining axis, second)
    # Transposed, the later RAS axis (A or S) runs down the rows; flipping both puts it up and R on the left.
    return np.ascontiguousarray(stack.transpose(0, 2, 1)[:, ::-1, ::-1])


def cut_grid(affine: np.ndarray, shape: tuple[int, ...], axis: str) -> np.ndarray:
    """The grid of `cut_volume(data, affine, axis)`: (slice, row, column) indices to RAS mm."""
    ornt = orientations.io_orientation(affine)
    canonical_affine = np.asarray(affine, float) @ orientations.inv_ornt_aff(ornt, shape)
    canonical_shape = [0, 0, 0]
    for source_axis, (target_axis, _) in enumerate(ornt):
        canonical_shape[int(target_axis)] = shape[source_axis]
    cut = _CUT_AXIS[axis]
    first, second = (a for a in range(3) if a != cut)
    # Displayed [n, r, c] is canonical index n along the cut axis, (size - 1 - c) along the first
    # remaining axis and (size - 1 - r) along the second (see cut_volume).
    index = np.zeros((4, 4))
    index[cut, 0] = 1.0
    index[first, 2], index[first, 3] = -1.0, canonical_shape[first] - 1
    index[second, 1], index[second, 3] = -1.0, canonical_shape[second] - 1
    index[3, 3] = 1.0
    return canonical_affine @ index


def series_grid(geometry: dicom.VolumeGeometry) -> np.ndarray | None:
    """The grid of a DICOM series stack; None without ImagePositionPatient/ImageOrientationPatient.

    `load_series` gives an affine of (column, row, slice) indices; without those tags it falls
    back to the plain diagonal of the spacing at the origin, which places nothing in the patient.
    """
    affine = np.asarray(geometry.affine, float)
    if np.array_equal(affine, np.diag([*geometry.spacing, 1.0])):
        return None
    return affine[:, [2, 1, 0, 3]]  # (slice, row, column)


def _pick_channels(stack: np.ndarray, source: Source) -> np.ndarray:
    channels = stack.shape[1]
    if channels in (2, 4):  # grey + alpha, RGB + alpha: the alpha channel is not an image
        stack, channels = stack[:, : channels - 1], channels - 1
    if source.pick == "native":
        return stack
    if source.pick == "grey":
        if channels == 1:
            return stack
        return np.einsum("nchw,c->nhw", stack[:, :3], _LUMA)[:, None]
    if max(source.pick) >= channels:
        raise InputError(source.path, f"has {channels} channel(s); channel {max(source.pick) + 1} was asked for")
    return stack[:, list(source.pick)]


def load_mask(path: str, kind: str, axis: str, shape: tuple[int, ...], grid: np.ndarray | None = None) -> np.ndarray:
    """The tumour mask of an item as bool (slices, rows, cols), cut like its image.

    With `grid` (an item whose channels were resampled onto its first channel's grid), a NIfTI
    mask on another grid is resampled onto it too (nearest neighbour, through RAS mm).
    """
    if kind == "volume":
        data, affine = nifti.load_volume(path)
        mask = cut_volume(data, affine, axis) > 0
        own = cut_grid(affine, data.shape[:3], axis)
        if grid is not None and not resample.same_grid(mask.shape, own, tuple(shape), grid):
            mask = resample.onto_grid(mask[:, None].astype(np.float32), own, tuple(shape), grid, nearest=True)
            mask = mask[:, 0] > 0
    elif kind == "image":
        pixels = images.load_image(path)
        mask = (pixels.max(axis=-1) if pixels.ndim == 3 else pixels)[None] > 0
    else:
        raise InputError(path, "tumour masks are read for NIfTI volumes and 2D images, not for DICOM series")
    if mask.shape != tuple(shape):
        raise InputError(path, f"mask slices {mask.shape} do not match the image slices {tuple(shape)}")
    return mask
