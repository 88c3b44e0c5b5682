"""A StudyMap's image and map as gzip NIfTI-1 files in the study's geometry (NiiVue, 3D Slicer, ITK-SNAP)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from glioscope.errors import GlioscopeError
from glioscope.explain.study import StudyMap
from glioscope.util.atomic import atomic_path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def to_nifti_bytes(study_map: StudyMap, which: Literal["image", "cam"] = "image") -> bytes:
    """gzip NIfTI-1 of the study image or of its map (float32 in [0, 1]), with the StudyMap's affine."""
    if which not in ("image", "cam"):
        raise GlioscopeError(f"which must be 'image' or 'cam', not {which!r}")
    data = study_map.image if which == "image" else study_map.cam
    if data is None:
        raise GlioscopeError("this model gives no map (e.g. a radiomics model): there is no Grad-CAM to write")
    image = nib.Nifti1Image(np.asarray(data, np.float32), np.asarray(study_map.affine, float))
    image.header.set_xyzt_units("mm")
    image.set_qform(study_map.affine, code=1)  # scanner coordinates, as the study's own file
    image.set_sform(study_map.affine, code=1)
    if which == "cam":
        image.header["cal_min"], image.header["cal_max"] = 0.0, 1.0
        image.header["descrip"] = f"Grad-CAM {study_map.cam_class}"[:79].encode()
    return gzip.compress(image.to_bytes(), compresslevel=6, mtime=0)  # mtime 0: the same map gives the same bytes


def file_names(study_map: StudyMap, stem: str) -> dict[str, str]:
    """{"image": "<stem>_image.nii.gz", "cam": "<stem>_gradcam-<class>.nii.gz"} (no cam without a map)."""
    stem = _UNSAFE.sub("_", stem).strip("._") or "study"
    names = {"image": f"{stem}_image.nii.gz"}
    if study_map.cam is not None:
        names["cam"] = f"{stem}_gradcam-{_UNSAFE.sub('_', study_map.cam_class).strip('._') or 'class'}.nii.gz"
    return names


def planned_files(maps: list[StudyMap], folder: Path) -> list[tuple[StudyMap, str, Path]]:
    """(map, "image" or "cam", file) of every file `write_study_maps` writes: named by patient, with _2, _3 ...
    for a patient's further studies."""
    seen: dict[str, int] = {}
    planned = []
    for study_map in maps:
        patient = study_map.patient_id or "study"
        seen[patient] = seen.get(patient, 0) + 1
        stem = patient if seen[patient] == 1 else f"{patient}_{seen[patient]}"
        planned += [(study_map, which, Path(folder) / name) for which, name in file_names(study_map, stem).items()]
    return planned


def write_study_maps(maps: list[StudyMap], folder: Path) -> list[Path]:
    """Each map's image and Grad-CAM as NIfTI files in `folder` (see `planned_files`), written atomically."""
    written = []
    for study_map, which, path in planned_files(maps, folder):
        with atomic_path(path) as partial:
            partial.write_bytes(to_nifti_bytes(study_map, which))  # type: ignore[arg-type]
        written.append(path)
    return written
