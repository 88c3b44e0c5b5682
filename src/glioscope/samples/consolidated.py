"""The cache of a whole sample set as one memory-mapped array, beside the per-item entries it is made from.

    <settings folder>/sets/<set key>.npy    every entry's array, one after the other: (N, C, ...)
    <settings folder>/sets/<set key>.json   the index: the entry keys in order, and per entry its rows
                                            of the array and its small values (or its skip reason)

The set key hashes the ordered list of entry keys, which hash the items' files (path, size,
mtime_ns) under one settings folder: the same cohort rows under the same settings find their set,
an edited file or another selection of rows makes a new one. The per-item .npz files stay the
source of truth; a set is written after a build that had to read or compute them, the array
first and the index last (each atomically), so an index is only ever found beside its complete
array. Reading a set opens two files instead of one per item, and the array with
`numpy.load(mmap_mode="r")`: pages are read when the sample set copies them. Stale sets are never
read (delete the `sets` folder to reclaim the space).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from glioscope.cohort import Skip
from glioscope.util import atomic


class Layout(NamedTuple):
    """How entries of one kind go into a set: `split(entry)` -> (array (k, C, ...), JSON-ready values);
    `join(rows, values)` -> the entry, `rows` being a read-only view of the set's array."""

    split: Callable
    join: Callable


def set_key(keys: list[str]) -> str:
    return hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:24]


def paths(folder: Path, keys: list[str]) -> tuple[Path, Path]:
    """(array, index) of the set of these entry keys."""
    name = set_key(keys)
    return folder / "sets" / f"{name}.npy", folder / "sets" / f"{name}.json"


def read_set(folder: Path, keys: list[str], layout: Layout) -> dict | None:
    """Entries (or Skips) by entry key from the set of `keys`; None when there is none or it does not fit."""
    array_path, index_path = paths(folder, keys)
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        if index.get("keys") != keys:
            return None
        array = np.load(array_path, mmap_mode="r", allow_pickle=False)
        if list(array.shape) != index["shape"] or str(array.dtype) != index["dtype"]:
            return None
        entries = {}
        for key, record in zip(keys, index["records"]):
            if "skip" in record:
                entries[key] = Skip(*record["skip"])
            else:
                start, count, channels = record["start"], record["count"], record["channels"]
                entries[key] = layout.join(array[start : start + count, :channels], record["values"])
        return entries
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # absent, or damaged: the per-item entries answer


def write_set(folder: Path, keys: list[str], entries: list, layout: Layout) -> bool:
    """Write the set of `entries` (in the order of `keys`); False when they cannot make one (nothing written)."""
    records, arrays = [], []
    start = 0
    for entry in entries:
        if isinstance(entry, Skip):
            records.append({"skip": [str(entry.path), str(entry.reason)]})
            continue
        if entry is None or "cache_error" in entry:
            return False
        rows, values = layout.split(entry)
        rows = np.asarray(rows)
        records.append({"start": start, "count": len(rows), "channels": int(rows.shape[1]), "values": values})
        arrays.append(rows)
        start += len(rows)
    if not arrays or len({(a.shape[2:], a.dtype) for a in arrays}) != 1:
        return False
    shape = (start, max(a.shape[1] for a in arrays), *arrays[0].shape[2:])
    array_path, index_path = paths(folder, keys)
    try:
        with atomic.atomic_path(array_path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=arrays[0].dtype, shape=shape)
            for record, rows in zip((r for r in records if "skip" not in r), arrays):
                out[record["start"] : record["start"] + record["count"], : rows.shape[1]] = rows
                out[record["start"] : record["start"] + record["count"], rows.shape[1] :] = 0
            out.flush()
            del out
        index = {"keys": keys, "shape": list(shape), "dtype": str(arrays[0].dtype), "records": records}
        atomic.write_text(index_path, json.dumps(index, separators=(",", ":")))
    except OSError:
        return False  # a full disk costs the set, not the run
    return True
