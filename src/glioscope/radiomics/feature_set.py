"""The radiomics features of patients to predict, as a set of model inputs that reads like a SampleSet.

    features = feature_set(frame, recipe, channels)   # cohort rows (with masks), one row per patient
    features.matrix                                     # (patients, features) in `features.columns` order

A trained radiomics run featurises new patients with its own settings and channels (run.json
"radiomics"), through the same code and cache as its training (glioscope.radiomics.extract);
patients that cannot be featurised (no mask, a missing sequence, an unreadable file) are in
`skipped` with the reason. Like a SampleSet it has a table (one row per patient), keys for a
predictions table, `skipped` and `notes`, so that glioscope.trained applies it as any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import pandas as pd

from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.radiomics.extract import extract_all
from glioscope.radiomics.inputs import patient_inputs


class PatientInputs:
    """What a set of model inputs with one row per patient gives glioscope.trained, as a SampleSet does: its
    `table` (patient_id, label, ...), keys for a predictions table, targets, and no vote weights."""

    id_column: ClassVar[str] = "patient_id"
    item_column: ClassVar[str] = "patient_id"
    path_column: ClassVar[str] = "path"
    describe_columns: ClassVar[tuple[str, ...]] = ("patient_id",)
    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)

    def keys(self, mask: np.ndarray) -> pd.DataFrame:
        patients = self.table.loc[mask, "patient_id"].to_numpy()
        return pd.DataFrame({"slice_id": patients, "item_id": patients, "patient_id": patients})

    def targets(self, class_names: list[str]) -> np.ndarray:
        return self.table["label"].map({n: i for i, n in enumerate(class_names)}).to_numpy()

    def vote_weights(self) -> None:
        return None

    def describe(self, index: int) -> dict:
        return {"patient_id": str(self.table.iloc[index]["patient_id"])}


@dataclass
class FeatureSet(PatientInputs):
    """Patients' features: `table` (patient_id, label, path), `matrix` in table order, what was skipped and noted."""

    kind: ClassVar[str] = "radiomics"

    table: pd.DataFrame
    matrix: pd.DataFrame  # index: patient ids; columns: feature names
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def columns(self, names: list[str]) -> np.ndarray:
        """The features `names` of every patient, in table order (NaN where one was not computed)."""
        return self.matrix.reindex(columns=names).to_numpy(dtype=float)


def feature_set(frame: pd.DataFrame, recipe, channels: list[str], progress: bool = True) -> FeatureSet:
    """The features of cohort rows' patients, with the run's `channels` (its run.json "radiomics" channels)."""
    data = replace(recipe.data, channels=tuple(channels))
    inputs = patient_inputs(frame, data)
    values, failed, _ = extract_all(inputs.patients, recipe.features, data, progress)
    skipped = [Skip(s["path"], f"patient {s['patient_id']}: {s['reason']}") for s in inputs.skipped + failed]
    if not values:
        first = skipped[0].reason if skipped else "no patient"
        raise InputError(None, f"no patient could be featurised ({first})")
    matrix = pd.DataFrame.from_dict(values, orient="index").sort_index().replace([np.inf, -np.inf], np.nan)
    first_path = {p.patient_id: p.channels[0].paths[0] for p in inputs.patients}
    labels = {p.patient_id: p.label for p in inputs.patients}
    table = pd.DataFrame(
        {
            "patient_id": matrix.index.astype(str),
            "label": [labels[p] for p in matrix.index],
            "path": [first_path[p] for p in matrix.index],
        }
    )
    return FeatureSet(table, matrix, skipped, list(inputs.notes))
