"""The classifier of the radiomics baseline, with its settings chosen by an inner CV on the training patients only.

Every model starts with the same steps, fit on the training patients alone: missing values
(a feature PyRadiomics could not compute) take the training median, constant features are
dropped, and the rest are standardised. Then

- ``logistic``: an optional correlation filter (features ranked by their ANOVA F on the
  training labels; a feature whose |r| with a better-ranked kept one exceeds the threshold
  is dropped) and a logistic regression with an L1 penalty (sparse: it selects features;
  liblinear, one class against the rest when there are more than two) or an L2 penalty
  (multinomial, lbfgs), of strength 1/C;
- ``forest``: a random forest (`trees` trees) with `max_features` and `min_samples_leaf`.

The inner CV splits the training patients (one row each, so by patient) into stratified,
seeded folds, fits every setting of the grid on each inner training part, pools the
out-of-fold probabilities and scores them by macro one-vs-rest AUC; the best setting (ties:
the first in grid order, the strongest regularisation first) is refit on all training
patients. A setting whose model keeps no feature in some inner part (a strong L1 penalty
zeroes every coefficient) is not chosen: such a model gives every patient of a part one
score, the part's training prevalence, and pooled over stratified parts those constants rank
patients against their labels, which can win an inner CV on a weak signal. Only when every
setting is so is the best of them kept, and the fold says so (`Fitted.note`); likewise when the
refit on all training patients keeps no feature and no other setting's refit does. The chosen
setting's out-of-fold probabilities are the fold's validation predictions (glioscope fuse fits
its combiners on them).
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import VarianceThreshold, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from glioscope.errors import InputError
from glioscope.split import assert_disjoint

# scikit-learn 1.8 replaced `penalty` by l1_ratio (1 = L1, 0 = L2); older versions only know `penalty`.
_L1_RATIO = inspect.signature(LogisticRegression).parameters["penalty"].default == "deprecated"


class CorrelationFilter(TransformerMixin, BaseEstimator):
    """Keep features in order of their ANOVA F; drop one whose |r| with a kept feature exceeds `threshold`."""

    def __init__(self, threshold: float | None = None):
        self.threshold = threshold

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        if self.threshold is None or X.shape[1] < 2:
            self.keep_ = np.arange(X.shape[1])
            return self
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = np.nan_to_num(f_classif(X, y)[0], nan=0.0) if y is not None else np.zeros(X.shape[1])
            corr = np.nan_to_num(np.abs(np.corrcoef(X, rowvar=False)), nan=0.0)
        keep: list[int] = []
        for j in np.argsort(-scores, kind="stable"):
            if not keep or corr[j, keep].max() <= self.threshold:
                keep.append(int(j))
        self.keep_ = np.array(sorted(keep))
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float)[:, self.keep_]


def grid(settings) -> list[dict]:
    """Every setting the inner CV tries, in order (`settings`: ClassifierSettings)."""
    if settings.model == "logistic":
        return [
            {"correlation": r, "penalty": p, "C": c}
            for r in settings.correlation
            for p in settings.penalties
            for c in settings.C
        ]
    return [
        {"max_features": m, "min_samples_leaf": leaf}
        for m in settings.max_features
        for leaf in settings.min_samples_leaf
    ]


def make_model(params: dict, settings, workers: int | None = None) -> Pipeline:
    """The pipeline of one grid setting."""
    weight = None if settings.class_weight == "none" else settings.class_weight
    steps = [
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("constant", VarianceThreshold(0.0)),
    ]
    if settings.model == "forest":
        forest = RandomForestClassifier(
            n_estimators=settings.trees,
            max_features=params["max_features"],
            min_samples_leaf=params["min_samples_leaf"],
            class_weight=weight,
            random_state=settings.seed,
            n_jobs=workers,
        )
        return Pipeline(steps + [("forest", forest)])
    l1 = params["penalty"] == "l1"
    options = {
        "C": params["C"],
        "class_weight": weight,
        "random_state": settings.seed,
        "max_iter": 5000,
        "solver": "liblinear" if l1 else "lbfgs",
    }
    options.update({"l1_ratio": 1.0 if l1 else 0.0} if _L1_RATIO else {"penalty": params["penalty"]})
    # L1: liblinear's coordinate descent, one class against the rest (saga took 50-100 times longer here)
    logistic = OneVsRestClassifier(LogisticRegression(**options)) if l1 else LogisticRegression(**options)
    return Pipeline(
        steps
        + [("scale", StandardScaler()), ("filter", CorrelationFilter(params["correlation"])), ("logistic", logistic)]
    )


def probabilities(model: Pipeline, X: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n_classes) probabilities; a class the model never saw gets 0."""
    out = np.zeros((len(X), n_classes))
    out[:, model.classes_.astype(int)] = model.predict_proba(X)
    return out


def class_prior(y: np.ndarray, n_classes: int) -> np.ndarray:
    """The classes' frequencies in `y`: what a part of an inner CV whose training patients hold one class predicts
    (no classifier can be fit on it, and any probability that ranks its validation patients would be invented)."""
    return np.bincount(y, minlength=n_classes) / len(y)


def macro_auc(y: np.ndarray, probs: np.ndarray) -> float:
    """Mean one-vs-rest AUC over the classes present (binary: the AUC of the second class); NaN if undefined."""
    present = sorted(set(int(v) for v in y))
    if len(present) < 2:
        return float("nan")
    shown = present[1:] if len(present) == 2 else present
    return float(np.mean([roc_auc_score(y == c, probs[:, c]) for c in shown]))


def _fit(model: Pipeline, X, y) -> Pipeline:
    # One BLAS thread: on a few dozen patients, threads cost ten times what they save.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


@dataclass
class Fitted:
    """A fold's classifier: the chosen setting, the inner CV's grid, the final model and what it uses."""

    params: dict
    inner_score: float
    inner_folds: int
    grid: pd.DataFrame  # one row per setting: its parameters and inner macro AUC
    model: Pipeline
    validation: np.ndarray  # (n_train, n_classes): the chosen setting's inner out-of-fold probabilities
    weights: pd.Series  # per feature used: |coefficient| (mean over classes) or forest importance, largest first
    note: str = ""  # why the chosen setting is not the inner CV's best, or why it keeps no feature


def fit_with_inner_cv(
    X: np.ndarray,
    y: np.ndarray,
    patients: list[str],
    features: list[str],
    n_classes: int,
    settings,
    workers: int | None = None,
    job: str = "fold",
) -> Fitted:
    """Choose the setting by inner CV on these (training) patients, then refit it on all of them."""
    counts = np.bincount(y, minlength=n_classes)
    if (counts > 0).sum() < 2:
        raise InputError(None, f"{job}: its training patients have a single class; a classifier needs two")
    folds = int(max(2, min(settings.inner_folds, counts[counts > 0].min())))
    if len(y) < 2 * folds:
        raise InputError(None, f"{job}: {len(y)} training patient(s) are too few for an inner CV of {folds} folds")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=settings.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a class with fewer patients than inner folds
        parts = list(splitter.split(X, y))
    ids = np.asarray(patients)
    for inner_train, inner_validation in parts:
        assert_disjoint({"inner training": ids[inner_train], "inner validation": ids[inner_validation]})
    rows, oofs = [], []
    for params in grid(settings):
        oof = np.zeros((len(y), n_classes))
        kept = []
        for inner_train, inner_validation in parts:
            if len(np.unique(y[inner_train])) < 2:  # a class of one patient: this part's training holds one class
                oof[inner_validation] = class_prior(y[inner_train], n_classes)
                continue
            model = _fit(make_model(params, settings, workers), X[inner_train], y[inner_train])
            oof[inner_validation] = probabilities(model, X[inner_validation], n_classes)
            kept.append(len(feature_weights(model, features)))
        rows.append({**params, "inner_macro_auc": macro_auc(y, oof), "fewest_features_kept": min(kept, default=0)})
        oofs.append(oof)
    table = pd.DataFrame(rows)
    order = _ranked(table)
    keeping = [i for i in order if table.at[i, "fewest_features_kept"] > 0]
    note = ""
    if not keeping:
        note = "every setting of the grid kept no feature in some inner part; the best of them is used"
    for best in keeping or order[:1]:
        chosen = {k: v for k, v in rows[best].items() if k not in ("inner_macro_auc", "fewest_features_kept")}
        model = _fit(make_model(chosen, settings, workers), X, y)
        weights = feature_weights(model, features)
        if len(weights):
            break
    if not len(weights):
        note = note or "no setting's refit on the training patients keeps a feature: every patient gets one score"
    elif best != order[0]:
        note = (
            f"the inner CV's best setting ({_setting(rows[order[0]])}) kept no feature in some inner part or in "
            f"its refit; the best setting that keeps features is used"
        )
    return Fitted(chosen, rows[best]["inner_macro_auc"], folds, table, model, oofs[best], weights, note)


def _ranked(table: pd.DataFrame) -> list[int]:
    """Grid positions by inner AUC, best first; ties (and NaN, last) keep grid order."""
    score = table["inner_macro_auc"].fillna(-np.inf).to_numpy()
    return [int(i) for i in np.argsort(-score, kind="stable")]


def _setting(row: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in row.items() if k not in ("inner_macro_auc", "fewest_features_kept"))


def feature_weights(model: Pipeline, features: list[str]) -> pd.Series:
    """The features the fitted model uses, with their weight, largest first (L1: only non-zero coefficients)."""
    names = np.asarray(features)[model.named_steps["constant"].get_support()]
    if "forest" in model.named_steps:
        weights = model.named_steps["forest"].feature_importances_
    else:
        names = names[model.named_steps["filter"].keep_]
        logistic = model.named_steps["logistic"]
        parts = getattr(logistic, "estimators_", [logistic])  # one-vs-rest: one binary model per class
        weights = np.abs(np.vstack([part.coef_ for part in parts])).mean(axis=0)
    series = pd.Series(weights, index=names, dtype=float)
    return series[series > 0].sort_values(ascending=False, kind="stable")
