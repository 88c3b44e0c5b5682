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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel import orientations

from glioscope.errors import InputError
from glioscope.io import dicom, images, nifti

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


def load_stack(source: Source, axis: str) -> tuple[np.ndarray, bool]:
    """(slices, channels, rows, cols) float32 and whether the file held 8-bit values."""
    if source.kind == "series":
        volume, _ = dicom.load_series({"path": source.path, "files": source.files})
        eight_bit = False
        stack = volume[:, None] if volume.ndim == 3 else np.moveaxis(volume, -1, 1)  # colour series: (S, R, C, 3)
    elif source.kind == "volume":
        data, affine = nifti.load_volume(source.path)
        stack, eight_bit = cut_volume(data, affine, axis)[:, None], False
    elif source.kind == "image":
        pixels = images.load_image(source.path)
        eight_bit = pixels.dtype == np.uint8
        pixels = pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)
        stack = pixels[None].astype(np.float32)
    else:
        raise InputError(source.path, f"unknown kind {source.kind!r} in the cohort table")
    return _pick_channels(stack, source), eight_bit


def cut_volume(data: np.ndarray, affine: np.ndarray, axis: str) -> np.ndarray:
    """A 3D array reoriented to RAS and cut into displayed slices: (slices, rows, cols)."""
    canonical = orientations.apply_orientation(data, orientations.io_orientation(affine))
    stack = np.moveaxis(canonical, _CUT_AXIS[axis], 0)  # (n, first remaining axis, second)
    # Transposed, the later RAS axis (A or S) runs down the rows; flipping both puts it up and R on the left.
    return np.ascontiguousarray(stack.transpose(0, 2, 1)[:, ::-1, ::-1])


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


def load_mask(path: str, kind: str, axis: str, shape: tuple[int, ...]) -> np.ndarray:
    """The tumour mask of an item as bool (slices, rows, cols), cut like its image."""
    if kind == "volume":
        data, affine = nifti.load_volume(path)
        mask = cut_volume(data, affine, axis) > 0
    elif kind == "image":
        pixels = images.load_image(path)
        mask = (pixels.max(axis=-1) if pixels.ndim == 3 else pixels)[None] > 0
    else:
        raise InputError(path, "tumour masks are read for NIfTI volumes and 2D images, not for DICOM series")
    if mask.shape != tuple(shape):
        raise InputError(path, f"mask slices {mask.shape} do not match the image slices {tuple(shape)}")
    return mask
