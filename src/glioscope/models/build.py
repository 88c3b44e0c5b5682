"""A recipe's model section to a network: the registry entry's builder, with the weights it asks for."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch.nn as nn

from glioscope.models import create_model, model_entry
from glioscope.models.spec import ModelSpec
from glioscope.models.weights import WeightsUnavailable, load_notes, recording_loads


@dataclass
class BuiltModel:
    """A network and how it was made: `from_scratch` is True when the asked-for weights were missing."""

    model: nn.Module
    from_scratch: bool = False
    notes: list[str] = field(default_factory=list)


def build_model(spec: ModelSpec, num_classes: int, in_chans: int, context: int = 0) -> BuiltModel:
    """The network of `spec` for `num_classes` and `in_chans` input channels.

    Its output units: `output_units`. Missing pretrained weights are an error, or, with
    weights_fallback "scratch", a network from scratch and a note. `context` > 0: 2.5D slices
    (data.slices.context), in_chans / (2 * context + 1) channels of 2 * context + 1 slices each,
    over which a 2D backbone spreads its pretrained first filters (cnn2d.adapt_first_conv).
    """
    num_classes = output_units(spec, num_classes)
    entry = model_entry(spec.name)
    kwargs = {"head": spec.head, "hidden": spec.hidden}
    if context:
        kwargs["context"] = context
    kwargs.update({name: getattr(spec, name) for name in entry.spec_fields})
    kwargs.update(spec.options)
    try:
        with recording_loads() as loads:  # what a weights file gave the network: the run's notes
            model = create_model(spec.name, num_classes, in_chans, spec.weights, **kwargs)
        return BuiltModel(model, notes=load_notes(loads))
    except WeightsUnavailable as exc:
        if spec.weights_fallback != "scratch":
            raise
        note = f"{exc}. Training from scratch instead (model.weights_fallback: scratch)."
        return BuiltModel(create_model(spec.name, num_classes, in_chans, None, **kwargs), True, [note])


def sigmoid_unit(spec: ModelSpec, num_classes: int) -> bool:
    """True when the network ends in one sigmoid unit for the second class: two classes and `spec.sigmoid`."""
    return spec.sigmoid and num_classes == 2


def output_units(spec: ModelSpec, num_classes: int) -> int:
    """The output units of the network `build_model` makes: one sigmoid unit, or one logit per class."""
    return 1 if sigmoid_unit(spec, num_classes) else num_classes


def loss_kind(spec: ModelSpec, num_classes: int) -> str:
    """The training loss that fits `output_units`: "bce" (binary cross-entropy) or "ce" (cross-entropy)."""
    return "bce" if sigmoid_unit(spec, num_classes) else "ce"


def weightless(spec: ModelSpec) -> ModelSpec:
    """The spec without pretrained weights: for a network whose trained weights are loaded next."""
    return replace(spec, weights=None)


def input_normalisation(spec: ModelSpec, requested: str) -> str:
    """data.normalize resolved: "model" is the registry entry's own normalisation."""
    return model_entry(spec.name).normalisation if requested == "model" else requested


def reported_names(spec: ModelSpec, prefix: str) -> list[str]:
    """The names under which a run of this model reports its predictions (`prefix`: the recipe's name)."""
    return model_entry(spec.name).reported_names(prefix, spec)
