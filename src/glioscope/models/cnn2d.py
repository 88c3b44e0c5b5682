"""2D backbones from torchvision, rebuilt as Classifier(backbone, neck, fc)."""

from __future__ import annotations

import logging

import torch
import torch.nn as nn
import torchvision.models as tvm

from glioscope.errors import GlioscopeError
from glioscope.models.registry import register_model
from glioscope.models.heads import HEADS, Classifier, efficientnet_neck, hidden_neck
from glioscope.models.weights import load_matching, read_state_dict

log = logging.getLogger(__name__)


def _first_conv_path(arch: str) -> str:
    if arch.startswith("resnet"):
        return "conv1"
    if arch.startswith("efficientnet"):
        return "features.0.0"
    return "features.0"  # alexnet, vgg


def adapt_first_conv(model: nn.Module, path: str, in_chans: int, context: int = 0) -> None:
    """Give the stem `in_chans` inputs, keeping pretrained filters (summed for 1 channel, as timm does).

    2.5D inputs (`context` = k > 0: each of in_chans / (2k + 1) channels with its k neighbouring
    slices each side, grouped per channel as glioscope.samples.slices.context orders them) first get
    the 2D network's stem for in_chans / (2k + 1) channels, whose filter for channel c is then spread
    evenly over c's group: each of its 2k + 1 slices gets the filter divided by 2k + 1 (timm's repeat
    and rescale, within the group). Where the neighbours equal the centre slice the stem's output is
    the 2D network's (to rounding), so activations keep their scale and what the pretrained filters detect
    stays where it was; where they differ the stem starts from a smoothing along z of the same
    filter. Spreading, rather than giving the centre slice the whole filter and its neighbours zero,
    lets every slice of a group shape the features from the first step, symmetrically above and
    below, instead of leaving the neighbours to be found by the gradient alone.
    """
    depth = 2 * context + 1
    if in_chans % depth:
        raise GlioscopeError(f"{in_chans} input channels are not groups of {depth} slices (context {context})")
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    conv: nn.Conv2d = getattr(parent, name)
    if conv.in_channels == in_chans and depth == 1:
        return
    new = type(conv)(  # nn.Conv2d, or a subclass of the same signature (lite0's TensorFlow-padded one)
        in_chans,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
    )
    with torch.no_grad():
        weight = _stem_weight(conv.weight, in_chans // depth)
        new.weight.copy_(weight.repeat_interleave(depth, dim=1) / depth if depth > 1 else weight)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    setattr(parent, name, new)


def _stem_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """A stem's filters (out, C, kh, kw) for `in_chans` inputs: summed for 1, else repeated and rescaled."""
    if weight.shape[1] == in_chans:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_chans // weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :in_chans] * weight.shape[1] / in_chans


def _torchvision(arch: str, weights) -> nn.Module:
    model = tvm.get_model(arch, weights=None)
    if weights is not None:
        report = load_matching(model, read_state_dict(weights, arch))
        log.info(
            "%s: loaded %d tensors from %s, %d skipped", arch, len(report["loaded"]), weights, len(report["skipped"])
        )
        if not report["loaded"]:
            raise GlioscopeError(f"{weights}: no tensor matches the {arch} architecture")
    return model


def _split(arch: str, model: nn.Module) -> tuple[nn.Module, nn.Module, int, int]:
    """(backbone, default neck, neck width, backbone width) of a torchvision classifier."""
    if arch.startswith("resnet"):
        width = model.fc.in_features
        model.fc = nn.Identity()
        return model, nn.Identity(), width, width
    backbone = nn.Sequential(model.features, model.avgpool, nn.Flatten(1))
    classifier = model.classifier
    last = classifier[-1]
    first_linear = next(m for m in classifier if isinstance(m, nn.Linear))
    return backbone, nn.Sequential(*classifier[:-1]), last.in_features, first_linear.in_features


def build_2d(
    arch: str,
    num_classes: int,
    in_chans: int = 3,
    weights=None,
    head: str = "linear",
    hidden: int = 256,
    dropout: float | None = None,
    context: int = 0,
) -> Classifier:
    """A torchvision backbone with one of the heads in HEADS; `context` > 0: 2.5D input (see adapt_first_conv)."""
    if head not in HEADS:
        raise GlioscopeError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    model = _torchvision(arch, weights)
    adapt_first_conv(model, _first_conv_path(arch), in_chans, context)
    backbone, neck, width, backbone_width = _split(arch, model)
    if head == "hidden":
        neck, width = hidden_neck(backbone_width, hidden, 0.5 if dropout is None else dropout)
    elif head == "efficientnet":
        neck, width = efficientnet_neck(backbone_width, 32, 0.4 if dropout is None else dropout)
    return Classifier(backbone, neck, width, num_classes)


# The smallest image side whose feature map survives the network's pooling (found by trying sizes).
MIN_SIZE = {"alexnet": 63, "vgg19": 32}


def _register(arch: str) -> None:
    @register_model(arch, min_size=MIN_SIZE.get(arch, 1))
    def builder(num_classes: int, in_chans: int = 3, weights=None, **kwargs) -> Classifier:
        return build_2d(arch, num_classes, in_chans, weights, **kwargs)

    builder.__doc__ = f"torchvision {arch} as a glioscope Classifier."


for _arch in ("alexnet", "vgg19", "resnet18", "resnet50", "resnet152", "efficientnet_b0", "efficientnet_b3"):
    _register(_arch)


@register_model("smallcnn", min_size=16)
def smallcnn(
    num_classes: int, in_chans: int = 3, weights=None, width: int = 16, pool: str = "avg", **kwargs
) -> Classifier:
    """Four conv-BN-ReLU-pool blocks (width, 2w, 4w, 4w channels) and global `pool`ing ("avg" or "max").

    Not from a paper: about 60 thousand weights, for CPU checks of a pipeline (the MGMT
    honesty check) where a large network would take minutes to train or memorise a small
    cohort. Any input of 16 px or more; no pretrained weights. Global max pooling suits a
    small focal finding (an enhancing rim) that an average over the slice would dilute.
    """
    if weights is not None:
        raise GlioscopeError("smallcnn has no pretrained weights; set model.weights: none")
    if kwargs.get("head", "linear") != "linear":
        raise GlioscopeError("smallcnn has only the linear head")
    channels = [in_chans, width, 2 * width, 4 * width, 4 * width]
    layers: list[nn.Module] = []
    for cin, cout in zip(channels[:-1], channels[1:]):
        layers += [
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
    if pool not in ("avg", "max"):
        raise GlioscopeError(f"smallcnn pool {pool!r}: choose avg or max")
    pooling = nn.AdaptiveAvgPool2d(1) if pool == "avg" else nn.AdaptiveMaxPool2d(1)
    backbone = nn.Sequential(*layers, pooling, nn.Flatten(1))
    return Classifier(backbone, nn.Identity(), channels[-1], num_classes)
