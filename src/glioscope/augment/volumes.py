"""3D augmentation presets (TorchIO) for (C, D, H, W) volumes, after the spatio-spatial paper.

    transform = augmentation("light", spacing=2.0)
    augmented = transform(volume)          # a (C, D, H, W) tensor or array in, a tensor of the same dtype out

"light" is the spatio-spatial paper's: RandomAffine(scales=(0.9, 1.2), degrees=10) (per axis, linear
interpolation, padding with the minimum) and RandomFlip(axes=("LR",), flip_probability=0.25).
"heavy" adds, each with its own probability so that most volumes get one or two of them:
RandomElasticDeformation (7 control points, up to 5 mm, p 0.5), RandomMotion (up to 5 degrees
and 5 mm, 2 movements, p 0.3), RandomSpike (1 spike, intensity 0.1-0.3, p 0.3) and
RandomGhosting (2-5 ghosts along the in-plane axes H or W, intensity 0.2-0.5, p 0.3), then a clamp to
[0, 1], which the k-space artefacts can leave. The paper found heavy augmentation slowed the
loss and lowered accuracy, and used the light one.

TorchIO reads the anatomical axes and the voxel size from an image's affine, so a tensor is
wrapped in an image with the affine of `VolumeSet` arrays at `spacing` mm (D inferior-superior,
H anterior-posterior, W right-left): "LR" flips W, millimetres are millimetres. All randomness
comes from torch's global generator: `torch.manual_seed` fixes the draws, and DataLoader
workers (seeded per worker by torch) draw differently.
"""

from __future__ import annotations

import numpy as np
import torch
import torchio as tio

from glioscope.errors import InputError
from glioscope.io.geometry import array_affine

PRESETS = ("none", "light", "heavy")


class VolumeAugmentation(tio.Compose):
    """A TorchIO Compose that also takes a bare (C, D, H, W) tensor or array, with the right affine."""

    def __init__(self, transforms, spacing: float = 2.0, **kwargs):
        super().__init__(transforms, **kwargs)
        self.spacing = float(spacing)

    def __call__(self, data):
        if isinstance(data, (torch.Tensor, np.ndarray)):
            tensor = torch.as_tensor(data)
            if tensor.ndim != 4:
                raise ValueError(f"expected a (C, D, H, W) volume, got shape {tuple(tensor.shape)}")
            image = tio.ScalarImage(tensor=tensor.float(), affine=array_affine(self.spacing))
            return super().__call__(tio.Subject(volume=image))["volume"].data.to(tensor.dtype)
        return super().__call__(data)


def light_transforms() -> list[tio.Transform]:
    """The spatio-spatial paper's light augmentation."""
    return [tio.RandomAffine(scales=(0.9, 1.2), degrees=10), tio.RandomFlip(axes=("LR",), flip_probability=0.25)]


def heavy_transforms() -> list[tio.Transform]:
    """Light, then elastic deformation and k-space artefacts (motion, spike, ghosting), with moderate settings."""
    return [
        *light_transforms(),
        tio.RandomElasticDeformation(num_control_points=7, max_displacement=5.0, p=0.5),
        tio.RandomMotion(degrees=5, translation=5, num_transforms=2, p=0.3),
        tio.RandomSpike(num_spikes=1, intensity=(0.1, 0.3), p=0.3),
        # In-plane axes H and W by index: TorchIO 1.2 drops anatomical names here and fails.
        tio.RandomGhosting(num_ghosts=(2, 5), axes=(1, 2), intensity=(0.2, 0.5), p=0.3),
        tio.Clamp(0, 1),
    ]


def augmentation(preset: str, spacing: float = 2.0) -> VolumeAugmentation | None:
    """The preset's transform for volumes of `spacing` mm, or None for "none"."""
    if preset == "none" or preset is None:
        return None
    if preset == "light":
        return VolumeAugmentation(light_transforms(), spacing)
    if preset == "heavy":
        return VolumeAugmentation(heavy_transforms(), spacing)
    raise InputError(None, f"3D augmentation {preset!r}: choose one of {', '.join(PRESETS)}")
