"""Decode one item into its chosen slices (in a worker process); a failure becomes a Skip.

An item of several sources (sequences stacked as channels) is put on one grid first: sources of
the same shape and grid (co-registered, as BraTS) are concatenated as they are; otherwise every
channel is resampled onto the grid of the first channel (the first sequence in `channels`)
through patient coordinates (see `resample`), so that slice i of every channel shows the same
anatomy. The slice choice, scaling, cropping and resizing below then apply to the stacked item.

With data.slices.context = k (2.5D, see `context`), each chosen slice takes its k neighbours each
side as channels: the choice, the foreground check and the roi_crop box are the centre slice's, and
the neighbours are scaled with the item's range, cropped with the centre's box and resized alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.samples.slices import cache, context, ops, pixels, resample
from glioscope.samples.slices.pixels import Source
from glioscope.samples.slices.settings import SliceSettings
from glioscope.samples.entry_cache import reason_of, store


@dataclass(frozen=True)
class ItemTask:
    """Everything a worker needs for one item: its files, its mask, the settings, where to cache."""

    item_id: str
    sources: tuple[Source, ...]
    mask_path: str
    settings: SliceSettings
    cache_file: str = ""
    seconds: float = 0.0  # a guess at the decoding time, to decide whether a process pool pays off
    # 2.5D, a one-image item (kaggle_3m): the files of its slices z-k .. z-1, z+1 .. z+k (see context)
    neighbours: tuple[Source, ...] = ()


def decode_item(task: ItemTask) -> dict | Skip:
    """The item's entry (see cache.unpack), written to `task.cache_file` when set, or a Skip."""
    try:
        entry = _decode(task)
    except InputError as exc:  # a property of the files: cached, so not retried until they change
        entry = Skip(exc.path or task.sources[0].path, reason_of(exc))
    except Exception as exc:  # noqa: BLE001 - a decoder failure on this item must not stop the others
        return Skip(task.sources[0].path, f"cannot be decoded ({type(exc).__name__}: {str(exc)[:200]})")
    return store(cache.save, task.cache_file, entry)


def _decode(task: ItemTask) -> dict:
    settings = task.settings
    if not task.mask_path and (settings.roi_crop or settings.selection == "tumour"):
        needs = "roi_crop" if settings.roi_crop else "selection: tumour"
        raise InputError(task.sources[0].path, f"has no tumour mask, which {needs} needs")
    stack, eight_bit, grid = _load(task)
    count = len(stack)
    mask = None
    if task.mask_path:
        shape = (count, *stack.shape[2:])
        mask = pixels.load_mask(task.mask_path, task.sources[0].kind, settings.axis, shape, grid)
    areas = mask.sum(axis=(1, 2)).astype(np.int64) if mask is not None else np.zeros(count, np.int64)
    low, high = ops.intensity_range(stack, settings.scaling, settings.percentiles, eight_bit)
    k = settings.context
    volume, offset = _with_neighbours(task, stack) if k else (stack, 0)
    group_low, group_high = context.per_group(low, settings.depth), context.per_group(high, settings.depth)
    images, kept, boxes = [], [], []
    dropped_foreground = dropped_empty = 0
    chosen = choose(count, areas, settings)
    for index in chosen:
        if settings.roi_crop and areas[index] == 0:
            dropped_empty += 1
            continue
        scaled = ops.scale(stack[index], low, high)
        drop_dim = settings.min_foreground and settings.selection != "representative"
        if drop_dim and ops.foreground_fraction(scaled) < settings.min_foreground:
            dropped_foreground += 1
            continue
        box = ops.roi_box(mask[index], settings.roi_margin) if settings.roi_crop else (0, 0, 0, 0)
        if k:  # the centre slice with its neighbours, per channel (see context)
            scaled = ops.scale(context.window(volume, offset + index, k), group_low, group_high)
        scaled = ops.crop(scaled, box) if settings.roi_crop else ops.pad_to_square(scaled)
        images.append(ops.to_uint8(ops.resize(scaled, settings.size)))
        kept.append(index)
        boxes.append(box)
    size, channels = settings.size, stack.shape[1] * settings.depth
    return {
        "images": np.stack(images) if images else np.zeros((0, channels, size, size), np.uint8),
        "slice_index": np.array(kept, np.int64),
        "tumour_area": areas[kept],
        "crop": np.array(boxes, np.int64).reshape(-1, 4),
        "areas": areas,
        "n_slices": count,
        "has_mask": mask is not None,
        "dropped_foreground": dropped_foreground,
        "dropped_empty_mask": dropped_empty,
        "dropped_small_tumour": count - len(chosen) if settings.selection == "tumour" else 0,
        "min_max_instead_of_none": settings.scaling == "none" and not eight_bit,
    }


def _load(task: ItemTask) -> tuple[np.ndarray, bool, np.ndarray | None]:
    """The item's sources stacked as channels: (slices, channels, rows, cols), 8-bit, and its grid.

    The grid is the first channel's when the others were resampled onto it, else None.
    """
    loaded = [pixels.load_stack(source, task.settings.axis) for source in task.sources]
    eight_bit = all(bits for _, bits, _ in loaded)
    if len(loaded) == 1:
        return loaded[0][0], eight_bit, None
    shapes = [(len(stack), *stack.shape[2:]) for stack, _, _ in loaded]
    grids = [grid for _, _, grid in loaded]
    if all(resample.same_grid(shapes[0], grids[0], shape, grid) for shape, grid in zip(shapes, grids)):
        return np.concatenate([stack for stack, _, _ in loaded], axis=1), eight_bit, None  # co-registered
    placeless = [s for s, grid in zip(task.sources, grids) if grid is None]
    if placeless:
        listing = ", ".join(f"{Path(s.path).name} {shape}" for s, shape in zip(task.sources, shapes))
        raise InputError(
            placeless[0].path,
            f"sequences to stack as channels differ in shape ({listing}) and this one has no patient "
            "coordinates (ImagePositionPatient/ImageOrientationPatient) to resample it by",
        )
    reference, shape = grids[0], shapes[0]
    channels = []
    for source, (stack, _, grid), own_shape in zip(task.sources, loaded, shapes):
        if resample.same_grid(own_shape, grid, shape, reference):
            channels.append(stack)
            continue
        moved = resample.onto_grid(stack, grid, shape, reference)
        if not moved.any() and stack.any():
            raise InputError(
                source.path,
                f"does not overlap the grid of {Path(task.sources[0].path).name} (the first channel) in "
                "patient coordinates: its channel would be empty",
            )
        channels.append(moved)
    return np.concatenate(channels, axis=1), eight_bit, reference


def _with_neighbours(task: ItemTask, stack: np.ndarray) -> tuple[np.ndarray, int]:
    """(the slices the item's context windows are cut from, the position of the item's slice 0 in them).

    A volume or series is its own; a one-image item with neighbour files (kaggle_3m) is the stack
    [z-k .. z-1, z, z+1 .. z+k] read from them, each picked as the item's own file is.
    """
    if not task.neighbours:
        return stack, 0
    k = len(task.neighbours) // 2
    read: dict[str, np.ndarray] = {task.sources[0].path: stack}
    for source in task.neighbours:
        if source.path not in read:
            read[source.path] = pixels.load_stack(source, task.settings.axis)[0]
        if read[source.path].shape != stack.shape:
            raise InputError(
                source.path,
                f"a neighbouring slice of {Path(task.sources[0].path).name} (data.slices.context) has shape "
                f"{read[source.path].shape[1:]}, the slice itself {stack.shape[1:]}",
            )
    below = [read[s.path] for s in task.neighbours[:k]]
    above = [read[s.path] for s in task.neighbours[k:]]
    return np.concatenate([*below, stack, *above]), k


def choose(count: int, areas: np.ndarray, settings: SliceSettings) -> list[int]:
    """Indices of the slices an item contributes under the settings' selection."""
    if settings.selection == "middle":
        keep = max(1, int(np.floor(count * settings.middle_fraction + 0.5)))
        start = (count - keep) // 2
        return list(range(start, start + keep))
    if settings.selection == "representative":
        # The item's best candidate: the patient's slice is chosen among them (build.py).
        return [int(np.argmax(areas))] if areas.max(initial=0) > 0 else [count // 2]
    if settings.selection == "tumour":  # the per-patient limit (tumour_slices) is applied in build.py
        return [int(i) for i in np.flatnonzero(areas >= settings.min_tumour_area)]
    return list(range(count))
