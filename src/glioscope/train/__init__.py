"""Training: one loop (loop.Trainer) and its variants, chosen by a model's registry entry.

loop.py      epochs, validation, schedules, early stopping, checkpoints, resume, DDP
sdl.py       the synergic variant (SDL): member networks, pairs, synergic layers
losses.py    cross-entropy over classes, or binary cross-entropy on one sigmoid unit
pairs.py     the SDL paper's synergic pairs
settings.py  TrainSettings (a recipe's `train` section) and its phases
"""

from __future__ import annotations


def trainer_class(variant: str):
    """The Trainer class of a registry entry's training variant: "standard" or "synergic"."""
    from glioscope.train.loop import Trainer
    from glioscope.train.sdl import SDLTrainer

    variants = {"standard": Trainer, "synergic": SDLTrainer}
    if variant not in variants:
        raise KeyError(f"unknown training variant {variant!r}; known: {', '.join(variants)}")
    return variants[variant]
