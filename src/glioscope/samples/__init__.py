"""Samples for a model: 2D slices or 3D volumes, behind one protocol (`SampleSet`); the whole data wing.

    samples = build_samples(cohort_rows, recipe.data, cache_dir)   # a SliceSet or a VolumeSet
    train = samples.dataset(samples.mask(fold_train_items), targets, augment=recipe.augment)
    keys = samples.keys(mask)                                       # slice_id, item_id, patient_id of predictions
    samples = samples_of_study(glioscope.io.study.read_study(path), recipe.data)   # one new study, uncached

`data.kind` decides which, here and nowhere else: "slices" (`samples.slices`, one row per
slice of a series, volume or image) or "volumes" (`samples.volumes`, one row per patient and
study). Both cache what they decode (`entry_cache`, shared), both implement `SampleSet`
(`base`), and their datasets are in `datasets`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from glioscope.errors import InputError
from glioscope.io.study import Study
from glioscope.samples.base import SampleSet
from glioscope.samples.slices import build_slices, slices_of_study
from glioscope.samples.volumes import build_volumes, volume_of_study

__all__ = ["SampleSet", "build_samples", "samples_of_study"]


def build_samples(frame: pd.DataFrame, data, cache_dir: Path | None, progress: bool = True) -> SampleSet:
    """The samples of cohort rows under `data` (DataSettings); `cache_dir` None: no cache."""
    if data.kind == "volumes":
        return build_volumes(
            frame, data.volumes, None if cache_dir is None else Path(cache_dir) / "volumes", progress=progress
        )
    return build_slices(
        frame, data.slices, None if cache_dir is None else Path(cache_dir) / "slices", progress=progress
    )


def samples_of_study(study: Study, data) -> SampleSet:
    """The samples of one new study (glioscope.io.study), uncached.

    2D: the recipe's plane and sequence selection picks series when it matches any; otherwise
    the study's series are taken whatever their tags. `study`'s mask serves roi_crop and slice choice.
    """
    if data.kind == "volumes":
        return volume_of_study(study, data.volumes)
    select = {k: v for k, v in data.selection().items() if k in ("plane", "sequence")} or None
    try:
        return slices_of_study(study, data.slices, select)
    except InputError:
        if not select:
            raise
        return slices_of_study(study, data.slices)
