"""A patient's slices as embeddings: the bag an attention model reads and the statistics a linear model reads.

    bags = embedding_set(slice_samples, vectors, recipe.pooling)
    bags.matrix                 # (patients, features): the pooled statistics, columns "mean_0", "std_0", ...
    bags.bag(k)                 # (slices, width) of the k-th patient, and bags.slices(k) their table rows

Like a SampleSet it has a table (one row per patient: patient_id, label, path), keys for a
predictions table, `skipped` and `notes`, so that glioscope.trained applies it as any other
kind of input; `slice_table` keeps each slice's row (slice_id, patient_id, slice_index,
tumour_area, source_path) in the bags' order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from glioscope.cohort import Skip
from glioscope.radiomics.feature_set import PatientInputs


@dataclass
class EmbeddingSet(PatientInputs):
    """Patients' slice embeddings: `table` one row per patient, `vectors` one per slice of `slice_table`."""

    kind: ClassVar[str] = "embeddings"

    table: pd.DataFrame
    slice_table: pd.DataFrame
    vectors: np.ndarray  # (slices, width) float32, in slice_table order
    matrix: pd.DataFrame  # index: patient ids (table order); columns: pooled statistics
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples: object = None  # the SliceSet embedded: its images are what the leak check compares
    attention: dict = field(default_factory=dict)  # fold -> each patient's slice attention (an attention model's)

    def columns(self, names: list[str]) -> np.ndarray:
        """The pooled features `names` of every patient, in table order (NaN where one is absent)."""
        return self.matrix.reindex(columns=names).to_numpy(dtype=float)

    def rows(self, k: int) -> np.ndarray:
        """The slice rows (positions in slice_table) of the k-th patient."""
        return np.flatnonzero(self.slice_table["patient_id"].to_numpy() == self.table.iloc[k]["patient_id"])

    def bags(self, patients=None) -> list[np.ndarray]:
        """The (slices, width) embeddings of each patient (all, or the table positions `patients`)."""
        order = range(len(self.table)) if patients is None else patients
        return [self.vectors[self.rows(k)] for k in order]


def pooled(vectors: np.ndarray, weights: np.ndarray | None, stats) -> np.ndarray:
    """The statistics `stats` (mean, std, max) of one patient's slice vectors, concatenated."""
    if weights is None or not np.isfinite(weights).all() or weights.sum() <= 0:
        weights = np.ones(len(vectors))
    w = weights / weights.sum()
    mean = (w[:, None] * vectors).sum(axis=0)
    parts = {
        "mean": mean,
        "std": np.sqrt(np.maximum((w[:, None] * (vectors - mean) ** 2).sum(axis=0), 0.0)),
        "max": vectors.max(axis=0),
    }
    return np.concatenate([parts[s] for s in stats])


def embedding_set(samples, vectors: np.ndarray, pooling, skipped: list[Skip] | None = None) -> EmbeddingSet:
    """The patients of a SliceSet whose slices were embedded as `vectors` (pooling: PoolingSettings)."""
    slices = samples.table.reset_index(drop=True)
    keep = [c for c in ("slice_id", "patient_id", "item_id", "slice_index", "tumour_area", "source_path", "label")]
    slices = slices[[c for c in keep if c in slices.columns]].copy()
    slices["patient_id"] = slices["patient_id"].astype(str)
    patients = list(dict.fromkeys(slices["patient_id"]))
    area = slices["tumour_area"].to_numpy(float) if "tumour_area" in slices.columns else None
    rows, first = [], slices.groupby("patient_id", sort=False).head(1).set_index("patient_id")
    width = vectors.shape[1]
    for patient in patients:
        where = np.flatnonzero(slices["patient_id"].to_numpy() == patient)
        weights = area[where] if (area is not None and pooling.weighted) else None
        rows.append(pooled(vectors[where], weights, pooling.stats))
    columns = [f"{stat}_{k}" for stat in pooling.stats for k in range(width)]
    matrix = pd.DataFrame(np.vstack(rows), index=pd.Index(patients, name="patient_id"), columns=columns)
    table = pd.DataFrame(
        {
            "patient_id": patients,
            "label": [str(first.loc[p, "label"]) if "label" in first.columns else "" for p in patients],
            "path": [str(first.loc[p, "source_path"]) if "source_path" in first.columns else "" for p in patients],
        }
    )
    notes = list(getattr(samples, "notes", []))
    return EmbeddingSet(table, slices, vectors, matrix, list(skipped or []), notes, samples)
