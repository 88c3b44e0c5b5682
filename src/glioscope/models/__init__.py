"""One registry for every model, timm-style: a recipe names a model by string.

    create_model("alexnet", num_classes=3, in_chans=3, weights="imagenet", head="hidden")
    create_model("sdl", num_classes=3, backbone="alexnet", members=2)

Each entry (`ModelEntry`) carries, besides its builder, what the rest of glioscope needs to
know about the model: the samples it reads (2D slices or 3D volumes), the input normalisation it expects
(ImageNet statistics for the 2D torchvision backbones, TensorFlow's (x - 127) / 128 for EfficientNet-Lite0,
none for the 3D ones, whose volumes are already in [0, 1]), the names under which its outputs are reported
(one model, or SDL's members and their mean),
the training variant (glioscope.train.trainer_class) and the recipe's model fields its builder takes.
The registry itself is registry.py, which the builders import to register themselves; this
module imports the builders on first use, so that `import glioscope.models` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from glioscope.models import registry
from glioscope.models.registry import ModelEntry, register_model

if TYPE_CHECKING:
    import torch.nn as nn

__all__ = ["ModelEntry", "create_model", "list_models", "model_entry", "register_model"]


def list_models() -> list[str]:
    """Every registered model's name."""
    _import_builders()
    return registry.registered()


def model_entry(name: str) -> ModelEntry:
    """The registry entry of `name`; a clear error naming the known models otherwise."""
    _import_builders()
    return registry.entry(name)


def create_model(name: str, num_classes: int, in_chans: int = 3, weights: str | None = None, **kwargs) -> nn.Module:
    """Build a registered model; `weights` is None, 'imagenet', 'kinetics' or a file path."""
    _import_builders()
    return registry.build(name, num_classes, in_chans, weights, **kwargs)


def _import_builders() -> None:
    # Builders register themselves on import; importing them only here keeps `import glioscope.models` light.
    from glioscope.models import cnn2d, lite0, monai3d, sdl, video3d  # noqa: F401
