"""The per-item slice cache: one .npz per item and settings, named by what would change it.

    <cache_dir>/<SliceSettings.key()>/settings.json     the settings, for a person
    <cache_dir>/<SliceSettings.key()>/<item key>.npz    one decoded item
    <cache_dir>/<SliceSettings.key()>/sets/             the items of a build as one memory-mapped array
                                                        (glioscope.samples.consolidated)

The item key hashes each source file's path, size and mtime_ns (every slice
file of a DICOM series, and the mask file), so an edited or replaced file gets a
new key and is decoded again; stale entries are simply never read (delete the
folder to reclaim the space). Computing a key only stats files: a cache hit opens
no DICOM, NIfTI or image file. Entries are written atomically (temp file, then
rename), so parallel or killed runs never leave a half-written one. An item whose
file could not be decoded is cached as its skip reason, so it is not retried
until the file changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from glioscope.cohort import Skip, series_files
from glioscope.samples.slices.pixels import Source
from glioscope.samples.slices.settings import SliceSettings
from glioscope.samples.consolidated import Layout
from glioscope.samples.entry_cache import read_npz, settings_folder, stamp, write_npz


def item_key(sources: tuple[Source, ...], mask_path: str) -> str:
    """Hash of the item's files (path, size, mtime_ns) and channel choice; InputError for a missing file."""
    entries = []
    for source in sources:
        for path in series_files({"path": source.path, "files": source.files}):
            entries.append(stamp(path))
        entries.append([source.kind, list(source.pick) if isinstance(source.pick, tuple) else source.pick])
    if mask_path:
        entries.append(stamp(Path(mask_path)))
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:24]


def folder(cache_dir: Path, settings: SliceSettings) -> Path:
    """The cache folder of these settings, with settings.json written once."""
    return settings_folder(cache_dir, settings, "slice")


# Each entry holds two arrays: `images` and `numbers`, an int64 vector laid out as
# [k, n, *ITEM_FIELDS, k x SLICE_FIELDS (row-major), n areas] for k kept slices of n.
# Few members keep a read near a quarter of a millisecond, about what decoding a JPEG costs.
SLICE_FIELDS = ("slice_index", "tumour_area", "crop_top", "crop_left", "crop_bottom", "crop_right")
ITEM_FIELDS = (
    "n_slices",
    "has_mask",
    "dropped_foreground",
    "dropped_empty_mask",
    "min_max_instead_of_none",
    "dropped_small_tumour",
)
# Entries of several slices (volumes, series) are deflated at level 1, which nearly halves them at little
# cost; a single 2D image is stored as is, where inflating would cost more time than the bytes save.


def load(path: Path) -> dict | Skip | None:
    """A cached item (see `unpack`), its cached Skip, or None when absent or unreadable."""
    return read_npz(path, lambda archive: unpack(archive["images"], archive["numbers"]))


def save(path: Path, entry: dict | Skip) -> None:
    """Write one item (or its Skip) atomically; entries of several slices are deflated."""
    write_npz(path, entry, pack, deflate=not isinstance(entry, Skip) and len(entry["images"]) > 1)


def pack(entry: dict) -> dict[str, np.ndarray]:
    """The two arrays stored for an item: its images and its numbers (see the layout above)."""
    kept, count = len(entry["slice_index"]), len(entry["areas"])
    slices = np.column_stack([entry["slice_index"], entry["tumour_area"], np.reshape(entry["crop"], (-1, 4))])
    numbers = [[kept, count], [int(entry[name]) for name in ITEM_FIELDS], slices.ravel(), entry["areas"]]
    return {"images": entry["images"], "numbers": np.concatenate(numbers).astype(np.int64)}


def unpack(images: np.ndarray, numbers: np.ndarray) -> dict:
    """The inverse of `pack`: images, slice_index, tumour_area, crop (k x 4), areas and the item fields."""
    kept, count = int(numbers[0]), int(numbers[1])
    start = 2 + len(ITEM_FIELDS)
    slices = numbers[start : start + kept * len(SLICE_FIELDS)].reshape(kept, len(SLICE_FIELDS))
    entry = {"images": images, "slice_index": slices[:, 0], "tumour_area": slices[:, 1], "crop": slices[:, 2:]}
    entry["areas"] = numbers[start + kept * len(SLICE_FIELDS) : start + kept * len(SLICE_FIELDS) + count]
    entry.update((name, int(value)) for name, value in zip(ITEM_FIELDS, numbers[2:start]))
    return entry


# In the memory-mapped set of a build (glioscope.samples.consolidated): the images as rows, the numbers as values.
LAYOUT = Layout(
    split=lambda entry: (entry["images"], pack(entry)["numbers"].tolist()),
    join=lambda images, numbers: unpack(images, np.asarray(numbers, np.int64)),
)
