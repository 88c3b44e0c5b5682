"""2.5D slices (data.slices.context = k): each slice with its k neighbours below and above as channels.

A sample of C channels becomes one of C * (2k + 1), ordered per channel:

    [c0 at z-k, ..., c0 at z, ..., c0 at z+k, c1 at z-k, ..., c1 at z+k, ...]

so channel c's group is channels c*(2k+1) .. c*(2k+1)+2k and its centre slice is channel
c*(2k+1)+k. At an item's edge the nearest existing slice is repeated (edge padding): slice 0 of a
volume with k = 2 carries [0, 0, 0, 1, 2]. A volume or series holds its own neighbours; an image
item of one slice per file (kaggle_3m) gets them from the rows of its study, ordered by
slice_index (`neighbour_rows`); a 2D image without any (an image folder's PNG) repeats itself.
"""

from __future__ import annotations

import numpy as np


def window(volume: np.ndarray, index: int, k: int) -> np.ndarray:
    """Slice `index` of (slices, channels, rows, cols) with its k neighbours each side, edges repeated:
    (channels * (2k + 1), rows, cols), ordered per channel (see the module)."""
    chosen = np.clip(np.arange(index - k, index + k + 1), 0, len(volume) - 1)
    picked = volume[chosen]  # (2k + 1, channels, rows, cols)
    return np.ascontiguousarray(picked.transpose(1, 0, 2, 3)).reshape(-1, *volume.shape[2:])


def per_group(values: np.ndarray, depth: int) -> np.ndarray:
    """Per-channel values (channels, ...) repeated for each slice of a channel's group."""
    return np.repeat(values, depth, axis=0)


def fit_channels(images: np.ndarray, channels: int, depth: int) -> np.ndarray:
    """Slices (n, have, h, w) made to `channels` channels: a grey item's group of `depth` slices repeated
    for each channel, as a grey 2D slice is repeated to three."""
    have = images.shape[1]
    if have == channels or depth == 1:
        return images  # plain 2D: assignment broadcasts one channel to all
    return np.tile(images, (1, channels // have, 1, 1))


def neighbour_rows(rows: list[dict], k: int) -> dict[int, list[dict]]:
    """For each 2D image row of a study with a slice_index (one image per slice, as kaggle_3m), its 2k
    neighbours [z-k .. z-1, z+1 .. z+k] among the same study's rows (patient, study, sequence), by
    slice_index order, the nearest repeated at an edge; keyed by the row's position in `rows`. Rows
    without a slice_index, or alone in their study, have none.
    """
    studies: dict[tuple[str, str, str], list[int]] = {}
    for position, row in enumerate(rows):
        if row["kind"] == "image" and int(row.get("slice_index", -1)) >= 0:
            key = (str(row["patient_id"]), str(row.get("study_id", "")), str(row.get("sequence", "")))
            studies.setdefault(key, []).append(position)
    found: dict[int, list[dict]] = {}
    for positions in studies.values():
        if len(positions) < 2:
            continue
        ordered = sorted(positions, key=lambda p: (int(rows[p]["slice_index"]), str(rows[p]["path"])))
        last = len(ordered) - 1
        for place, position in enumerate(ordered):
            offsets = [*range(-k, 0), *range(1, k + 1)]
            found[position] = [rows[ordered[min(max(place + j, 0), last)]] for j in offsets]
    return found
