"""The classification losses of the loop: cross-entropy over the classes' logits, or binary
cross-entropy on one sigmoid unit (glioscope.models.build.loss_kind says which a recipe's model needs)."""

from __future__ import annotations

import torch

from glioscope.errors import GlioscopeError

KINDS = ("ce", "bce")


class SigmoidBCELoss(torch.nn.BCEWithLogitsLoss):
    """Binary cross-entropy of (N, 1) logits, one sigmoid unit for the second class, against class indices."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return super().forward(logits[:, 0], targets.float())


def criterion(kind: str, class_weights: torch.Tensor | None = None) -> torch.nn.Module:
    """(logits, class indices) -> mean loss, `kind` "ce" or "bce"; for "bce" the two class weights become
    one weight of the positive class, w1 / w0."""
    if kind == "ce":
        return torch.nn.CrossEntropyLoss(weight=class_weights)
    if kind == "bce":
        w = class_weights
        return SigmoidBCELoss(pos_weight=None if w is None else (w[1] / w[0]).reshape(1))
    raise GlioscopeError(f"unknown loss {kind!r}; expected one of {', '.join(KINDS)}")
