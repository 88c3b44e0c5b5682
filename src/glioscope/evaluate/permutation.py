"""Better than chance? The statistic of a permutation test of a cross-validation, its labellings and p-value.

The test (Ojala and Garriga, JMLR 2010; scikit-learn's permutation_test_score) retrains the
recipe on the same folds with the labels shuffled by patient and asks how often a model of
labels that carry no signal scores at least as well as the real one:

    p = (1 + #{null >= observed}) / (1 + N)

which is never 0 and, with N permutations, never below 1 / (N + 1). When the cohort tells sites
apart, labels are shuffled within each site, so that the null keeps the site's class shares: a
model that learns the site scores as well under the null, and a p-value that is small says the
model ranks patients better than its site would.

The statistic is the headline model's pooled patient AUC (macro one-vs-rest for three or more
classes), and beside it the mean of the per-fold AUCs, each with its own p-value.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from glioscope.evaluate.aggregate import arrays, to_patients
from glioscope.evaluate.metrics import classification_metrics

SMALLEST_USEFUL = 19  # permutations below which p cannot reach 0.05


def statistics(images: pd.DataFrame, model: str, names: list[str]) -> dict:
    """{"pooled": AUC of every fold's held-out patients pooled, "fold_mean": mean of the folds' AUCs} of the CV set."""
    patients = to_patients(images[(images["set"] == "cv") & (images["model"] == model)], by=("fold",))
    if patients.empty:
        return {"pooled": float("nan"), "fold_mean": float("nan")}
    pooled = classification_metrics(*arrays(patients), names)["macro_auc"]
    per_fold = [classification_metrics(*arrays(rows), names)["macro_auc"] for _, rows in patients.groupby("fold")]
    finite = [v for v in per_fold if math.isfinite(v)]
    return {"pooled": float(pooled), "fold_mean": float(np.mean(finite)) if finite else float("nan")}


def p_value(observed: float, null) -> float:
    """(1 + null values at least the observed one) / (1 + valid null values); NaN when either is undefined."""
    null = np.asarray([v for v in null if v is not None and math.isfinite(v)], dtype=float)
    if observed is None or not math.isfinite(observed) or not len(null):
        return float("nan")
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + len(null)))


def labellings(groups: dict[str, list[str]]) -> float:
    """How many distinct labellings shuffling within each group can give: the product of multinomial coefficients
    (`groups`: group -> the labels of its patients)."""
    total = 1.0
    for labels in groups.values():
        counts = pd.Series(labels).value_counts().to_numpy()
        total *= math.factorial(int(counts.sum())) / math.prod(math.factorial(int(c)) for c in counts)
    return total


def shuffled(patients: pd.DataFrame, seed: int, permutation: int, draw: int = 0) -> pd.Series:
    """patient_id -> the patient whose labels it takes in this permutation, within its group.

    `patients`: one row per patient, columns patient_id and group (the site, or one group for all).
    Permutation k of seed s is the same on every machine (numpy's PCG64 seeded with [s, k], and the draw when an
    earlier draw was refused; see `trainable`).
    """
    rng = np.random.default_rng([int(seed), int(permutation), *([int(draw)] if draw else [])])
    donor = {}
    for _, rows in patients.sort_values("patient_id").groupby("group", sort=True):
        ids = rows["patient_id"].to_numpy()
        for patient, other in zip(ids, ids[rng.permutation(len(ids))]):
            donor[patient] = other
    return pd.Series(donor)


def trainable(patients: pd.DataFrame, donor: pd.Series) -> bool:
    """Whether every fold's training patients hold two classes or more under this labelling.

    `patients`: one row per patient with its label and fold. A labelling that leaves a fold's training part with
    one class cannot be trained; it is drawn again. The test is then conditional on that event, which the observed
    labelling meets too, so its p-value stays valid (the labellings it draws from are equally likely under the null).
    """
    table = patients.set_index("patient_id")
    moved = table["label"].loc[donor.loc[table.index].to_numpy()].to_numpy()
    folds = table["fold"].to_numpy()
    return all(len(set(moved[folds != k])) > 1 for k in np.unique(folds))
