"""build_slices: a cohort table to a SliceSet, decoding each item once (in parallel) and caching it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from glioscope.cohort import Skip
from glioscope.samples.slices import cache, context
from glioscope.samples.slices.decode import decode_item
from glioscope.samples.slices.items import Item, plan_items
from glioscope.samples.slices.settings import TABLE_COLUMNS, SliceSettings
from glioscope.samples.slices.slice_set import SliceSet
from glioscope.samples.entry_cache import build_entries, checked, nothing_left, reason_of

# Starting a pool of worker processes (and their imports) costs about a second: worth it beyond this much work.
_POOL_WORTH_SECONDS = 3.0


def build_slices(
    frame: pd.DataFrame,
    settings: SliceSettings,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> SliceSet:
    """The slices of a cohort table's rows under `settings`; items that fail are listed in `skipped`.

    With `cache_dir`, each item is decoded once per settings (see glioscope.samples.slices.cache);
    `workers` processes decode the others (None: one per CPU core).
    """
    frame = checked(frame, "to cut slices from")
    items, skipped, notes = plan_items(frame, settings)
    usable, more_skips = build_entries(
        items,
        cache.folder(cache_dir, settings) if cache_dir is not None else None,
        key=lambda task: cache.item_key(task.sources + task.neighbours, task.mask_path),
        ident=lambda task: task.item_id,
        load=cache.load,
        compute=decode_item,
        reason=reason_of,
        workers=workers,
        progress=progress,
        pool_worth_seconds=_POOL_WORTH_SECONDS,
        layout=cache.LAYOUT,
        labels=("slice cache", "item", "decoding items"),
    )
    skipped += more_skips
    notes += _decode_notes([entry for _, entry in usable], settings)
    if settings.selection == "representative":
        usable, choice_notes = _one_per_patient(usable)
        notes += choice_notes
    usable = _same_channels(usable, settings, skipped, notes)
    if settings.selection == "tumour":
        skipped += _without_tumour_slices(usable, settings)
    if not usable or not any(len(entry["images"]) for _, entry in usable):
        raise nothing_left("slices", len(items), "item(s)", skipped, notes)
    images, table = _assemble(usable, settings)
    if settings.selection == "tumour" and settings.tumour_slices is not None:
        before = len(table)
        images, table = _largest_per_patient(images, table, settings.tumour_slices)
        if len(table) < before:
            notes.append(
                f"{before - len(table)} tumour slice(s) beyond each patient's {settings.tumour_slices} "
                "largest left out (tumour_slices)"
            )
    return SliceSet(images, table, settings, skipped, notes)


def _decode_notes(entries: list[dict], settings: SliceSettings) -> list[str]:
    notes = []
    dim = sum(int(e["dropped_foreground"]) for e in entries)
    if dim:
        notes.append(f"{dim} slice(s) with less than {settings.min_foreground:.0%} foreground left out")
    empty = sum(int(e["dropped_empty_mask"]) for e in entries)
    if empty:
        notes.append(f"{empty} slice(s) with an empty tumour mask left out (roi_crop needs a tumour to crop to)")
    small = sum(int(e["dropped_small_tumour"]) for e in entries)
    if small:
        notes.append(
            f"{small} slice(s) whose tumour mask covers fewer than {settings.min_tumour_area} pixel(s) "
            "left out (selection: tumour)"
        )
    unsaved = [e["cache_error"] for e in entries if "cache_error" in e]
    if unsaved:
        notes.append(f"{len(unsaved)} item(s) could not be written to the slice cache ({unsaved[0]})")
    unscaled = sum(bool(e["min_max_instead_of_none"]) for e in entries)
    if unscaled:
        notes.append(f"scaling 'none' keeps 8-bit images only: {unscaled} other item(s) were min-max scaled")
    return notes


def _one_per_patient(usable: list[tuple[Item, dict]]) -> tuple[list[tuple[Item, dict]], list[str]]:
    """Each patient's slice with the largest tumour area; without one, the middle slice (see the note)."""
    patients: dict[str, list[tuple[Item, dict]]] = {}
    for pair in usable:
        patients.setdefault(pair[0].meta["patient_id"], []).append(pair)
    chosen, fallback = [], []
    for patient, pairs in patients.items():
        tumours = [p for p in pairs if len(p[1]["tumour_area"]) and int(p[1]["tumour_area"][0]) > 0]
        if tumours:
            chosen.append(max(tumours, key=lambda p: int(p[1]["tumour_area"][0])))  # first of equals
            continue
        fallback.append(patient)
        if all(p[0].meta["kind"] == "image" for p in pairs):  # one row per slice (kaggle_3m-like)
            pairs = sorted(pairs, key=lambda p: p[0].meta["row_slice_index"])
            chosen.append(pairs[len(pairs) // 2])
        else:
            chosen.append(pairs[0])  # its entry holds the middle slice
    notes = []
    if fallback:
        examples = ", ".join(fallback[:5]) + (" ..." if len(fallback) > 5 else "")
        notes.append(
            f"{len(fallback)} patient(s) without a tumour in any mask: their representative slice is the "
            f"middle slice of their first item (of their images, for one image per slice): {examples}"
        )
    return chosen, notes


def _without_tumour_slices(usable: list[tuple[Item, dict]], settings: SliceSettings) -> list[Skip]:
    """A Skip for each patient that selection "tumour" left without a slice (its items give none)."""
    counts: dict[str, list] = {}
    for item, entry in usable:
        counts.setdefault(item.meta["patient_id"], [0, item.meta["source_path"]])[0] += len(entry["images"])
    return [
        Skip(
            path,
            f"patient {patient}: no slice whose tumour mask covers {settings.min_tumour_area} pixel(s) "
            "or more (selection: tumour)",
        )
        for patient, (count, path) in counts.items()
        if count == 0
    ]


def _largest_per_patient(images: np.ndarray, table: pd.DataFrame, k: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Each patient's `k` slices of largest tumour area (ties: in table order)."""
    rank = (
        table.reset_index(drop=True)
        .groupby("patient_id", sort=False)["tumour_area"]
        .rank(method="first", ascending=False)
    )
    keep = (rank <= k).to_numpy()
    return images[keep], table[keep].reset_index(drop=True)


def _same_channels(usable, settings: SliceSettings, skipped: list[Skip], notes: list[str]) -> list:
    """Items whose channel count fits the set: grey images join colour ones by repetition (2.5D: of their
    group of slices)."""
    counts = {entry["images"].shape[1] for _, entry in usable}
    if len(counts) <= 1:
        return usable
    target, grey = max(counts), settings.depth
    kept = []
    for item, entry in usable:
        channels = entry["images"].shape[1]
        if channels not in (grey, target):
            skipped.append(Skip(item.meta["source_path"], f"has {channels} channels; the others have {target}"))
        else:
            kept.append((item, entry))
    greys = sum(entry["images"].shape[1] == grey for _, entry in kept)
    notes.append(f"{greys} single-channel item(s) repeated to {target} channels to match the others")
    return kept


def _assemble(usable: list[tuple[Item, dict]], settings: SliceSettings) -> tuple[np.ndarray, pd.DataFrame]:
    depth = settings.depth
    channels = 3 * depth if settings.channels == "stack3" else max(entry["images"].shape[1] for _, entry in usable)
    total = sum(len(entry["images"]) for _, entry in usable)
    images = np.empty((total, channels, settings.size, settings.size), np.uint8)
    rows, start = [], 0
    for item, entry in usable:
        count = len(entry["images"])
        images[start : start + count] = context.fit_channels(entry["images"], channels, depth)  # grey: to all
        start += count
        meta = item.meta
        for index, area, box in zip(entry["slice_index"], entry["tumour_area"], entry["crop"]):
            # A 2D image is one slice: its number is the one its source gave (kaggle_3m), else 0.
            number = max(meta["row_slice_index"], 0) if meta["kind"] == "image" else int(index)
            rows.append(
                {
                    **{k: meta[k] for k in ("item_id", "patient_id", "study_id", "series_id", "label", "sequence")},
                    "slice_id": f"{meta['item_id']}:{number}",
                    "slice_index": number,
                    "tumour_area": int(area),
                    "crop": ",".join(str(int(v)) for v in box) if settings.roi_crop else "",
                    "source_split": meta["source_split"],
                    "source_path": meta["source_path"],
                }
            )
    return images, pd.DataFrame(rows, columns=TABLE_COLUMNS)
