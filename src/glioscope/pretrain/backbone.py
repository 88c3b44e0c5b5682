"""The network pretrained, and its weights written in torchvision's own names.

A pretraining output is a state dict of the torchvision architecture (resnet18's
"conv1.weight", "layer1.0...", alexnet's "features.0.weight", "classifier.1.weight"), so
that `model.weights: PATH` loads it the way it loads ImageNet weights: into the recipe's
backbone, SDL's members included, by name and shape, with the classification head new.
The last layer of the pretraining network (its classes, or SimCLR's projection) is
never written.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from glioscope.errors import GlioscopeError
from glioscope.models import create_model, model_entry
from glioscope.models.heads import Classifier

TORCHVISION_2D = ("alexnet", "vgg19", "resnet18", "resnet50", "resnet152", "efficientnet_b0", "efficientnet_b3")
_STEM = {"resnet": "conv1.weight", "efficientnet": "features.0.0.weight"}  # others (alexnet, vgg): features.0.weight


def backbone_arch(spec) -> str:
    """The torchvision architecture a recipe's model section trains: the model, or SDL's member backbone."""
    entry = model_entry(spec.name)
    arch = (spec.backbone or "alexnet") if entry.variant == "synergic" else spec.name
    if arch not in TORCHVISION_2D:
        raise GlioscopeError(
            f"glioscope pretrain trains the 2D torchvision backbones ({', '.join(TORCHVISION_2D)}); "
            f"model {spec.name!r} has no such backbone{'' if arch == spec.name else f' ({arch})'}"
        )
    return arch


def classifier(arch: str, num_classes: int, in_chans: int, weights: str | None) -> Classifier:
    """The pretraining network: the backbone with torchvision's own classifier (the linear head)."""
    return create_model(arch, num_classes, in_chans, weights, head="linear")


def stem_key(arch: str) -> str:
    return next((key for prefix, key in _STEM.items() if arch.startswith(prefix)), "features.0.weight")


def torchvision_state(arch: str, network: Classifier, with_neck: bool) -> dict[str, torch.Tensor]:
    """The backbone (and, `with_neck`, the layers before the last one) under torchvision's names.

    A one-channel stem is written as three channels of a third each: glioscope sums the three
    back for one-channel input (exactly the pretrained filters) and, for grey images stacked to
    three channels, the response is the same.
    """
    if arch.startswith("resnet"):
        state = dict(network.backbone.state_dict())
    else:  # Sequential(features, avgpool, flatten) and the classifier's layers but the last
        state = {f"features.{k[2:]}": v for k, v in network.backbone.state_dict().items() if k.startswith("0.")}
        if with_neck and isinstance(network.neck, nn.Sequential):
            state.update({f"classifier.{k}": v for k, v in network.neck.state_dict().items()})
    stem = stem_key(arch)
    if stem in state and state[stem].shape[1] == 1:
        state[stem] = state[stem].repeat(1, 3, 1, 1) / 3
    return {k: v.detach().cpu().clone().contiguous() for k, v in state.items()}


def check_loads(arch: str, state: dict[str, torch.Tensor]) -> None:
    """The written state loads into torchvision's architecture by name and shape (a mistake here is a bug)."""
    import torchvision.models as tvm

    own = tvm.get_model(arch, weights=None).state_dict()
    bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise GlioscopeError(f"internal: pretrained tensors {bad[:3]} do not fit torchvision's {arch}")
