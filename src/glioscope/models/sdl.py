"""Synergic Deep Learning: n classifiers that share no weights, and a synergic layer per pair.

Each synergic layer reads the concatenated penultimate features of its two nets
and predicts, with one sigmoid output, whether their two images show the same
class. n = 2 is the published SDL model; n >= 3 is SDL-n.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn as nn

from glioscope.errors import GlioscopeError

# Every model a member may be is registered before `sdl` builds one (glioscope.models imports this
# module among the builders, so it cannot call back into glioscope.models.create_model).
from glioscope.models import cnn2d, monai3d, video3d  # noqa: F401
from glioscope.models.heads import Classifier
from glioscope.models.registry import build, register_model


class SynergicNet(nn.Module):
    """n member classifiers plus one synergic layer (Linear 2F -> 1) per pair."""

    def __init__(self, members: list[Classifier]):
        super().__init__()
        if len(members) < 2:
            raise GlioscopeError("SDL needs at least two member networks")
        self.members = nn.ModuleList(members)
        self.pairs = list(itertools.combinations(range(len(members)), 2))
        self.synergic = nn.ModuleList(
            nn.Linear(members[i].num_features + members[j].num_features, 1) for i, j in self.pairs
        )

    @property
    def n_members(self) -> int:
        return len(self.members)

    def forward(self, x):
        """A tensor: logits of every member for the same images, shape (members, batch, classes).

        A list of tensors (training): see forward_synergic. Both go through forward so
        that DistributedDataParallel synchronises the gradients of either.
        """
        if isinstance(x, (list, tuple)):
            return self.forward_synergic(list(x))
        return torch.stack([member(x) for member in self.members])

    def forward_synergic(self, images: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Member i sees images[i]; returns each member's logits and each pair's synergic logit."""
        features = [member.forward_features(x) for member, x in zip(self.members, images)]
        logits = [member.fc(f) for member, f in zip(self.members, features)]
        synergic = [
            layer(torch.cat([features[i], features[j]], dim=1)).squeeze(1)
            for layer, (i, j) in zip(self.synergic, self.pairs)
        ]
        return logits, synergic


def reported_names(prefix: str, spec) -> list[str]:
    """Each member alone, then their mean probability: "<prefix>/net1", ..., "<prefix>/mean"."""
    members = 2 if spec is None else int(spec.members)
    return [f"{prefix}/net{m + 1}" for m in range(members)] + [f"{prefix}/mean"]


@register_model("sdl", variant="synergic", spec_fields=("backbone", "members"), names=reported_names)
def sdl(
    num_classes: int,
    in_chans: int = 3,
    weights=None,
    backbone: str = "alexnet",
    members: int = 2,
    head: str = "hidden",
    **kwargs,
) -> SynergicNet:
    """SDL with `members` copies of `backbone`, each initialised independently (or from the same weights)."""
    if backbone == "sdl":
        raise GlioscopeError("an SDL member cannot itself be an SDL model")
    nets = [build(backbone, num_classes, in_chans, weights, head=head, **kwargs) for _ in range(members)]
    return SynergicNet(nets)
