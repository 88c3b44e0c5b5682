"""Which parts of a model learn: everything, only the head (the backbone fixed), or everything but BatchNorm."""

from __future__ import annotations

import torch

from glioscope.errors import GlioscopeError


def apply_freeze(model: torch.nn.Module, what: str) -> list[torch.nn.Module]:
    """Stop training part of a model; returns the modules to keep in evaluation mode.

    none: train everything. backbone: only the head (neck and output layer) learns,
    the backbone is fixed, BatchNorm statistics included (the MGMT paper's first phase).
    batchnorm: everything learns except the BatchNorm layers (its second phase).
    """
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    if what == "none":
        return []
    if what == "backbone":
        backbone = getattr(model, "backbone", None)
        if backbone is None:
            raise GlioscopeError("train.freeze: backbone needs a model with a backbone (glioscope Classifier)")
        for parameter in backbone.parameters():
            parameter.requires_grad_(False)
        return [backbone]
    if what == "batchnorm":
        norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for module in norms:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
        return norms
    raise GlioscopeError(f"train.freeze: choose none, backbone or batchnorm, got {what!r}")
