"""Healthy anatomy: MNI152 tissue maps on the preset's grid, plus a simple head around the brain."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Head shells, in mm outward from the brain surface: extra-axial CSF, skull (with
# fatty marrow in its middle), then scalp and subcutaneous fat. Unstripped scans
# (DICOM trees, IXI) show these; BraTS-style output removes them.
CSF_RIM_MM = (0.0, 2.5)
SKULL_MM = (2.5, 9.0)
MARROW_MM = (4.5, 7.0)
SCALP_MM = (9.0, 15.0)

BRAIN_TISSUES = ("gm", "wm", "csf")
HEAD_TISSUES = ("csf_rim", "skull", "marrow", "scalp")


@dataclass(frozen=True)
class Anatomy:
    """Tissue fractions on one grid, with the grid's RAS affine."""

    tissues: dict[str, np.ndarray]  # name -> float32 fraction in [0, 1]
    affine: np.ndarray  # voxel -> RAS mm
    voxel_mm: float
    depth_mm: np.ndarray  # distance inside the brain to its surface, 0 outside

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.tissues["wm"].shape


def _template_1mm() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The 1 mm MNI152 GM, WM and brain mask maps that nilearn ships."""
    from nilearn import datasets  # heavy import (scikit-learn): only when synthesising

    images = {
        "gm": datasets.load_mni152_gm_template(resolution=1),
        "wm": datasets.load_mni152_wm_template(resolution=1),
        "brain": datasets.load_mni152_brain_mask(resolution=1),
    }
    maps = {name: image.get_fdata(dtype=np.float32) for name, image in images.items()}
    # The thresholded template leaves dark ventricles out of the mask; they are brain.
    maps["brain"] = ndimage.binary_fill_holes(maps["brain"] > 0.5).astype(np.float32)
    return maps, images["brain"].affine.copy()


def _block_mean(volume: np.ndarray, factor: int) -> np.ndarray:
    """Average non-overlapping factor^3 blocks (an anti-aliased downsampling)."""
    if factor == 1:
        return volume
    pad = [(0, -n % factor) for n in volume.shape]
    volume = np.pad(volume, pad)
    nx, ny, nz = (n // factor for n in volume.shape)
    return volume.reshape(nx, factor, ny, factor, nz, factor).mean(axis=(1, 3, 5))


def _shell(distance: np.ndarray, inner: float, outer: float, voxel: float) -> np.ndarray:
    """Fraction of each voxel between two distances, with a one-voxel partial-volume ramp."""
    rise = np.clip((distance - inner) / voxel + 0.5, 0, 1)
    fall = np.clip((outer - distance) / voxel + 0.5, 0, 1)
    return (rise * fall).astype(np.float32)


@functools.lru_cache(maxsize=4)
def anatomy(voxel_mm: int) -> Anatomy:
    """The MNI152 anatomy averaged to `voxel_mm` isotropic voxels, with head shells."""
    maps, affine_1mm = _template_1mm()
    factor = int(voxel_mm)
    if factor != voxel_mm or factor < 1:
        raise ValueError(f"voxel size must be a whole number of mm, got {voxel_mm}")
    brain = _block_mean(maps["brain"], factor)
    gm = _block_mean(maps["gm"], factor)
    wm = _block_mean(maps["wm"], factor)
    # GM and WM are probabilities from different maps: make them fractions of the brain.
    total = gm + wm
    excess = np.maximum(total / np.maximum(brain, 1e-6), 1.0)
    gm, wm = gm / excess * (brain > 0), wm / excess * (brain > 0)
    csf = np.clip(brain - gm - wm, 0, 1)

    scale = np.diag([factor, factor, factor, 1.0])
    scale[:3, 3] = (factor - 1) / 2  # a block's centre, in 1 mm voxel units
    affine = affine_1mm @ scale

    inside = brain >= 0.5
    outside_mm = ndimage.distance_transform_edt(~inside, sampling=voxel_mm)
    depth_mm = ndimage.distance_transform_edt(inside, sampling=voxel_mm)
    # Distances are voxel-centre based; shift by half a voxel to measure from the surface.
    distance = np.where(inside, 0.0, outside_mm - voxel_mm / 2)
    outside = (1 - brain).astype(np.float32)
    skull = _shell(distance, *SKULL_MM, voxel_mm) * outside
    marrow = _shell(distance, *MARROW_MM, voxel_mm) * outside
    tissues = {
        "gm": gm.astype(np.float32),
        "wm": wm.astype(np.float32),
        "csf": csf.astype(np.float32),
        "csf_rim": _shell(distance, *CSF_RIM_MM, voxel_mm) * outside,
        "skull": skull - marrow,
        "marrow": marrow,
        "scalp": _shell(distance, *SCALP_MM, voxel_mm) * outside,
    }
    depth_mm = depth_mm.astype(np.float32)
    for array in (*tissues.values(), depth_mm):
        array.setflags(write=False)  # cached and shared by every subject: copy before changing
    return Anatomy(tissues=tissues, affine=affine, voxel_mm=float(voxel_mm), depth_mm=depth_mm)
