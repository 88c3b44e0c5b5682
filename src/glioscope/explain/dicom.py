"""A StudyMap's Grad-CAM as a DICOM Parametric Map over its source series (highdicom), for a PACS viewer.

One float frame per slice of the input series, on that slice's geometry (ImagePositionPatient,
ImageOrientationPatient and PixelSpacing are the source's), in the series' study and frame of
reference, referencing every source instance (ReferencedSeriesSequence, and each frame its
source image). A real-world value mapping says what the values are: the Grad-CAM of the class,
0 to 1, no unit. A viewer that fuses parametric maps shows it over the series; the image
comments and content description carry the research-use-only statement of the SR.

A Parametric Map rather than a colour-blended Secondary Capture: it keeps the map's values and
the series' geometry, so a viewer can window, threshold and fuse it, and it takes no room for
a second copy of the image.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from glioscope import __version__
from glioscope.dicom_sr import NOT_FOR_DIAGNOSIS, with_type2
from glioscope.errors import InputError
from glioscope.explain.study import StudyMap
from glioscope.util import atomic

SERIES_NUMBER = 9902  # the SR is 9901


def parametric_map(study_map: StudyMap, recipe: str = "") -> pydicom.Dataset:
    """The Parametric Map dataset of a StudyMap made from a DICOM series (an InputError otherwise)."""
    if study_map.cam is None:
        raise InputError(None, "this model gives no map (e.g. a radiomics model): no Grad-CAM to write as DICOM")
    sources = [_source(path) for path in study_map.source_files]
    if study_map.cam.ndim != 3 or len(sources) != study_map.cam.shape[2]:
        raise InputError(
            study_map.source_files[0] if study_map.source_files else None,
            "a DICOM Parametric Map is written over a DICOM series of single-frame images; this input is not one",
        )
    frames = np.ascontiguousarray(study_map.cam.transpose(2, 1, 0), np.float32)  # (X, Y, Z) -> (slice, row, col)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="GRADCAM",
        lut_explanation=f"Grad-CAM of class {study_map.cam_class}, 0 to 1"[:64],
        unit=Code("1", "UCUM", "no units"),
        value_range=(0.0, 1.0),
        slope=1.0,
        intercept=0.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # highdicom warns about optional attributes the sources lack
        made = hd.pm.ParametricMap(
            source_images=sources,
            pixel_array=frames,
            series_instance_uid=generate_uid(),
            series_number=SERIES_NUMBER,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer="glioscope",
            manufacturer_model_name=f"glioscope {recipe}".strip()[:64],
            software_versions=__version__,
            device_serial_number="glioscope",
            contains_recognizable_visual_features=False,
            real_world_value_mappings=[mapping],
            window_center=0.5,
            window_width=1.0,
            content_label="GRADCAM",
            content_description="Research use only: not for diagnosis",
        )
    made.SeriesDescription = f"glioscope Grad-CAM {study_map.cam_class}"[:64]
    made.ImageComments = f"{NOT_FOR_DIAGNOSIS} Grad-CAM of class {study_map.cam_class}, averaged over the fold models."
    return made


def write_parametric_map(study_map: StudyMap, out: Path, recipe: str = "") -> Path:
    """Write the Parametric Map of `study_map` to `out` atomically; an InputError naming the input when it cannot."""
    out = Path(out)
    try:
        made = parametric_map(study_map, recipe)
    except (ValueError, TypeError, AttributeError) as exc:  # highdicom's checks of the sources' attributes
        raise InputError(
            out, f"cannot be written as a DICOM Parametric Map of this input ({type(exc).__name__}: {exc})"
        ) from None
    with atomic.atomic_path(out) as tmp:
        made.save_as(tmp, enforce_file_format=True)
    return out


def _source(path: str) -> pydicom.Dataset:
    try:
        return with_type2(pydicom.dcmread(path, stop_before_pixels=True))
    except Exception as exc:  # noqa: BLE001 - not DICOM, unreadable
        raise InputError(
            path, f"is not a DICOM image ({type(exc).__name__}); a DICOM Parametric Map needs a DICOM series input"
        ) from None
