"""The learning curves say what each line is: training or validation, each SDL net, the synergic layer on training
pairs; validation only where there was a validation split (read from the matplotlib Figure, not from pixels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glioscope.report import figures

EPOCHS = np.arange(1, 6)


def _history(members: tuple[str, ...] = (), validation: str = "none", synergic: bool = False) -> pd.DataFrame:
    """A history as the trainers write it: validation "none" (no val_ columns), "empty" (val_ columns without a
    value) or "split"."""
    falling, rising = 1.0 / EPOCHS, 1.0 - 0.5 / EPOCHS
    columns = {"epoch": EPOCHS, "lr": 1e-3, "train_loss": falling, "train_accuracy": rising}
    for member in members:
        columns.update({f"train_loss/{member}": falling, f"train_accuracy/{member}": rising})
    if validation != "none":
        value = np.nan if validation == "empty" else 1.0
        for suffix in ("", *(f"/{m}" for m in members)):
            columns.update({f"val_loss{suffix}": falling * value, f"val_accuracy{suffix}": rising * value})
    if synergic:
        columns.update({"synergic_loss": falling, "synergic_accuracy": rising})
    return pd.DataFrame(columns)


def _read(history: pd.DataFrame) -> tuple[str, list[str], list[list[str]]]:
    """(suptitle, each panel's title, each panel's legend texts) of the report's learning curves of `history`."""
    fig = figures.learning_curves(history, f"Fold 0: {figures.line_words(history)}")
    panels = [ax for ax in fig.axes if ax.get_title()]  # the synergic panel's twin axis has no title of its own
    legends = [[t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [] for ax in panels]
    return fig._suptitle.get_text(), [ax.get_title() for ax in panels], legends


def test_sdl_without_a_validation_split_names_each_net_and_the_synergic_layer_on_training_pairs():
    title, panels, legends = _read(_history(("net1", "net2"), "none", synergic=True))
    assert (
        title
        == "Fold 0: training only, no validation split (train.validation none); the synergic layer on training pairs"
    )
    assert panels == [
        "Loss of each net: training",
        "Accuracy of each net: training",
        "Synergic layer on training pairs: same class?",
    ]
    assert legends == [
        ["net1 training loss", "net2 training loss"],
        ["net1 training accuracy", "net2 training accuracy"],
        ["synergic loss (training pairs)", "synergic accuracy (training pairs)"],
    ]


def test_sdl_with_a_validation_split_draws_each_nets_validation_dashed():
    title, panels, legends = _read(_history(("net1", "net2"), "split", synergic=True))
    assert title.startswith("Fold 0: training (solid) vs validation (dashed)")
    assert panels[:2] == ["Loss of each net: training and validation", "Accuracy of each net: training and validation"]
    assert legends[0] == ["net1 training loss", "net1 validation loss", "net2 training loss", "net2 validation loss"]
    assert legends[2] == ["synergic loss (training pairs)", "synergic accuracy (training pairs)"]


def test_a_single_model_with_a_validation_split():
    title, panels, legends = _read(_history(validation="split"))
    assert title == "Fold 0: training (solid) vs validation (dashed)"
    assert panels == ["Loss: training and validation", "Accuracy: training and validation"]
    assert legends == [["training loss", "validation loss"], ["training accuracy", "validation accuracy"]]


@pytest.mark.parametrize("validation", ["none", "empty"])
def test_a_single_model_without_a_validation_split_never_says_validation_but_that_there_is_none(validation):
    title, panels, legends = _read(_history(validation=validation))
    assert title == "Fold 0: training only, no validation split (train.validation none)"
    assert panels == ["Loss: training", "Accuracy: training"]
    assert legends == [["training loss"], ["training accuracy"]]
