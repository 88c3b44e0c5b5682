"""Pretraining a 2D backbone on other cohorts: supervised, or self-supervised (SimCLR), leak-checked.

path = pretrain(recipe, [cohort_a, cohort_b], out, method="simclr", excludes=[evaluation_cohort])
# then any recipe: --set model.weights=OUT/weights.pt

run.py         pretrain(): data, leak checks, the training loop, the weights file and its provenance
data.py        the slices of one or more cohorts under the recipe's data settings
backbone.py    the network pretrained, and its weights under torchvision's names
simclr.py      NT-Xent, the projection head, two views per slice, the loop's SimCLR variant
provenance.py  what the weights were pretrained on: written inside and beside weights.pt, read back
leaks.py       the leak checks, at pretraining (--exclude) and when a run uses the weights
command.py     the `glioscope pretrain` command line
"""

from __future__ import annotations


def pretrain(*args, **kwargs):
    """glioscope.pretrain.run.pretrain (imported on use: torch and torchvision are heavy)."""
    from glioscope.pretrain.run import pretrain as run

    return run(*args, **kwargs)


__all__ = ["pretrain"]
