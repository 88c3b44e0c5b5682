"""The per-subject spatial warp: sampled by TorchIO once, applied to every map in one pass.

TorchIO resamples channel by channel through SimpleITK (half a second per channel
on a 2 mm grid for the composite affine + B-spline transform). The warp is smooth,
so it is evaluated once, on a coarse grid, by letting TorchIO deform an image whose
voxels hold their own coordinates; every map is then resampled at those coordinates
(torch's grid_sample, all channels at once).
"""

from __future__ import annotations

import numpy as np
import torch
import torchio as tio

# Between-subject variability of heads around the template.
AFFINE_KWARGS = {"scales": (0.92, 1.08), "degrees": 7, "translation": 6}
ELASTIC_KWARGS = {"num_control_points": 7, "max_displacement": 5, "locked_borders": 2}
COARSE_MM = 8.0  # the warp's control points are ~30 mm apart: 8 mm samples it closely enough
OUTSIDE = -1.0e4  # coordinate of points warped in from beyond the margin (clamped to the grid's corner: air)
MARGIN_COARSE_VOXELS = 3


def coarse_grid(shape, affine: np.ndarray, spacing_mm: float = COARSE_MM) -> tuple[tuple[int, ...], np.ndarray, int]:
    """A grid about `spacing_mm` apart covering the same field of view, with its affine and the factor."""
    factor = max(1, int(round(spacing_mm / float(np.sqrt((affine[:3, :3] ** 2).sum(0)).min()))))
    coarse_shape = tuple(-(-(n - 1) // factor) + 1 for n in shape)  # reaches past the last fine voxel
    return coarse_shape, affine @ np.diag([factor, factor, factor, 1.0]), factor


def upsample(coarse: np.ndarray, shape, factor: int) -> np.ndarray:
    """Trilinear interpolation of coarse-grid fields (C, ...) onto the fine grid (fine i = coarse i * factor)."""
    if factor == 1:
        return np.ascontiguousarray(coarse, dtype=np.float32)
    # With align_corners, output j samples input j (in - 1) / (out - 1) = j / factor.
    size = [(n - 1) * factor + 1 for n in coarse.shape[1:]]
    fine = torch.nn.functional.interpolate(
        torch.from_numpy(np.ascontiguousarray(coarse, dtype=np.float32))[None],
        size=size,
        mode="trilinear",
        align_corners=True,
    )
    return np.ascontiguousarray(fine[0, :, : shape[0], : shape[1], : shape[2]].numpy())


def random_warp(shape, affine: np.ndarray, seed: int) -> np.ndarray:
    """Source voxel coordinates (3, *shape) of a random affine + elastic deformation."""
    coarse_shape, coarse_affine, factor = coarse_grid(shape, affine)
    # A margin around the field of view gives points warped in from just outside it a
    # real source coordinate, which sampling then clamps to the nearest edge voxel.
    margin = MARGIN_COARSE_VOXELS
    padded = tuple(n + 2 * margin for n in coarse_shape)
    shift = np.eye(4)
    shift[:3, 3] = -margin
    identity = (np.indices(padded, dtype=np.float32) - margin) * factor
    image = tio.ScalarImage(tensor=torch.from_numpy(identity), affine=coarse_affine @ shift)
    transform = tio.RandomAffineElasticDeformation(
        affine_kwargs={**AFFINE_KWARGS, "default_pad_value": OUTSIDE}, elastic_kwargs=ELASTIC_KWARGS
    )
    with torch.random.fork_rng(devices=[]):  # TorchIO draws from torch's global generator
        torch.manual_seed(seed)
        warped = transform(image).data.numpy()[:, margin:-margin, margin:-margin, margin:-margin]
    return upsample(warped, shape, factor)


def sample(volumes: np.ndarray, coordinates: np.ndarray, nearest: bool = False) -> np.ndarray:
    """Trilinear (or nearest) samples of volumes (C, X, Y, Z) at voxel coordinates (3, ...).

    Outside the grid the edge continues: air on most sides, and below the template's
    field of view the neck goes on instead of ending in a cut.
    """
    shape = volumes.shape[1:]
    # grid_sample wants (x, y, z) of the last three axes reversed, normalised to [-1, 1].
    grid = np.stack([coordinates[axis] * (2 / max(shape[axis] - 1, 1)) - 1 for axis in (2, 1, 0)], -1)
    data = torch.from_numpy(np.ascontiguousarray(volumes, dtype=np.float32))[None]
    out = torch.nn.functional.grid_sample(
        data,
        torch.from_numpy(grid)[None],
        mode="nearest" if nearest else "bilinear",
        padding_mode="border",
        align_corners=True,
    )
    return out[0].numpy()


def apply(volumes: dict[str, np.ndarray], coordinates: np.ndarray, nearest: bool = False) -> dict[str, np.ndarray]:
    """Resample every volume at the warp's source coordinates in one pass; nearest for labels."""
    names = list(volumes)
    dtypes = [volumes[n].dtype for n in names]
    warped = sample(np.stack([volumes[n] for n in names]), coordinates, nearest)
    return {name: warped[i].astype(dtype) for i, (name, dtype) in enumerate(zip(names, dtypes))}
