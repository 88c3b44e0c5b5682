"""The slices of one new study (glioscope.io.study.read_study) for `predict`, batch prediction and the web app."""

from __future__ import annotations

from pathlib import Path

from glioscope import cohort
from glioscope.errors import InputError
from glioscope.io.study import Study, read_study
from glioscope.samples.slices.build import build_slices
from glioscope.samples.slices.settings import SliceSettings
from glioscope.samples.slices.slice_set import SliceSet


def slices_of_study(study: Study, settings: SliceSettings, select: dict[str, list[str]] | None = None) -> SliceSet:
    """The slices of a study's rows, uncached; `select` keeps rows as `glioscope.cohort.select` does
    (e.g. {"plane": ["sagittal"]}) and is an error when it keeps none."""
    frame = study.frame
    if select:
        frame = cohort.select(frame, select)
        if frame.empty:
            raise InputError(study.path, f"no series matches {select}")
    result = build_slices(frame, settings, cache_dir=None, workers=1, progress=False)
    result.skipped[:0] = study.skipped
    return result


def slices_from_file(
    path: Path, settings: SliceSettings, mask_path: Path | None = None, select: dict[str, list[str]] | None = None
) -> SliceSet:
    """Slices of a DICOM series folder (or study: every series), a NIfTI volume or a 2D image.

    `mask_path` gives a tumour mask (NIfTI or image) for roi_crop and "representative".
    """
    return slices_of_study(read_study(path, mask_path), settings, select)
