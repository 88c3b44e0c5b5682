"""MONAI's 3D ResNet-10, the network of the RSNA-MICCAI 2021 MGMT challenge's winning entry.

Inputs are (N, C, D, H, W) volumes, as for the video ResNets. The network is MONAI's
`resnet10` in the configuration of MedicalNet (Chen et al. 2019: shortcut type B, no bias in
the downsampling convolutions), so that MedicalNet's published weights (resnet_10.pth,
resnet_10_23dataset.pth) load from a path given as `model.weights`. Those files come from a
DataParallel model ("module." prefixes) with a segmentation head ("conv_seg"): the prefixes
are stripped and the head is skipped. Their first convolution reads one channel; for more,
its kernel is repeated over the channels and divided by their number (as timm adapts a stem),
so that a volume whose channels are equal gives the pretrained response. `model.weights:
medicalnet` reads resnet_10_23dataset.pth from torch's cache, where `glioscope weights fetch
medicalnet --model resnet10_3d` puts it (from MedicalNet's Hugging Face repository); training
never downloads it.
"""

from __future__ import annotations

import logging

import torch
import torch.nn as nn

from glioscope.errors import GlioscopeError
from glioscope.models.heads import Classifier
from glioscope.models.registry import named_weights, register_model, register_weights
from glioscope.models.weights import WeightsUnavailable, load_matching, read_state_dict

log = logging.getLogger(__name__)

WIDTH = 512  # features after the global average pool
NOT_PRETRAINED = ("fc.", "conv_seg.")
MEDICALNET_URL = "https://huggingface.co/TencentMedicalNet/MedicalNet-Resnet10/resolve/main/resnet_10_23dataset.pth"
register_weights(
    "resnet10_3d",
    "medicalnet",
    MEDICALNET_URL,
    note="MedicalNet's ResNet-10, pretrained on 23 segmentation datasets (Chen et al. 2019)",
)


def _medicalnet_file() -> str:
    """The cached MedicalNet file, or WeightsUnavailable (a recipe may then train from scratch)."""
    entry = next(w for w in named_weights("resnet10_3d") if w.name == "medicalnet")
    if not entry.on_disk:
        raise WeightsUnavailable(
            f"medicalnet weights for resnet10_3d are not in the local torch cache (expected {entry.path}). "
            "glioscope never downloads while training: run `glioscope weights fetch medicalnet --model "
            "resnet10_3d`, pass the file with --set model.weights=PATH, or train from scratch with "
            "--set model.weights=none"
        )
    return str(entry.path)


def medicalnet_state(state: dict[str, torch.Tensor], in_chans: int) -> dict[str, torch.Tensor]:
    """A MedicalNet (or MONAI) state dict for a ResNet-10 of `in_chans` input channels."""
    state = {key.removeprefix("module."): value for key, value in state.items()}
    stem = state.get("conv1.weight")
    if stem is not None and stem.ndim == 5 and stem.shape[1] != in_chans:
        mean = stem.mean(dim=1, keepdim=True)
        state["conv1.weight"] = mean.repeat(1, in_chans, 1, 1, 1) * (stem.shape[1] / in_chans)
    return state


def build_resnet10(num_classes: int, in_chans: int = 1, weights=None, dropout: float = 0.3, **_) -> Classifier:
    """MONAI's ResNet-10 (MedicalNet's configuration) as a 3D glioscope Classifier."""
    try:
        from monai.networks.nets import resnet10
    except ImportError as exc:  # a dependency of glioscope: only a broken install lacks it
        raise GlioscopeError(f"the 3D ResNet-10 needs MONAI (pip install monai): {exc}") from None
    if weights is not None and str(weights).lower() in ("imagenet", "kinetics", "kinetics400"):
        raise GlioscopeError(
            f"resnet10_3d has no {weights} weights; give medicalnet, a MedicalNet weights file or none"
        )
    if weights is not None and str(weights).lower() == "medicalnet":
        weights = _medicalnet_file()
    backbone = resnet10(
        spatial_dims=3, n_input_channels=in_chans, num_classes=num_classes, shortcut_type="B", bias_downsample=False
    )
    if weights is not None:
        state = medicalnet_state(read_state_dict(weights, "resnet10_3d"), in_chans)
        report = load_matching(backbone, state, skip_prefixes=NOT_PRETRAINED)
        if not report["loaded"]:
            raise GlioscopeError(f"{weights}: no tensor matches MONAI's 3D ResNet-10")
        log.info("resnet10_3d: %d tensors from %s; head initialised afresh", len(report["loaded"]), weights)
    backbone.fc = nn.Identity()
    classifier = Classifier(backbone, nn.Dropout(dropout), WIDTH, num_classes)
    classifier.is_3d = True
    # Grad-CAM reads the last block's second convolution (the downsampling one comes after it in the module list).
    classifier.gradcam_layer = backbone.layer4[-1].conv2
    return classifier


@register_model("resnet10_3d", kind="volumes", normalisation="none")  # volumes come scaled to [0, 1]
def resnet10_3d(num_classes: int, in_chans: int = 1, weights=None, **kwargs) -> Classifier:
    """MONAI's 3D ResNet-10 (MedicalNet's configuration), for the RSNA-MICCAI 2021 winner's recipe."""
    return build_resnet10(num_classes, in_chans, weights, **kwargs)
