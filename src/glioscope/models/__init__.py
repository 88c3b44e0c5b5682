"""One registry for every model, timm-style: a recipe names a model by string.

    create_model("alexnet", num_classes=3, in_chans=3, weights="imagenet", head="hidden")
    create_model("sdl", num_classes=3, backbone="alexnet", members=2)

Each entry (`ModelEntry`) carries, besides its builder, what the rest of glioscope needs to
know about the model: the samples it reads (2D slices or 3D volumes), the input normalisation it expects (ImageNet statistics for the 2D
torchvision backbones, none for the 3D ones, whose volumes are already in [0, 1]), the
names under which its outputs are reported (one model, or SDL's members and their mean),
the training variant (glioscope.train.TRAINERS) and the recipe's model fields its builder takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from glioscope.errors import GlioscopeError


def _one_model(prefix: str, spec) -> list[str]:
    return [prefix]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder and how it is fed, reported and trained."""

    name: str
    builder: Callable[..., nn.Module]
    kind: str = "slices"  # the samples it reads: slices (N, C, H, W) | volumes (N, C, D, H, W)
    normalisation: str = "imagenet"  # imagenet | none: what data.normalize "model" means for it
    variant: str = "standard"  # the training loop: glioscope.train.TRAINERS
    spec_fields: tuple[str, ...] = ()  # fields of the recipe's model section passed to the builder
    names: Callable[[str, object], list[str]] = _one_model  # (run's model name, model spec) -> reported names
    min_size: int = 1  # 2D: the smallest image side its layers can reduce to a feature map

    def reported_names(self, prefix: str, spec=None) -> list[str]:
        """The names of the predictions this model reports, e.g. ["sdl/net1", "sdl/net2", "sdl/mean"]."""
        return self.names(prefix, spec)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, **entry):
    """Decorator: make a builder available to create_model under `name` (ModelEntry fields as keywords)."""

    def wrap(builder):
        _REGISTRY[name] = ModelEntry(name, builder, **entry)
        return builder

    return wrap


def list_models() -> list[str]:
    _import_builders()
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The registry entry of `name`; a clear error naming the known models otherwise."""
    _import_builders()
    if name not in _REGISTRY:
        raise GlioscopeError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, num_classes: int, in_chans: int = 3, weights: str | None = None, **kwargs) -> nn.Module:
    """Build a registered model; `weights` is None, 'imagenet', 'kinetics' or a file path."""
    entry = model_entry(name)
    if weights is not None and str(weights).lower() in ("none", "scratch", ""):
        weights = None
    return entry.builder(num_classes=num_classes, in_chans=in_chans, weights=weights, **kwargs)


def _import_builders() -> None:
    # Builders register themselves on import; importing here keeps `import glioscope.models` light.
    from glioscope.models import cnn2d, monai3d, sdl, video3d  # noqa: F401
