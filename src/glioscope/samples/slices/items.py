"""Cohort rows to decode tasks: one per row, or one per study when sequences are stacked as channels."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from glioscope.cohort import Skip
from glioscope.samples.slices.context import neighbour_rows
from glioscope.samples.slices.decode import ItemTask
from glioscope.samples.slices.pixels import Source
from glioscope.samples.slices.settings import SliceSettings


@dataclass
class Item:
    """A decode task and the row facts its slices carry into the slice table."""

    task: ItemTask
    meta: dict


def plan_items(frame: pd.DataFrame, settings: SliceSettings) -> tuple[list[Item], list[Skip], list[str]]:
    """(items, skipped, notes) for the rows of a cohort table, in table order."""
    rows = frame.to_dict("records")
    near = neighbour_rows(rows, settings.context) if settings.context else {}
    if settings.stacked is None:
        pick = "native" if settings.channels == "native" else "grey"
        items, skipped, notes = (
            [_item([row], [_source(row, pick)], settings, near=near.get(i, [])) for i, row in enumerate(rows)],
            [],
            [],
        )
    else:
        items, skipped, notes = _stacked_items(rows, settings, near)
    alone = sum(item.meta["kind"] == "image" and not item.task.neighbours for item in items)
    if settings.context and alone:
        notes.append(
            f"{alone} 2D image(s) without neighbouring slices (no slice_index, or none of their study): their own "
            f"slice is repeated as its {settings.context} neighbour(s) each side (data.slices.context)"
        )
    return items, skipped, notes


def _source(row: dict, pick) -> Source:
    return Source(str(row["kind"]), str(row["path"]), str(row.get("files", "") or ""), pick)


def _item(
    rows: list[dict], sources: list[Source], settings: SliceSettings, sequence: str = "", near: list[dict] = ()
) -> Item:
    """The item of `rows` (several: sequences stacked as channels); `near`: a one-image item's neighbour rows."""
    first = rows[0]
    neighbours = tuple(_source(row, sources[0].pick) for row in near) if len(sources) == 1 else ()
    item_id = "+".join(str(r["item_id"]) for r in rows)
    mask = next((str(r["mask_path"]) for r in rows if r.get("mask_path")), "")
    meta = {
        "item_id": item_id,
        "patient_id": str(first["patient_id"]),
        "study_id": str(first.get("study_id", "")),
        "series_id": "+".join(str(r.get("series_id", "")) for r in rows),
        "label": str(first.get("label", "")),
        "sequence": sequence or str(first.get("sequence", "")),
        "source_split": str(first.get("source_split", "")),
        "source_path": " + ".join(str(r["path"]) for r in rows),
        "kind": str(first["kind"]),
        "row_slice_index": int(first.get("slice_index", -1)),
    }
    seconds = _seconds(rows, bool(mask)) * (1 + len(neighbours))
    return Item(ItemTask(item_id, tuple(sources), mask, settings, seconds=seconds, neighbours=neighbours), meta)


def _seconds(rows: list[dict], masked: bool) -> float:
    """Decoding time, roughly: per file opened (pydicom, PIL) plus per voxel (gzip, scaling, resizing)."""
    files = sum(int(r.get("n_slices", 1) or 1) if r["kind"] == "series" else 1 for r in rows)
    voxels = sum(int(r.get("n_slices", 1) or 1) * int(r.get("rows", 0) or 0) * int(r.get("cols", 0) or 0) for r in rows)
    return (0.0015 * files + 5e-8 * voxels) * (1.5 if masked else 1.0)


def _stacked_items(
    rows: list[dict], settings: SliceSettings, near: dict[int, list[dict]]
) -> tuple[list[Item], list[Skip], list[str]]:
    """Items whose channels are the wanted sequences: channels of one file, or rows of a study.

    The rows of a study may lie on different grids (RSNA-MICCAI: axial, sagittal, coronal series):
    decoding puts them on the first wanted sequence's grid (see decode and resample).
    """
    wanted = settings.stacked
    items, skipped, notes = [], [], []
    studies: dict[tuple[str, str], list[dict]] = {}
    unused = 0
    for position, row in enumerate(rows):
        parts = str(row.get("sequence", "")).split("+")
        if len(parts) > 1 and all(s in parts for s in wanted):  # e.g. kaggle_3m: T1+FLAIR+T1c in one TIF
            indices = tuple(parts.index(s) for s in wanted)
            items.append(_item([row], [_source(row, indices)], settings, "+".join(wanted), near.get(position, [])))
        elif len(parts) == 1 and parts[0] in wanted:
            studies.setdefault((str(row["patient_id"]), str(row.get("study_id", ""))), []).append(row)
        else:
            unused += 1
    for (patient, study), group in studies.items():
        by_sequence: dict[str, list[dict]] = {}
        for row in group:
            by_sequence.setdefault(row["sequence"], []).append(row)
        missing = [s for s in wanted if s not in by_sequence]
        if missing:
            where = f"patient {patient}" + (f", study {study}" if study else "")
            skipped.append(Skip(str(group[0]["path"]), f"{where} has no {', '.join(missing)} to stack as channels"))
            continue
        several = [f"{len(by_sequence[s])} {s}" for s in wanted if len(by_sequence[s]) > 1]
        if several:
            notes.append(f"patient {patient}: {', '.join(several)} rows; the first of each is stacked")
        chosen = [by_sequence[s][0] for s in wanted]
        items.append(_item(chosen, [_source(r, "grey") for r in chosen], settings, "+".join(wanted)))
    if unused:
        notes.append(f"{unused} row(s) of other sequences than {'+'.join(wanted)} not used")
    return items, skipped, notes
