"""VolumeSet: one preprocessed volume per patient and study, as a SampleSet for 3D models."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.samples.volumes.settings import VolumeSettings
from glioscope.samples.base import SampleSet
from glioscope.samples.datasets import VolumeDataset


@dataclass
class VolumeSet(SampleSet):
    """Volumes ready for a 3D model and one table row per volume (TABLE_COLUMNS).

    volumes: float16 (N, C, D, H, W) in [0, 1]; C follows settings.channels; D runs inferior to
        superior (axial slices), H anterior to posterior, W the patient's right to left, so
        `volumes[n, c, d]` shows an axial slice in radiological convention (see `array_affine`).
    grids: (N, 4, 4) each volume's (D, H, W) indices to RAS mm in its study's world coordinates
        (None for volumes made without them).
    """

    kind = "volumes"
    table_file = "volumes.csv"
    id_column = "volume_id"
    describe_columns = ("patient_id", "volume_id", "sequences")
    item_column = "volume_id"
    path_column = "source_paths"

    volumes: np.ndarray
    table: pd.DataFrame
    settings: VolumeSettings
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    grids: np.ndarray | None = None

    @property
    def arrays(self) -> np.ndarray:
        return self.volumes

    def mask(self, items: pd.DataFrame) -> np.ndarray:
        """Volumes of the patients of the cohort rows `items` (a volume stands for all its patient's rows)."""
        return self.table["patient_id"].isin(set(items["patient_id"])).to_numpy()

    def dataset(
        self, mask: np.ndarray, targets: np.ndarray, augment=None, normalisation: str = "none"
    ) -> VolumeDataset:
        if normalisation != "none":
            raise InputError(None, f"normalisation {normalisation!r}: volumes are scaled to [0, 1] by preprocessing")
        transform = None
        if augment is not None:
            from glioscope.augment.volumes import augmentation  # it reads these arrays' axes from this package

            transform = augmentation(augment.volume, spacing=self.settings.spacing)
        return VolumeDataset(torch.from_numpy(self.volumes[mask]), targets[mask], transform)

    def keys(self, mask: np.ndarray) -> pd.DataFrame:
        """A volume is the one sample of its patient's cohort rows: it stands as slice and item in predictions."""
        rows = self.table[mask]
        return pd.DataFrame(
            {"slice_id": rows["volume_id"], "item_id": rows["volume_id"], "patient_id": rows["patient_id"]}
        )
