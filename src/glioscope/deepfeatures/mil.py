"""The patient-level attention model: one label and one loss per patient, from the bag of its slices' embeddings.

Gated attention pooling (Ilse, Tomczak and Welling, ICML 2018): each slice's embedding x is
standardised (with the training slices' mean and SD), projected, h = ReLU(W x), and scored
a = w . (tanh(V h) * sigmoid(U h)); the patient's representation is the softmax(a)-weighted
sum of its h, and a linear layer gives the patient's logits. Bags of different lengths are
batched padded to the longest and masked (a padded slice gets no attention). The loss is the
cross-entropy of the patient's label, classes weighted by inverse frequency; no slice label is
used. AdamW; `members` models of seeds seed, seed+1, ... are averaged (probabilities and
attention). The weight decay is chosen by the inner CV on the training patients, as the radiomics
classifiers choose theirs (glioscope.radiomics.classifier): stratified inner folds, pooled
out-of-fold probabilities scored by macro AUC, ties to the first (smallest) value, then a refit
on all training patients. Saved as tensors and plain values (read with weights_only=True).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from sklearn.model_selection import StratifiedKFold

from glioscope.errors import InputError
from glioscope.radiomics.classifier import class_prior, macro_auc
from glioscope.split import assert_disjoint
from glioscope.util import atomic
from glioscope.util.tensors import load_tensors

FORMAT = "glioscope-attention-mil-1"


class GatedAttention(nn.Module):
    def __init__(self, width: int, hidden: int, classes: int, dropout: float):
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        self.project = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout))
        gate = max(hidden // 2, 1)
        self.V, self.U, self.w = nn.Linear(hidden, gate), nn.Linear(hidden, gate), nn.Linear(gate, 1)
        self.head = nn.Linear(hidden, classes)

    def forward(self, bags: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, classes), attention (B, L)) of padded bags (B, L, width) with mask (B, L) True on slices."""
        h = self.project((bags - self.mean) / self.std)
        scores = self.w(torch.tanh(self.V(h)) * torch.sigmoid(self.U(h))).squeeze(-1)
        attention = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return self.head((attention.unsqueeze(-1) * h).sum(dim=1)), attention


def _pad(bags: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    longest, width = max(len(b) for b in bags), bags[0].shape[1]
    padded, mask = np.zeros((len(bags), longest, width), np.float32), np.zeros((len(bags), longest), bool)
    for k, bag in enumerate(bags):
        padded[k, : len(bag)], mask[k, : len(bag)] = bag, True
    return torch.from_numpy(padded), torch.from_numpy(mask)


def _train(bags, y, classes: int, settings, weight_decay: float, seed: int) -> GatedAttention:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = GatedAttention(bags[0].shape[1], settings.hidden, classes, settings.dropout)
    stacked = np.concatenate(bags)
    model.mean.copy_(torch.from_numpy(stacked.mean(axis=0)))
    model.std.copy_(torch.from_numpy(stacked.std(axis=0) + 1e-6))
    counts = np.bincount(y, minlength=classes).astype(float)
    weight = torch.tensor(np.where(counts > 0, len(y) / (classes * np.maximum(counts, 1)), 0.0), dtype=torch.float32)
    loss_of = nn.CrossEntropyLoss(weight=weight)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=weight_decay)
    targets = torch.as_tensor(y, dtype=torch.long)
    model.train()
    for _ in range(settings.epochs):
        order = rng.permutation(len(bags))
        for start in range(0, len(order), settings.batch_patients):
            chosen = order[start : start + settings.batch_patients]
            padded, mask = _pad([bags[k] for k in chosen])
            optimiser.zero_grad()
            loss_of(model(padded, mask)[0], targets[chosen]).backward()
            optimiser.step()
    return model.eval()


@dataclass
class AttentionEnsemble:
    """The members of one fold, averaged; what a fold's attention.pt holds."""

    members: list[GatedAttention]
    classes: int
    weight_decay: float

    @torch.no_grad()
    def predict(self, bags: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """(probabilities (patients, classes), each patient's attention over its slices), members averaged."""
        if not bags:
            return np.zeros((0, self.classes)), []
        padded, mask = _pad(bags)
        probs, attention = 0.0, 0.0
        for member in self.members:
            logits, weights = member(padded, mask)
            probs, attention = probs + torch.softmax(logits, dim=1), attention + weights
        probs, attention = (probs / len(self.members)).numpy(), (attention / len(self.members)).numpy()
        return probs.astype(float), [attention[k, : len(bag)] for k, bag in enumerate(bags)]

    def save(self, path: Path) -> None:
        first = self.members[0]
        state = {
            "format": FORMAT,
            "classes": self.classes,
            "weight_decay": float(self.weight_decay),
            "width": int(first.mean.numel()),
            "hidden": int(first.head.in_features),
            "members": [m.state_dict() for m in self.members],
        }
        with atomic.atomic_path(path) as tmp:
            torch.save(state, tmp)

    @classmethod
    def load(cls, path: Path) -> AttentionEnsemble:
        try:
            state = load_tensors(path)
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            members = []
            for weights in state["members"]:
                member = GatedAttention(int(state["width"]), int(state["hidden"]), int(state["classes"]), 0.0)
                member.load_state_dict(weights)
                members.append(member.eval())
        except InputError:
            raise
        except Exception as exc:
            raise InputError(path, f"is not an attention model this version reads ({type(exc).__name__}: {exc})")
        return cls(members, int(state["classes"]), float(state["weight_decay"]))


@contextlib.contextmanager
def _one_thread():
    """One intra-op thread: on bags of a few dozen slices, threads cost several times what they save."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_ensemble(bags, y, classes: int, settings, weight_decay: float, seed: int) -> AttentionEnsemble:
    with _one_thread():
        members = [_train(bags, y, classes, settings, weight_decay, seed + m) for m in range(settings.members)]
    return AttentionEnsemble(members, classes, weight_decay)


@dataclass
class FittedAttention:
    params: dict
    inner_score: float
    inner_folds: int
    grid: pd.DataFrame
    model: AttentionEnsemble
    validation: np.ndarray  # (n_train, classes): the chosen weight decay's inner out-of-fold probabilities


def fit_with_inner_cv(
    bags: list[np.ndarray],
    y: np.ndarray,
    patients: list[str],
    classes: int,
    settings,
    inner_folds: int,
    seed: int,
    job: str = "fold",
) -> FittedAttention:
    """Choose the weight decay by inner CV on these (training) patients' bags, then refit on all of them."""
    counts = np.bincount(y, minlength=classes)
    if (counts > 0).sum() < 2:
        raise InputError(None, f"{job}: its training patients have a single class; a classifier needs two")
    folds = int(max(2, min(inner_folds, counts[counts > 0].min())))
    if len(y) < 2 * folds:
        raise InputError(None, f"{job}: {len(y)} training patient(s) are too few for an inner CV of {folds} folds")
    parts = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    ids = np.asarray(patients)
    for inner_train, inner_validation in parts:
        assert_disjoint({"inner training": ids[inner_train], "inner validation": ids[inner_validation]})
    rows, best, best_oof = [], None, None
    for decay in settings.weight_decay:
        oof = np.zeros((len(y), classes))
        for inner_train, inner_validation in parts:
            if len(np.unique(y[inner_train])) < 2:  # a class of one patient: this part's training holds one class
                oof[inner_validation] = class_prior(y[inner_train], classes)
                continue
            model = fit_ensemble([bags[k] for k in inner_train], y[inner_train], classes, settings, decay, seed)
            oof[inner_validation] = model.predict([bags[k] for k in inner_validation])[0]
        score = macro_auc(y, oof)
        rows.append({"weight_decay": decay, "inner_macro_auc": score})
        if best is None or (np.isfinite(score) and not score <= rows[best]["inner_macro_auc"]):
            best, best_oof = len(rows) - 1, oof
    decay = rows[best]["weight_decay"]
    model = fit_ensemble(bags, y, classes, settings, decay, seed)
    return FittedAttention(
        {"weight_decay": decay}, rows[best]["inner_macro_auc"], folds, pd.DataFrame(rows), model, best_oof
    )
