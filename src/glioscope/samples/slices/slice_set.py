"""SliceSet: the slices of a cohort under a SliceSettings, as a SampleSet for 2D models."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from glioscope.augment.images import build_batch_affine, build_train_transform, fixed_expansion
from glioscope.augment.images import normalisation as normalisation_stats
from glioscope.augment.prep import BatchPrep
from glioscope.cohort import Skip
from glioscope.samples.slices.settings import SliceSettings
from glioscope.samples.base import SampleSet
from glioscope.samples.datasets import SliceDataset


@dataclass
class SliceSet(SampleSet):
    """Slices ready for a 2D model: uint8 (N, C, H, W) images and one table row per slice (TABLE_COLUMNS)."""

    kind = "slices"
    table_file = "slices.csv"
    id_column = "slice_id"
    describe_columns = ("patient_id", "item_id", "slice_index")
    item_column = "item_id"
    path_column = "source_path"

    images: np.ndarray
    table: pd.DataFrame
    settings: SliceSettings
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def arrays(self) -> np.ndarray:
        return self.images

    def mask(self, items: pd.DataFrame) -> np.ndarray:
        """Slices of the cohort rows `items`, by item id.

        A slice of sequences stacked as channels comes from several cohort rows of one
        patient (item id "a+b+..."): it belongs where its first row does.
        """
        first = self.table["item_id"].astype(str).str.split("+", regex=False).str[0]
        return first.isin(set(items["item_id"].astype(str))).to_numpy()

    def dataset(self, mask: np.ndarray, targets: np.ndarray, augment=None, normalisation: str = "none") -> SliceDataset:
        channels, depth = self.images.shape[1], self.settings.depth
        # stack3 slices hold one grey channel three times: keep one, repeat it per batch as a view
        # (2.5D: the three copies of a group of slices are kept as they are).
        one_grey = self.settings.channels == "stack3" and depth == 1
        images = self.images[mask, :1] if one_grey else self.images[mask]
        images = torch.from_numpy(np.ascontiguousarray(images))
        affine = build_batch_affine(augment) if augment is not None else None
        prep = BatchPrep(normalisation_stats(normalisation, channels, depth), channels, affine)
        if augment is None:
            return SliceDataset(images, targets[mask], None, prep)
        return SliceDataset(
            images, targets[mask], build_train_transform(augment), prep, variants=fixed_expansion(augment.expand)
        )

    def keys(self, mask: np.ndarray) -> pd.DataFrame:
        keys = self.table.loc[mask, ["slice_id", "item_id", "patient_id"]]
        weights = self.vote_weights()
        return keys if weights is None else keys.assign(vote_weight=weights[mask])

    def vote_weights(self) -> np.ndarray | None:
        """vote: tumour_area weighs each slice by its tumour's area in the patient's probability."""
        return self.table["tumour_area"].to_numpy(float) if self.settings.vote == "tumour_area" else None
