"""The slices an attention model looked at most: each patient's slices ranked by attention, with small pictures.

    ranked(bags, k, weights, top=5)         # patient k's top slices: rank, weight, slice index, source, thumbnail
    save_top_slices(path, bags, table)      # the thumbnails of every held-out patient's top slices (a CV run)

A patient's attention is a weight per slice, summing to 1 over its slices: where the model
looked, not why. A thumbnail is the first channel's centre slice (2.5D: the slice itself, not
its neighbours) of what the network was given, reduced to at most THUMBNAIL pixels a side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from glioscope.util import atomic

THUMBNAIL = 64  # pixels a side at most
TOP_SAVED = 3  # a CV run keeps the pictures of each held-out patient's three most attended slices


def thumbnail(image: np.ndarray, depth: int = 1, size: int = THUMBNAIL) -> np.ndarray:
    """A uint8 (C, H, W) slice as a grey uint8 (h, w) picture: channel `depth // 2`, block-averaged to <= `size`."""
    grey = np.asarray(image)[min(depth // 2, len(image) - 1)].astype(np.float32)
    step = max(1, int(np.ceil(max(grey.shape) / size)))
    h, w = (grey.shape[0] // step) * step, (grey.shape[1] // step) * step
    if step > 1:
        grey = grey[:h, :w].reshape(h // step, step, w // step, step).mean(axis=(1, 3))
    return np.clip(np.round(grey), 0, 255).astype(np.uint8)


def _depth(bags) -> int:
    return int(getattr(getattr(bags.samples, "settings", None), "depth", 1) or 1)


def ranked(bags, k: int, weights: np.ndarray, top: int = 5, pictures: bool = True) -> list[dict]:
    """Patient k's `top` slices by attention `weights` (one per slice of bags.rows(k)), most attended first:
    rank, attention, slice_index, source_path, slice_id and (with `pictures`) a thumbnail under "image"."""
    rows = bags.rows(k)
    order = np.argsort(-np.asarray(weights, float), kind="stable")[:top]
    images = getattr(bags.samples, "images", None)
    entries = []
    for rank, at in enumerate(order, start=1):
        row = bags.slice_table.iloc[rows[at]]
        index = row.get("slice_index")
        entry = {
            "rank": rank,
            "attention": round(float(weights[at]), 6),
            "slice_index": None if index is None or pd.isna(index) else int(index),
            "source_path": str(row.get("source_path", "")),
            "slice_id": str(row.get("slice_id", "")),
        }
        if pictures and images is not None:
            entry["image"] = thumbnail(images[rows[at]], _depth(bags))
        entries.append(entry)
    return entries


def save_top_slices(path: Path, bags, table: pd.DataFrame, top: int = TOP_SAVED) -> None:
    """The thumbnails of the slices ranked <= `top` in an attention table (slice_id, rank), once per slice."""
    images = getattr(bags.samples, "images", None)
    chosen = table.loc[table["rank"] <= top, "slice_id"].astype(str).drop_duplicates().tolist()
    if images is None or not chosen:
        return
    where = {s: i for i, s in enumerate(bags.slice_table["slice_id"].astype(str))}
    chosen = [s for s in chosen if s in where]
    depth = _depth(bags)
    pictures = np.stack([thumbnail(images[where[s]], depth) for s in chosen])
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, slice_id=np.array(chosen, dtype=str), images=pictures)
