"""Classification heads: the layers between a backbone's feature vector and the logits.

Every head is split into a `neck` (all but the last layer) and the final linear
layer, so that the penultimate features that SDL's synergic layers read are
`neck(backbone(x))`.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class Classifier(nn.Module):
    """backbone -> feature vector -> neck -> penultimate features -> linear -> logits."""

    def __init__(self, backbone: nn.Module, neck: nn.Module, num_features: int, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.num_features = num_features
        self.fc = nn.Linear(num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def hidden_neck(in_features: int, hidden: int = 256, dropout: float = 0.5) -> tuple[nn.Module, int]:
    """The SDL paper's head: one hidden layer of neurons before the output layer."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, hidden), nn.ReLU(inplace=True)), hidden


def efficientnet_neck(in_features: int, hidden: int = 32, dropout: float = 0.4) -> tuple[nn.Module, int]:
    """The MGMT paper's head after global pooling: BN, Dropout, Dense 32 ReLU, BN, Dropout (then Dense 1)."""
    neck = nn.Sequential(
        nn.BatchNorm1d(in_features),
        nn.Dropout(dropout),
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(hidden),
        nn.Dropout(dropout),
    )
    return neck, hidden


HEADS = ("linear", "hidden", "efficientnet")
