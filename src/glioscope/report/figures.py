"""Report figures, drawn with matplotlib's Agg canvas (no pyplot, no display, no global state)."""

from __future__ import annotations

import io
import re
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imsave
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import auc as area_under, roc_curve

DPI = 96
_MEMBER = re.compile(r"^train_loss/(.+)$")


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def grey_png(picture: np.ndarray) -> bytes:
    """A uint8 (h, w) grey picture as PNG bytes, 0 black and 255 white."""
    buffer = io.BytesIO()
    imsave(buffer, np.asarray(picture, np.uint8), cmap="gray", vmin=0, vmax=255, format="png")
    return buffer.getvalue()


def members_of(history: pd.DataFrame) -> list[str]:
    """SDL member names (net1, net2, ...) from columns train_loss/<member>; [] for a single model."""
    return [m.group(1) for c in history.columns if (m := _MEMBER.match(c))]


def _curve(ax, history: pd.DataFrame, column: str, **style) -> None:
    if column in history and history[column].notna().any():
        ax.plot(history["epoch"], history[column], **style)


def has_validation(history: pd.DataFrame) -> bool:
    """Whether the history has a validation split's figures (val_* columns with a value)."""
    return any(c.startswith("val_") and history[c].notna().any() for c in history.columns)


def line_words(history: pd.DataFrame) -> str:
    """What the learning curves' lines are: training and validation, or training alone without a validation split
    (SDL's synergic layer is scored on the training pairs either way)."""
    synergic = "; the synergic layer on training pairs" if "synergic_accuracy" in history else ""
    if has_validation(history):
        return f"training (solid) vs validation (dashed){synergic}"
    return f"training only, no validation split (train.validation none){synergic}"


def learning_curves(history: pd.DataFrame, title: str) -> Figure:
    """Loss and accuracy per epoch on the training images (solid), and on the validation split (dashed) when there is
    one; SDL: each net's, and a third panel of the synergic layer's loss and accuracy on the training pairs."""
    members = members_of(history)
    synergic = any(c in history for c in ("synergic_loss", "synergic_accuracy"))
    validation = has_validation(history)
    panels = 3 if members and synergic else 2
    fig = new_figure(4.6 * panels, 3.4)
    axes = fig.subplots(1, panels)
    colours = ["#2b6cb0", "#c05621", "#2f855a", "#805ad5", "#b83280", "#4a5568"]
    series = [(f"/{m}", m) for m in members] if members else [("", None)]
    for ax, quantity in zip(axes, ("loss", "accuracy")):
        for (suffix, member), colour in zip(series, colours):
            prefix = f"{member} " if member else ""
            _curve(ax, history, f"train_{quantity}{suffix}", color=colour, label=f"{prefix}training {quantity}")
            _curve(
                ax,
                history,
                f"val_{quantity}{suffix}",
                color=colour,
                linestyle="--",
                label=f"{prefix}validation {quantity}",
            )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(quantity)
        whose = " of each net" if members else ""
        ax.set_title(f"{quantity.capitalize()}{whose}: " + ("training and validation" if validation else "training"))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    if panels == 3:
        ax = axes[2]
        _curve(ax, history, "synergic_loss", color="#2b6cb0", label="synergic loss (training pairs)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (BCE)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        _curve(
            twin,
            history,
            "synergic_accuracy",
            color="#c05621",
            linestyle="-.",
            label="synergic accuracy (training pairs)",
        )
        twin.set_ylabel("accuracy")
        ax.set_title("Synergic layer on training pairs: same class?")
        handles = ax.get_lines() + twin.get_lines()
        if handles:
            ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="center right")
    fig.suptitle(title)
    return fig


def confusion_matrices(matrices: Sequence[tuple[str, np.ndarray]], class_names: Sequence[str], title: str) -> Figure:
    """One panel per (title, matrix): colour = row-normalised share, text = count and share of the true class."""
    fig = new_figure(3.3 + 2.6 * len(matrices), 3.6)
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    size = 9 if len(class_names) <= 5 else 7
    for ax, (panel, cm) in zip(axes, matrices):
        cm = np.asarray(cm, dtype=float)
        rows = cm.sum(axis=1, keepdims=True)
        share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{int(cm[i, j])}\n{share[i, j]:.0%}",
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="white" if share[i, j] > 0.6 else "black",
                )
        ticks = range(len(class_names))
        ax.set_xticks(ticks, class_names, rotation=30 if max(map(len, class_names)) > 4 else 0)
        ax.set_yticks(ticks, class_names)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(panel, fontsize=10)
    fig.colorbar(image, ax=list(axes), fraction=0.03, label="share of the true class")
    fig.suptitle(title)
    return fig


def roc_curves(panels: Sequence[tuple[str, Sequence[tuple[str, np.ndarray, np.ndarray]]]], title: str) -> Figure:
    """One panel per (title, [(label, is_positive, score)]); each curve's AUC in the legend."""
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    fig = new_figure(4.3 * columns, 4.1 * rows)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (panel, curves) in zip(axes, panels):
        for label, positive, score in curves:
            positive = np.asarray(positive, dtype=bool)
            if positive.all() or not positive.any():
                continue  # one class only: no curve
            fpr, tpr, _ = roc_curve(positive, score)
            ax.plot(fpr, tpr, label=f"{label} (AUC {area_under(fpr, tpr):.3f})", linewidth=1.6)
        ax.plot([0, 1], [0, 1], color="#a0aec0", linestyle=":", linewidth=1)
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("1 - specificity (false positive rate)")
        ax.set_ylabel("sensitivity (true positive rate)")
        ax.set_title(panel, fontsize=10)
        ax.grid(alpha=0.3)
        if len(ax.lines) > 1:
            ax.legend(fontsize=8, loc="lower right")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig


def paired_folds(
    folds: Sequence, first: Sequence[float], second: Sequence[float], names: tuple[str, str], metric: str
) -> Figure:
    """Per-fold values of two models joined by a line: the paired comparison at a glance."""
    fig = new_figure(4.2, 3.4)
    ax = fig.subplots()
    for k, (a, b) in enumerate(zip(first, second)):
        ax.plot([0, 1], [a, b], color="#a0aec0", marker="o", label="one fold" if k == 0 else None)
    means = [np.nanmean(first), np.nanmean(second)]
    ax.plot([0, 1], means, color="#c53030", marker="s", linewidth=2.5, label="mean over folds")
    ax.set_xticks([0, 1], [names[0], names[1]], fontsize=8)
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylabel(f"patient-level {metric}")
    ax.set_title(f"{metric} per fold ({len(folds)} folds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def reliability_diagram(curves: Sequence[tuple[str, dict]], title: str) -> Figure:
    """Observed frequency against mean probability per bin (evaluate.calibration.reliability), marker area ~ count."""
    fig = new_figure(4.6, 4.3)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="#a0aec0", linestyle=":", linewidth=1, label="perfect calibration")
    for label, table in curves:
        counts = np.asarray(table["count"], float)
        ax.plot(table["mean_probability"], table["observed"], marker="o", linewidth=1.4, label=label)
        ax.scatter(table["mean_probability"], table["observed"], s=20 + 180 * counts / max(counts.max(), 1), alpha=0.25)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("mean predicted probability in the bin")
    ax.set_ylabel("observed frequency")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def paired_differences(pairs: pd.DataFrame, title: str) -> Figure:
    """Each pair's AUC and accuracy difference (A − B) with its paired 95% interval; filled where established."""
    fig = new_figure(9, 0.55 * len(pairs) + 1.5)
    axes = fig.subplots(1, 2, sharey=True)
    where = np.arange(len(pairs))[::-1]
    for ax, key, name in zip(axes, ("auc", "accuracy"), ("AUC", "accuracy")):
        for y, (_, r) in zip(where, pairs.iterrows()):
            x = float(r[f"{key}_difference"])
            spread = [[x - float(r[f"{key}_ci_low"])], [float(r[f"{key}_ci_high"]) - x]]
            face = "#2b6cb0" if bool(r[f"{key}_established"]) else "white"
            ax.errorbar(x, y, xerr=spread, fmt="o", color="#2b6cb0", markerfacecolor=face, capsize=3)
        ax.axvline(0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_xlabel(f"{name} difference A − B, 95% paired interval", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_yticks(where, [f"{a}\nvs {b}" for a, b in zip(pairs["a"], pairs["b"])], fontsize=7)
    fig.suptitle(f"{title} (filled: established at 95%; open: not)", fontsize=9)
    return fig
