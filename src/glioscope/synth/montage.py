"""A montage of phantom subjects (rows: classes; columns: sequences) to check them by eye.

The panels and the drawing; simulating the subjects is cohort.py's (synthesize, make_montage).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glioscope.synth.contrasts import SEQUENCES
from glioscope.synth.geometry import axial_slice
from glioscope.synth.imagefolder_writer import square, to_uint8
from glioscope.synth.plan import Record
from glioscope.synth.presets import CLASSES
from glioscope.synth.subject import Subject


@dataclass
class Panel:
    """One montage row: 8-bit axial slices through the tumour centre (healthy: a comparable level)."""

    grade: str
    label: str
    slices: dict[str, np.ndarray]


def panel(subject: Subject, record: Record) -> Panel:
    """The row of one subject."""
    slices = {}
    for sequence in SEQUENCES:
        volume = subject.images[sequence]
        low, high = np.percentile(volume[subject.head], [0.5, 99.5])
        pixels, _ = axial_slice(volume, subject.affine, subject.reference_mm[2])
        slices[sequence] = square(to_uint8(pixels, low, high))
    label = f"grade {record.grade}" if record.grade != "healthy" else "healthy"
    if record.spec.methylated is not None:
        label += "\nMGMT " + ("methylated" if record.spec.methylated else "unmethylated")
    return Panel(grade=record.grade, label=f"{label}\n{record.ids.get('imagefolder', '')}", slices=slices)


def wanted(records: list[Record], per_class: int) -> set[int]:
    """Indices of the first `per_class` subjects of each class."""
    chosen = set()
    for grade in CLASSES:
        chosen.update([r.spec.index for r in records if r.grade == grade][:per_class])
    return chosen


def render(out_png: str | Path, panels: list[Panel], title: str = "") -> Path:
    """Draw the panels, ordered by class, into a PNG."""
    panels = sorted(panels, key=lambda item: CLASSES.index(item.grade))
    from matplotlib.figure import Figure  # no pyplot: renders with Agg, leaves the caller's backend alone

    height = 2.2 * len(panels) + 0.7
    figure = Figure(figsize=(2.2 * len(SEQUENCES) + 1.2, height), dpi=90)
    axes = figure.subplots(len(panels), len(SEQUENCES), squeeze=False)
    for row, item in enumerate(panels):
        for col, sequence in enumerate(SEQUENCES):
            ax = axes[row, col]
            ax.imshow(item.slices[sequence], cmap="gray", vmin=0, vmax=255, interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(sequence, fontsize=12)
            if col == 0:
                ax.set_ylabel(item.label, fontsize=9)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.35 / height))
    out_png = Path(out_png)
    figure.savefig(out_png, facecolor="white")
    return out_png
