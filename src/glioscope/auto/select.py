"""The choice `glioscope auto` makes, nested: per outer fold on inner out-of-fold predictions only.

For outer fold k, every finished candidate's patient predictions of the inner folds' held-out patients
(all among fold k's training patients, glioscope.auto.folds.inner_patients) decide:
- `best`: the candidate with the highest patient AUC there (ties: the earlier in the plan; a candidate that
  gave every inner patient the same probability has no AUC and is chosen only when all did) gives fold k's
  held-out patients its own outer-fold predictions (a patient it could not take, e.g. without a tumour
  slice: the next-ranked candidate's, as choices.csv's patients_given says);
- `stack`: a logistic regression on the candidates' patient logits (glioscope.methods.stacking) is fit
  there and applied to the candidates' outer-fold predictions of fold k's held-out patients.
The pooled predictions of every outer fold's held-out patients are then the figure of the whole
procedure, choice included, never selected on its own test patients. The final model is the same rule
applied to every patient: the candidate with the best pooled cross-validation AUC (`best`), or the
stack fit on every patient's out-of-fold predictions (`stack`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope.auto import folds as auto_folds
from glioscope.errors import InputError
from glioscope.evaluate.fusion_inputs import headline_model
from glioscope.evaluate.metrics import classification_metrics
from glioscope.methods.ensemble_run import fold_patients as member_patients
from glioscope.methods.stacking import fit_combiner, stack
from glioscope.rundir import PREDICTIONS, RunFolder


def fold_patients(run: Path, fold: int, names: list[str]) -> pd.DataFrame:
    """A run fold's headline predictions, one row per patient (fold, patient_id, target, prob_<class>...)."""
    path = Path(run) / f"fold{fold}" / PREDICTIONS
    models = set(pd.read_csv(path, usecols=["model"], dtype=str)["model"]) if path.is_file() else set()
    found = member_patients(path, names, headline_model(Path(run), RunFolder(run).info(), models)) if models else None
    if found is None:
        raise InputError(path, "not found or empty: the fold has no predictions")
    return found


def auc(patients: pd.DataFrame, names: list[str]) -> float:
    """Patient AUC (the second class's for two classes, macro otherwise); NaN with one class, and NaN when every
    patient has the same probabilities (a model that ranks nobody: its 0.5 is not a ranking to choose it by)."""
    if patients["target"].nunique() < 2:
        return float("nan")
    probs = patients[[f"prob_{c}" for c in names]].to_numpy(dtype=float)
    if np.ptp(probs, axis=0).max() < 1e-9:
        return float("nan")
    return float(classification_metrics(patients["target"].to_numpy(dtype=int), probs, names)["auc"])


@dataclass
class Nested:
    """The nested choice: the procedure's out-of-fold patient predictions and what each fold chose."""

    predictions: pd.DataFrame  # fold, patient_id, target, prob_<class>: the procedure's, every held-out patient
    choices: pd.DataFrame  # fold, candidate, inner_auc, chosen (best) or weight (stack)
    final: str | None  # best: the candidate the rule picks on every patient
    final_auc: dict[str, float] = field(default_factory=dict)  # each candidate's pooled CV AUC (what `final` used)


def choose(
    choose_by: str,
    candidates: list[str],
    cv_runs: dict[str, Path],
    inner_runs,
    table: pd.DataFrame,
    folds: int,
    inner_folds: int,
    names: list[str],
) -> Nested:
    """The nested choice (module docstring); `inner_runs(name, k)` is candidate name's run folder of fold k's
    inner CV."""
    held, rows = [], []
    outer = {c: outer_predictions(cv_runs[c], folds, names) for c in candidates}
    for k in range(folds):
        outer_k = {c: outer[c][outer[c]["fold"].astype(str) == str(k)] for c in candidates}
        inner_k = {}
        for c in candidates:
            parts = [fold_patients(inner_runs(c, k), j, names) for j in range(inner_folds)]
            inner_k[c] = auto_folds.inner_patients(pd.concat(parts, ignore_index=True), table, k)
        scores = {c: auc(inner_k[c], names) for c in candidates}
        if choose_by == "best":
            ranked = sorted(candidates, key=lambda c: (-np.nan_to_num(scores[c], nan=-1.0), candidates.index(c)))
            chosen, given = ranked[0], []
            for c in ranked:  # a patient the chosen candidate could not take: the next one's prediction
                given.append(
                    outer_k[c][~outer_k[c]["patient_id"].isin(set().union(*(set(g["patient_id"]) for g in given)))]
                )
            held.append(pd.concat(given, ignore_index=True).assign(fold=str(k)))
            filled = {c: len(g) for c, g in zip(ranked, given)}
            rows += [
                {"fold": k, "candidate": c, "inner_auc": scores[c], "chosen": c == chosen, "patients_given": filled[c]}
                for c in candidates
            ]
            continue
        fit = stack([inner_k[c][["patient_id", "target", *_probs(names)]] for c in candidates], names)
        target = stack([outer_k[c][["patient_id", "target", *_probs(names)]] for c in candidates], names)
        if len(set(fit.targets.tolist())) < 2:
            raise InputError(None, f"fold{k}: the inner predictions have a single class: a stack cannot be fit")
        combiner, proba = fit_combiner("logistic", candidates, fit, target, len(names))
        frame = pd.DataFrame({"fold": str(k), "patient_id": target.patients, "target": target.targets})
        for j, name in enumerate(names):
            frame[f"prob_{name}"] = proba[:, j]
        held.append(frame)
        n = len(names)
        rows += [
            {"fold": k, "candidate": c, "inner_auc": scores[c], "weight": _weight(combiner.coef, i, n)}
            for i, c in enumerate(candidates)
        ]
    predictions = pd.concat(held, ignore_index=True)
    pooled = {c: auc(outer[c], names) for c in candidates}
    final = None
    if choose_by == "best":
        final = max(candidates, key=lambda c: (np.nan_to_num(pooled[c], nan=-1.0), -candidates.index(c)))
    return Nested(predictions, pd.DataFrame(rows), final, pooled)


def _weight(coef: np.ndarray, member: int, n_classes: int) -> float:
    """A member's weight in a stack: its logit's coefficient (two classes), its mean |coefficient| (more)."""
    if n_classes == 2:
        return float(coef[0][member])
    return float(np.abs(coef[:, member * n_classes : (member + 1) * n_classes]).mean())


def _probs(names: list[str]) -> list[str]:
    return [f"prob_{c}" for c in names]


def outer_predictions(run: Path, folds: int, names: list[str]) -> pd.DataFrame:
    """A candidate's out-of-fold patient predictions over every outer fold."""
    frames = [fold_patients(run, k, names) for k in range(folds)]
    frames = [f[f["fold"].astype(str) == str(k)] for k, f in enumerate(frames)]
    return pd.concat(frames, ignore_index=True)
