"""From a model's raw output to class probabilities: the one place where logits become probabilities."""

from __future__ import annotations

import torch


def probabilities(logits: torch.Tensor) -> list[torch.Tensor]:
    """Class probabilities (N, classes) of each model a network reports, from its raw output.

    (N, C): a softmax. (N, 1): one sigmoid unit for the second of two classes, [1 - p, p].
    (M, N, C): M member networks (SDL): each member's probabilities, then their mean.
    Training, validation and `predict` all use this; the last entry is the headline.
    """
    if logits.dim() == 3:
        members = [_one(member) for member in logits]
        return members + [torch.stack(members).mean(0)]
    return [_one(logits)]


def _one(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[:, 0])
        return torch.stack([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)
