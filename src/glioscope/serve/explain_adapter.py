"""TEMPORARY stand-in for glioscope.explain (study.py, nifti.py) until the branch that adds it is merged; removed then.

It gives the same StudyMap and to_nifti_bytes, crudely: the study file's own image (a NIfTI volume or a 2D
image; a DICOM series gets no map here) and the model-grid Grad-CAM stretched onto the study's grid, assuming
the model's block covers the study in RAS order. Its geometry is not to be trusted; the page's code is.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class StudyMap:
    """A study at its own resolution and a model's explanation resampled onto it."""

    image: np.ndarray
    affine: np.ndarray
    cam: np.ndarray | None
    cam_class: str
    focus_voxel: tuple[int, ...] | None
    ranked_slices: list[dict] = field(default_factory=list)
    sequence: str = ""
    source_files: list[str] = field(default_factory=list)


def study_maps(run, samples, class_index=None, model_cam=None, cam_class="") -> list[StudyMap]:
    from scipy.ndimage import zoom

    from glioscope.io.images import is_image, load_image
    from glioscope.io.nifti import is_nifti, load_volume

    path = Path(str(samples.table[samples.path_column].iloc[0]))
    if is_nifti(path):
        image, affine = load_volume(path)
        image = image[..., 0] if image.ndim == 4 else image
        cam = None
        if model_cam is not None and samples.kind == "volumes":
            block = np.transpose(model_cam[0], (2, 1, 0))[::-1, ::-1, :]  # (D, H, W) -> roughly (x, y, z)
            cam = np.clip(zoom(block, np.divide(image.shape, block.shape), order=1), 0, 1).astype(np.float32)
    elif is_image(path):
        image = load_image(path).astype(np.float32)
        image = image.mean(axis=2) if image.ndim == 3 else image
        affine = np.eye(4)
        cam = None
        if model_cam is not None:
            cam = np.clip(zoom(model_cam[0], np.divide(image.shape, model_cam[0].shape), order=1), 0, 1)
            cam = cam.astype(np.float32)
    else:
        return []
    focus = None if cam is None else tuple(int(i) for i in np.unravel_index(int(np.argmax(cam)), cam.shape))
    return [StudyMap(image.astype(np.float32), affine, cam, cam_class, focus, [], "", [path.name])]


def to_nifti_bytes(found: StudyMap, which: str) -> bytes:
    import nibabel as nib

    data = found.image if which == "image" else found.cam
    return gzip.compress(nib.Nifti1Image(np.asarray(data, np.float32), found.affine).to_bytes(), compresslevel=1)
