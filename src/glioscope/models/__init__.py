"""One registry for every model, timm-style: a recipe names a model by string.

    create_model("alexnet", num_classes=3, in_chans=3, weights="imagenet", head="hidden")
    create_model("sdl", num_classes=3, backbone="alexnet", members=2)
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from glioscope.errors import GlioscopeError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: make a builder available to create_model under `name`."""

    def wrap(builder):
        _REGISTRY[name] = builder
        return builder

    return wrap


def list_models() -> list[str]:
    _import_builders()
    return sorted(_REGISTRY)


def create_model(name: str, num_classes: int, in_chans: int = 3, weights: str | None = None, **kwargs) -> nn.Module:
    """Build a registered model; `weights` is None, 'imagenet', 'kinetics' or a file path."""
    _import_builders()
    if name not in _REGISTRY:
        raise GlioscopeError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    if weights is not None and str(weights).lower() in ("none", "scratch", ""):
        weights = None
    return _REGISTRY[name](num_classes=num_classes, in_chans=in_chans, weights=weights, **kwargs)


def _import_builders() -> None:
    # Builders register themselves on import; importing here keeps `import glioscope.models` light.
    from glioscope.models import cnn2d, sdl, video3d  # noqa: F401
