"""deepbet's brain extraction (Fisch et al. 2024; PyPI `deepbet`, MIT) with its weights read safely.

deepbet ships its two networks (a bounding-box net at 128^3 and the mask net at 256^3, both a
3D LinkNet) as TorchScript archives, which its own loader opens with torch.jit.load: that runs
the archive's code, and torch.load(weights_only=True) refuses such archives. So the archive is
read here as a zip: only its tensor records and data.pkl (the module tree) are copied into an
in-memory archive, which torch.load(weights_only=True) reads, the archive's module classes
allowed as inert attribute holders (torch.serialization.safe_globals); the tensors go into
LinkNet3d below, written from the architecture the archive's code describes (kernel, stride,
padding of each layer). Nothing in the archive is executed and nothing is unpickled freely.

The steps follow deepbet's BrainExtraction.run_model: the canonical (RAS) volume is resized to
128^3 (nearest) for the bounding box, its 0.5-99.5 percentiles fix the intensity scale, the box
(with a 10% margin) is resized to 256^3 for the mask net, the mask is resized back, thresholded
at one half, reduced to its largest connected part and its holes filled. deepbet is trained on
T1-weighted MRI: it is given the volume's T1 or T1c channel.
"""

from __future__ import annotations

import functools
import io
import pickle
import pickletools
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scipy import ndimage

from glioscope.samples.volumes.skullstrip import StripError, largest_part

SMALL_SHAPE = (128, 128, 128)
SHAPE = (256, 256, 256)
BOX_MARGIN = 0.1
# deepbet's files in its wheel (not run-folder files, whose names glioscope.rundir holds): its networks' stems.
_MODELS = tuple(f"data/models/{stem}.pt" for stem in ("bbox_model", "model"))


def _norm(x: torch.Tensor) -> torch.Tensor:
    return F.instance_norm(x, eps=1e-5)


class _Block(nn.Module):
    """A residual block: conv-norm-relu-conv-norm, plus the input (through a strided 1x1 conv when it shrinks)."""

    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv3d(channels_in, channels_out, 3, stride, 1, bias=False),
            nn.Identity(),
            nn.Identity(),
            nn.Conv3d(channels_out, channels_out, 3, 1, 1, bias=False),
        )
        self.downsample = (
            nn.Sequential(nn.Conv3d(channels_in, channels_out, 1, stride, 0, bias=False)) if stride > 1 else None
        )

    def forward(self, x):
        conv = self.double_conv
        y = _norm(conv[3](F.relu(_norm(conv[0](x)))))
        return F.relu(y + (_norm(self.downsample[0](x)) if self.downsample is not None else x))


class _Down(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.block1 = _Block(channels_in, channels_out, stride)
        self.block2 = _Block(channels_out, channels_out, 1)

    def forward(self, x):
        return self.block2(self.block1(x))


class _Up(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        middle = channels_in // 4
        self.conv1 = nn.Sequential(nn.Conv3d(channels_in, middle, 1, bias=False))
        self.tp_conv = nn.Sequential(nn.ConvTranspose3d(middle, middle, 3, stride, 1, stride - 1, bias=False))
        self.conv2 = nn.Sequential(nn.Conv3d(middle, channels_out, 1, bias=False))

    def forward(self, x):
        for layer in (self.conv1[0], self.tp_conv[0], self.conv2[0]):
            x = F.relu(_norm(layer(x)))
        return x


class LinkNet3d(nn.Module):
    """deepbet's network: a 3D LinkNet (16-128 channels), 1 input channel, softmax over (background, brain)."""

    def __init__(self):
        super().__init__()
        self.init = nn.Sequential(nn.Conv3d(1, 16, 7, 2, 3, bias=False))
        self.down0, self.down1 = _Down(16, 16, 1), _Down(16, 32, 2)
        self.down2, self.down3 = _Down(32, 64, 2), _Down(64, 128, 2)
        self.up0, self.up1 = _Up(128, 64, 2), _Up(64, 32, 2)
        self.up2, self.up3 = _Up(32, 16, 2), _Up(16, 16, 1)
        self.tp_conv1 = nn.Sequential(nn.ConvTranspose3d(16, 8, 3, 2, 1, 1))
        self.conv = nn.Sequential(nn.Conv3d(8, 8, 3, 1, 1))
        self.tp_conv2 = nn.ConvTranspose3d(8, 2, 2, 2, 0)

    def forward(self, x):
        x0 = F.max_pool3d(F.relu(_norm(self.init[0](x))), 3, 2, 1)
        x1 = self.down0(x0)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        y = self.up0(self.down3(x3)) + x3
        y = self.up1(y) + x2
        y = self.up2(y) + x1
        y = self.up3(y) + x0
        y = F.relu(_norm(self.tp_conv1[0](y)))
        y = F.relu(_norm(self.conv[0](y)))
        return torch.softmax(self.tp_conv2(y), 1)


class _Holder:
    """Stands in for a TorchScript module class of the archive: keeps its attributes, runs nothing."""

    def __setstate__(self, state):
        self.__dict__.update(state)


def read_archive_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a TorchScript archive by their module path, read with torch.load(weights_only=True)."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        root = names[0].split("/")[0]
        pickled = archive.read(f"{root}/data.pkl")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as copy:
            for name in names:  # the tensor records and the module tree; not the code, not constants.pkl
                if name == f"{root}/data.pkl" or name.startswith(f"{root}/data/") or name == f"{root}/version":
                    copy.writestr(name, archive.read(name))
    holders = []
    for opcode, argument, _ in pickletools.genops(pickled):
        if opcode.name == "GLOBAL" and str(argument).startswith("__torch__"):
            module, name = str(argument).split(" ")
            holders.append(type(name, (_Holder,), {"__module__": module}))
    buffer.seek(0)
    try:
        with torch.serialization.safe_globals(holders):
            tree = torch.load(buffer, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = next((line.strip() for line in str(exc).splitlines() if "Unsupported" in line), str(exc)[:200])
        raise StripError(f"deepbet's network {path} holds more than tensors and is refused ({reason})") from None
    weights: dict[str, torch.Tensor] = {}

    def walk(node, prefix: str) -> None:
        for key, value in vars(node).items():
            if isinstance(value, torch.Tensor):
                weights[prefix + key] = value
            elif isinstance(value, _Holder):
                walk(value, f"{prefix}{key}.")

    walk(tree, "")
    return weights


def _weights_file(relative: str) -> Path:
    from importlib import metadata

    path = Path(metadata.distribution("deepbet").locate_file(relative))
    if not path.is_file():
        raise StripError(
            f"deepbet's network {relative} is missing from its installation (reinstall glioscope[deepbet])"
        )
    return path


@functools.lru_cache(maxsize=1)
def networks() -> tuple[LinkNet3d, LinkNet3d]:
    """(bounding-box net, mask net) with deepbet's weights, in eval mode; loaded once per process."""
    nets = []
    for relative in _MODELS:
        with torch.random.fork_rng(devices=[]):  # its random initial weights must not move the caller's random stream
            net = LinkNet3d()
        net.load_state_dict(read_archive_weights(_weights_file(relative)), strict=True)
        nets.append(net.eval())
    return nets[0], nets[1]


def brain_mask(data: np.ndarray) -> np.ndarray:
    """Bool brain mask of a canonical (RAS) T1-weighted volume, on its grid."""
    box_net, mask_net = networks()
    x = torch.nan_to_num(torch.from_numpy(np.ascontiguousarray(data, np.float32)))
    small = F.interpolate(x[None, None], SMALL_SHAPE, mode="nearest-exact")[0, 0]
    low, high = small.quantile(0.005), small.quantile(0.995)
    if not high > low:
        raise StripError("deepbet: the volume is constant")
    with torch.inference_mode():
        box_probability = box_net(_normalised(small, low, high)[None, None])[0, 1]
    box_mask = box_probability.numpy() > 0.5
    if not box_mask.any():
        raise StripError("deepbet found no brain in the volume")
    box = _box(largest_part(box_mask), x.shape)
    crop = F.interpolate(x[box][None, None], SHAPE, mode="nearest-exact")
    with torch.inference_mode():
        probability = mask_net(_normalised(crop[0, 0], low, high)[None, None])[:, 1:]
    mask = np.zeros(data.shape, bool)
    mask[box] = F.interpolate(probability, tuple(x[box].shape), mode="nearest-exact")[0, 0].numpy() > 0.5
    if not mask.any():
        raise StripError("deepbet found no brain in the volume")
    mask[box] = ndimage.binary_fill_holes(largest_part(mask[box]))
    return mask


def _normalised(x: torch.Tensor, low, high) -> torch.Tensor:
    """deepbet's input scale: clipped between the percentiles, standardised, then ImageNet's mean and spread."""
    x = ((x - low) / (high - low)).clamp(0, 1)
    return 0.226 * (x - x.mean()) / x.std() + 0.449


def _box(mask: np.ndarray, shape) -> tuple[slice, ...]:
    """deepbet's bounding box of the small mask on the full grid, each side widened by BOX_MARGIN of its size."""
    box = []
    for axis, n in enumerate(shape):
        profile = mask.mean(axis=tuple(a for a in range(3) if a != axis))
        present = np.nonzero(profile > 0.02)[0]
        if present.size == 0:
            raise StripError("deepbet found too little brain for its bounding box")
        scale = n / mask.shape[axis]
        centre = scale * (present.max() + 1 + present.min()) / 2
        size = scale * (present.max() + 1 - present.min()) * (1 + 2 * BOX_MARGIN)
        centre, size = round(centre), round(size)
        box.append(slice(max(0, int(centre - size / 2)), min(n, int(centre + size / 2))))
    return tuple(box)
