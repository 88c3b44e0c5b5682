"""SampleSet: what the runner and predict see of 2D slices and 3D volumes alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import pandas as pd
import torch


class SampleSet(ABC):
    """Samples ready for a model: one array row and one table row per sample.

    Implemented by `glioscope.samples.slices.SliceSet` (2D) and `glioscope.samples.volumes.VolumeSet`
    (3D). The table is keyed by `id_column` and has at least patient_id and label; `arrays`
    holds the samples in table order. A subclass is a dataclass with the fields `table`,
    `settings`, `skipped` and `notes`.
    """

    kind: ClassVar[str]  # "slices" | "volumes": run.json's samples kind, the key of predict's per-sample list
    table_file: ClassVar[str]  # the run folder's copy of the table
    id_column: ClassVar[str]  # the table's key
    describe_columns: ClassVar[tuple[str, ...]]  # what identifies a sample in predict's JSON
    item_column: ClassVar[str]  # the input a sample comes from (a series, volume or image; a stacked study)
    path_column: ClassVar[str]  # that input's file(s)

    table: pd.DataFrame
    skipped: list
    notes: list

    @property
    @abstractmethod
    def arrays(self) -> np.ndarray:
        """The samples, (N, C, ...) in table order."""

    @abstractmethod
    def mask(self, items: pd.DataFrame) -> np.ndarray:
        """Which samples come from the cohort rows `items` (a partition of a split)."""

    @abstractmethod
    def dataset(self, mask: np.ndarray, targets: np.ndarray, augment=None, normalisation: str = "none"):
        """A torch Dataset of the samples under `mask` with their class indices.

        `augment` (glioscope.augment.AugmentSettings) for training, None to take the samples as
        they are; `normalisation` is "imagenet", "tflite" or "none" (after augmentation).
        """

    @abstractmethod
    def keys(self, mask: np.ndarray) -> pd.DataFrame:
        """The identifying columns of a predictions table (slice_id, item_id, patient_id) for `mask`."""

    def vote_weights(self) -> np.ndarray | None:
        """Each sample's weight in its patient's probability (a weighted mean); None: all equal."""
        return None

    @property
    def channels(self) -> int:
        return int(self.arrays.shape[1])

    def __len__(self) -> int:
        return len(self.table)

    def targets(self, class_names: list[str]) -> np.ndarray:
        """Class index of every sample (its label's position in `class_names`)."""
        return self.table["label"].map({n: i for i, n in enumerate(class_names)}).to_numpy()

    def inputs(self, normalisation: str = "none") -> torch.Tensor:
        """Every sample as model input, without augmentation."""
        everything = np.ones(len(self), dtype=bool)
        dataset = self.dataset(everything, np.zeros(len(self), dtype=np.int64), None, normalisation)
        return dataset.inputs(range(len(self)))

    def describe(self, index: int) -> dict:
        """The columns that identify sample `index`, as JSON-ready values."""
        row = self.table.iloc[index]
        return {
            c: (int(row[c]) if isinstance(row[c], (int, np.integer)) else str(row[c])) for c in self.describe_columns
        }
