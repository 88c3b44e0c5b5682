"""3D "spatio-spatial" classifiers from torchvision's video ResNets (Chatterjee et al., 2022).

The volume's slice axis plays the part of time: inputs are (N, C, D, H, W) with D
the axial (superior-inferior) axis, which torchvision's video models read as T.
The stem's first convolution is replaced for `in_chans` channels and
re-initialised; the head is dropout 0.3 + linear. Kinetics-400 weights, when
given, are loaded for everything but that first convolution and the head.
"""

from __future__ import annotations

import logging

import torch.nn as nn
import torchvision.models.video as tvv

from glioscope.errors import GlioscopeError
from glioscope.models.registry import register_model
from glioscope.models.heads import Classifier
from glioscope.models.weights import load_matching, read_state_dict

log = logging.getLogger(__name__)

ARCHITECTURES = ("r3d_18", "mc3_18", "r2plus1d_18")
NOT_PRETRAINED = ("stem.0.", "fc.")  # replaced for the new input channels and classes


def _replace_stem(model: nn.Module, in_chans: int) -> None:
    old: nn.Conv3d = model.stem[0]
    new = nn.Conv3d(in_chans, old.out_channels, old.kernel_size, old.stride, old.padding, bias=old.bias is not None)
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    model.stem[0] = new


def build_3d(arch: str, num_classes: int, in_chans: int = 1, weights=None, dropout: float = 0.3, **_) -> Classifier:
    """A torchvision video ResNet as a glioscope Classifier for volumes."""
    if arch not in ARCHITECTURES:
        raise GlioscopeError(f"unknown 3D architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    model = getattr(tvv, arch)(weights=None)
    if weights is not None:
        report = load_matching(model, read_state_dict(weights, arch), skip_prefixes=NOT_PRETRAINED)
        if not report["loaded"]:
            raise GlioscopeError(f"{weights}: no tensor matches the {arch} architecture")
        log.info("%s: %d tensors from %s; stem and head initialised afresh", arch, len(report["loaded"]), weights)
    _replace_stem(model, in_chans)
    width = model.fc.in_features
    model.fc = nn.Identity()
    classifier = Classifier(model, nn.Dropout(dropout), width, num_classes)
    classifier.is_3d = True
    return classifier


def _register(arch: str) -> None:
    @register_model(arch, kind="volumes", normalisation="none")  # volumes come scaled to [0, 1]
    def builder(num_classes: int, in_chans: int = 1, weights=None, **kwargs) -> Classifier:
        return build_3d(arch, num_classes, in_chans, weights, **kwargs)

    builder.__doc__ = f"torchvision {arch} as a 3D glioscope Classifier (slice axis as time)."


for _arch in ARCHITECTURES:
    _register(_arch)
