"""Samples for a model: 2D slices or 3D volumes, behind one protocol (`SampleSet`).

    samples = build_samples(cohort_rows, recipe.data, cache_dir)   # a SliceSet or a VolumeSet
    train = samples.dataset(samples.mask(fold_train_items), targets, augment=recipe.augment)
    keys = samples.keys(mask)                                       # slice_id, item_id, patient_id of predictions

`data.kind` decides which, here and nowhere else: "slices" (glioscope.preprocess, one row
per slice of a series, volume or image) or "volumes" (glioscope.preprocess3d, one row per
patient and study). Both cache what they decode (`entry_cache`, shared), both implement
`SampleSet` (`base`), and their datasets are in `datasets`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from glioscope.errors import InputError
from glioscope.samples.base import SampleSet

__all__ = ["SampleSet", "build_samples", "samples_from_file"]


def build_samples(frame: pd.DataFrame, data, cache_dir: Path | None, progress: bool = True) -> SampleSet:
    """The samples of cohort rows under `data` (DataSettings); `cache_dir` None: no cache."""
    if data.kind == "volumes":
        from glioscope.preprocess3d import build_volumes

        return build_volumes(frame, data.volumes, None if cache_dir is None else Path(cache_dir) / "volumes",
                             progress=progress)
    from glioscope.preprocess import build_slices

    return build_slices(frame, data.slices, None if cache_dir is None else Path(cache_dir) / "slices", progress=progress)


def samples_from_file(path: Path, data, mask: Path | None = None) -> SampleSet:
    """The samples of one new study (a DICOM series or study, a NIfTI file or folder, a 2D image), uncached.

    2D: the recipe's plane and sequence selection picks series when it matches any; a lone
    series is taken whatever its tags. `mask` (2D) serves roi_crop and the representative slice.
    """
    if data.kind == "volumes":
        from glioscope.preprocess3d import volume_from_file

        return volume_from_file(Path(path), data.volumes)
    from glioscope.preprocess import slices_from_file

    select = {k: v for k, v in data.selection().items() if k in ("plane", "sequence")} or None
    try:
        return slices_from_file(Path(path), data.slices, mask_path=mask, select=select)
    except InputError:
        if not select:
            raise
        return slices_from_file(Path(path), data.slices, mask_path=mask)
