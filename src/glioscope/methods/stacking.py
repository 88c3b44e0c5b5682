"""An ensemble's combiner of one fold: fitted by glioscope.evaluate.combiners, kept as plain arrays, applied anew.

    combiner, proba = fit_combiner("logistic", members, fit_stack, target_stack, n_classes)
    combiner.save(fold / COMBINER)                       # np.savez: the member names and order, the weights
    Combiner.load(fold / COMBINER).apply(stack)          # read with allow_pickle=False, never a pickle

A Stack (glioscope.evaluate.combiners) holds patients with every member's probabilities in the
combiner's member order (NaN where a member lacks a patient). `mean` averages the members that have
a patient (evaluate.combiners.fuse_mean); `logistic` is evaluate.combiners.fit_logistic's regression,
whose coefficients are kept and applied to the same features (evaluate.combiners.features) as
scikit-learn's predict_proba does: a sigmoid for two classes, a softmax for more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, softmax

from glioscope.errors import InputError
from glioscope.evaluate import combiners
from glioscope.evaluate.combiners import Stack, fuse_mean
from glioscope.util import atomic

FORMAT = "glioscope-ensemble-combiner-1"
_fit_logistic = combiners.fit_logistic  # by this name, so that a test can watch every fit


@dataclass
class Combiner:
    """One fold's combiner: its method, the members it expects (in order), and a logistic one's weights."""

    method: str
    members: list[str]
    n_classes: int
    coef: np.ndarray | None = None  # (1 or classes known, features)
    intercept: np.ndarray | None = None
    classes: np.ndarray | None = None  # the class indices the regression was fit on, in its output order

    def apply(self, stack: Stack) -> np.ndarray:
        """Class probabilities (N, classes) of the stack's patients."""
        if stack.probs.shape[1] != len(self.members):
            raise InputError(None, f"the combiner expects {len(self.members)} members, got {stack.probs.shape[1]}")
        if self.method == "mean":
            return fuse_mean(stack)
        scores = combiners.features(stack) @ self.coef.T + self.intercept
        known = np.column_stack([1 - expit(scores[:, 0]), expit(scores[:, 0])]) if scores.shape[1] == 1 else None
        known = softmax(scores, axis=1) if known is None else known
        proba = np.zeros((len(stack.patients), self.n_classes))
        proba[:, self.classes.astype(int)] = known
        return proba

    def save(self, path: Path) -> None:
        """As a .npz of plain arrays (written atomically)."""
        arrays = {
            "header": np.array([FORMAT, self.method], dtype="U64"),
            "members": np.array(self.members, dtype=str),
            "n_classes": np.array(self.n_classes),
        }
        if self.method == "logistic":
            arrays.update(coef=self.coef, intercept=self.intercept, classes=self.classes)
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: Path) -> Combiner:
        """A combiner written by `save`; an InputError naming the file for anything else."""
        try:
            with np.load(path, allow_pickle=False) as archive:
                content = {k: archive[k] for k in archive.files}
        except (OSError, ValueError) as exc:
            raise InputError(path, f"is not an ensemble combiner file ({exc})") from None
        header = content.get("header", np.array([]))
        if len(header) != 2 or header[0] != FORMAT or header[1] not in ("logistic", "mean"):
            raise InputError(path, f"is not an ensemble combiner file ({FORMAT} expected)")
        method = str(header[1])
        needed = ["members", "n_classes"] + (["coef", "intercept", "classes"] if method == "logistic" else [])
        missing = [k for k in needed if k not in content]
        if missing:
            raise InputError(path, f"is an incomplete ensemble combiner file (no {', '.join(missing)})")
        made = cls(method, [str(m) for m in content["members"]], int(content["n_classes"]))
        if method == "logistic":
            made.coef, made.intercept, made.classes = content["coef"], content["intercept"], content["classes"]
            width = 2 * len(made.members) if made.n_classes == 2 else (made.n_classes + 1) * len(made.members)
            if made.coef.ndim != 2 or made.coef.shape[1] != width or len(made.intercept) != len(made.coef):
                raise InputError(path, f"holds weights of shape {made.coef.shape}, not of {len(made.members)} members")
        return made


def fit_combiner(
    method: str, members: list[str], fit: Stack | None, target: Stack, n_classes: int
) -> tuple[Combiner, np.ndarray]:
    """The combiner of one fold, fitted on `fit`'s patients (logistic; mean fits nothing), and its probabilities of
    `target`'s patients."""
    if method == "mean":
        return Combiner("mean", list(members), n_classes), fuse_mean(target)
    proba, model = _fit_logistic(fit, target, n_classes)
    combiner = Combiner(
        "logistic", list(members), n_classes, model.coef_.copy(), model.intercept_.copy(), model.classes_.astype(int)
    )
    return combiner, proba


def stack(tables: list[pd.DataFrame | None], class_names: list[str]) -> Stack:
    """The patients of any member's table (patient_id, target, prob_<class>; one row per patient, None: a member
    without any) with every member's probabilities, in the members' order; members must agree on targets."""
    columns = [f"prob_{c}" for c in class_names]
    patients = sorted({p for t in tables if t is not None for p in t["patient_id"]})
    index = {p: i for i, p in enumerate(patients)}
    probs = np.full((len(patients), len(tables), len(class_names)), np.nan)
    targets = np.full(len(patients), -1)
    for k, table in enumerate(tables):
        if table is None or table.empty:
            continue
        if table["patient_id"].duplicated().any():
            raise InputError(
                None,
                f"patient {table.loc[table['patient_id'].duplicated(), 'patient_id'].iloc[0]} "
                "appears twice in one member's fold",
            )
        rows = table["patient_id"].map(index).to_numpy()
        probs[rows, k] = table[columns].to_numpy(dtype=float)
        given = table["target"].to_numpy(dtype=int)
        clash = (targets[rows] >= 0) & (targets[rows] != given)
        if clash.any():
            raise InputError(None, f"patient {patients[rows[clash][0]]} has different targets in different members")
        targets[rows] = given
    return Stack(patients, targets, probs)
