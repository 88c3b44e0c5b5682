"""Grad-CAM overlays of a few held-out patients per class, saved with the fold that made them (RunFolder.gradcam_dir)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from glioscope.evaluate.gradcam import gradcam_panels
from glioscope.util import atomic


def pick_examples(table: pd.DataFrame, targets: np.ndarray, per_class: int) -> list[int]:
    """Row positions: per class, up to `per_class` patients, each by its slice with the
    largest tumour area (the middle of its slices when there is no mask)."""
    chosen = []
    frame = table.reset_index(drop=True).assign(_target=targets, _row=np.arange(len(table)))
    for _, group in frame.groupby("_target", sort=True):
        for _, slices in list(group.groupby("patient_id", sort=True))[:per_class]:
            if "tumour_area" in slices and slices["tumour_area"].max() > 0:
                chosen.append(int(slices.loc[slices["tumour_area"].idxmax(), "_row"]))
            else:
                chosen.append(int(slices["_row"].iloc[len(slices) // 2]))
    return chosen


def save_gradcam(
    model: torch.nn.Module,
    dataset,
    table: pd.DataFrame,
    targets: np.ndarray,
    class_names: list[str],
    out_dir: Path,
    per_class: int,
) -> list[Path]:
    """Write one PNG per true class into `out_dir`; returns their paths."""
    if per_class <= 0 or len(table) == 0:
        return []
    rows = pick_examples(table, targets, per_class)
    images = dataset.inputs(rows)
    names = [str(table.iloc[i]["patient_id"]) for i in rows]
    was_training = model.training
    model.eval()
    try:
        panels = gradcam_panels(
            model,
            images,
            labels=[int(targets[i]) for i in rows],
            class_names=class_names,
            names=names,
            per_class=per_class,
        )
    finally:
        model.train(was_training)
    paths = []
    for k, (title, png) in enumerate(panels):
        path = Path(out_dir) / f"{k:02d}.png"
        with atomic.atomic_path(path) as tmp:
            tmp.write_bytes(png)
        paths.append(path)
    return paths
