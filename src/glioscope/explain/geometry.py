"""Maps from a model's grid onto a study's voxels, and the points a reader looks at first."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from glioscope.errors import InputError
from glioscope.io import dicom, images, nifti
from glioscope.cohort import series_files

# ITU-R 601 luma, as the slice pipeline reduces colour images to grey.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def onto_study(values: np.ndarray, grid: np.ndarray, shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """A 3D array on `grid` (its indices to RAS mm) resampled onto a study of `shape` voxels with `affine`.

    Trilinear; the grid's voxels end half a voxel beyond their centres, where the map falls to 0 (halfway at
    that edge), so a study voxel outside the grid's field of view takes 0. Float32.
    """
    to_grid = np.linalg.inv(np.asarray(grid, float)) @ np.asarray(affine, float)
    return ndimage.affine_transform(
        np.asarray(values, np.float32),
        to_grid[:3, :3],
        offset=to_grid[:3, 3],
        output_shape=tuple(int(n) for n in shape),
        order=1,
        mode="grid-constant",
        cval=0.0,
    ).astype(np.float32, copy=False)


def slice_onto_display(cam: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """A square (size, size) map of a model input cut at `box` (row0, col0, row1, col1) of a displayed slice
    of `shape` and resized, back on that slice's pixels: bilinear, 0 outside the box."""
    top, left, bottom, right = box
    size = cam.shape[0]
    scale_r, scale_c = size / (bottom - top), size / (right - left)
    # Pixel centres: displayed r sits at model (r + 0.5 - top) * size / side - 0.5, as the resize maps them.
    return ndimage.affine_transform(
        np.asarray(cam, np.float32),
        [scale_r, scale_c],
        offset=[(0.5 - top) * scale_r - 0.5, (0.5 - left) * scale_c - 0.5],
        output_shape=tuple(shape),
        order=1,
        mode="grid-constant",
        cval=0.0,
    )


def pad_box(shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box `glioscope.samples.slices.ops.pad_to_square` cuts from a (rows, cols) slice."""
    rows, cols = shape
    side = max(rows, cols)
    top, left = (side - rows) // 2, (side - cols) // 2
    return -top, -left, side - top, side - left


def load_study_image(row: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(voxels, affine, files) of a cohort row: a volume (X, Y, Z) with its RAS affine, or a 2D image (rows, cols)
    in grey with the identity; the files in slice order."""
    kind, path = str(row["kind"]), str(row["path"])
    files = [str(p) for p in series_files(row)]
    if kind == "volume":
        data, affine = nifti.load_volume(path)
        if data.ndim != 3:
            raise InputError(path, f"expected a 3D volume, got shape {data.shape}")
        return data, np.asarray(affine, float), files
    if kind == "series":
        pixels, geometry = dicom.load_series(row)
        if pixels.ndim == 4:  # a colour series: shown in grey
            pixels = pixels[..., :3] @ _LUMA
        return np.ascontiguousarray(pixels.transpose(2, 1, 0)), np.asarray(geometry.affine, float), files
    if kind == "image":
        pixels = images.load_image(path).astype(np.float32)
        if pixels.ndim == 3:
            pixels = pixels[..., :3] @ _LUMA if pixels.shape[-1] >= 3 else pixels[..., 0]
        return pixels, np.eye(4), files
    raise InputError(path, f"a {kind!r} row has no image to explain")


def mask_centroid(path: str, shape: tuple[int, ...], affine: np.ndarray) -> tuple[int, ...] | None:
    """The centroid of a tumour mask (NIfTI, or an image for a 2D study) as a voxel of the study; None when empty.

    A NIfTI mask on another grid is placed through world coordinates.
    """
    if len(shape) == 2:
        pixels = images.load_image(path)
        mask = (pixels.max(axis=-1) if pixels.ndim == 3 else pixels) > 0
        return _voxel(np.argwhere(mask).mean(axis=0), shape) if mask.any() else None
    data, mask_affine = nifti.load_volume(path)
    inside = np.argwhere(data > 0)
    if not len(inside):
        return None
    world = np.asarray(mask_affine, float) @ np.append(inside.mean(axis=0), 1.0)
    return _voxel((np.linalg.inv(affine) @ world)[:3], shape)


def foreground(image: np.ndarray, inside: np.ndarray | None = None) -> np.ndarray:
    """The study's voxels a reader would look at: above a tenth of its 1st-99th percentile range (so not the air
    around a head, whatever its offset: raw, z-scored or stripped to 0), and inside `inside` (the model's brain)
    where the two meet."""
    grey = np.asarray(image, np.float32)
    low, high = np.percentile(grey, [1, 99]) if grey.size else (0.0, 0.0)
    shown = grey > low + 0.1 * (high - low)
    if inside is not None and inside.shape == shown.shape and np.any(shown & inside):
        shown &= inside
    return shown


def peak(cam: np.ndarray | None, within: np.ndarray | None = None) -> tuple[int, ...] | None:
    """The voxel of the map's maximum (inside `within` when it holds any of the map); None for a flat map."""
    if cam is None or not np.any(cam > 0):
        return None
    if within is not None and np.any(cam[within] > 0):
        cam = np.where(within, cam, 0)
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(cam)), cam.shape))


def study_slice(grid: np.ndarray, index: int, shape: tuple[int, ...], affine: np.ndarray) -> dict:
    """Where displayed slice `index` of a stack on `grid` lies in a study: its voxel axis and index there."""
    to_study = np.linalg.inv(affine) @ np.asarray(grid, float)
    axis = int(np.argmax(np.abs(to_study[:3, 0])))
    at = int(round(float((to_study @ np.array([index, 0.0, 0.0, 1.0]))[axis])))
    return {"axis": axis, "slice": min(max(at, 0), shape[axis] - 1)}


def _voxel(point, shape) -> tuple[int, ...]:
    return tuple(int(min(max(round(float(v)), 0), n - 1)) for v, n in zip(point, shape))
