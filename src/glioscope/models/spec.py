"""What a recipe's `model` section asks for (defaults: base.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from glioscope import defaults
from glioscope.util import schema
from glioscope.util.schema import at_least

_default = defaults.of("model")


@dataclass(frozen=True)
class ModelSpec:
    """name: a registered model (glioscope.models.list_models()); backbone, members: SDL's member
    architecture and count; head: linear | hidden (one hidden layer of `hidden` units) | efficientnet;
    sigmoid: with two classes, one sigmoid output unit and binary cross-entropy; weights: imagenet |
    kinetics | none | a path; weights_fallback: scratch (train from scratch, with a note, when the
    weights are not on disk) | error; options: further keyword arguments of the model's builder."""

    name: str = _default("name")
    backbone: str | None = _default("backbone")
    members: Annotated[int, at_least(2)] = _default("members")
    head: Literal["linear", "hidden", "efficientnet"] = _default("head")
    hidden: Annotated[int, at_least(1)] = _default("hidden")
    sigmoid: bool = _default("sigmoid")
    weights: str | None = _default("weights")
    weights_fallback: Literal["scratch", "error"] = _default("weights_fallback")
    options: Mapping[str, Any] = _default("options")

    def __post_init__(self):
        schema.check(self, "model")
        if self.weights is not None and self.weights.lower() in ("none", "scratch", ""):
            object.__setattr__(self, "weights", None)
