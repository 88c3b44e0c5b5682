"""What the slice set and the volume set share: the build loop, and the cache of decoded entries.

Both build a sample set the same way: check the cohort rows, plan one task per item (a
series, a volume, a stacked study), read each task's entry from the cache or compute it
in parallel, and keep the entries that are not skips (`build_entries`). Both caches keep
one .npz per item under <cache_dir>/<settings key>/, named by a hash of the item's source
files' (path, size, mtime_ns): `stamp` gives that triple, `settings_folder` the folder
(with settings.json for a person), `read_npz` and `write_npz` one entry (never pickled;
written to a temporary file, then renamed), and `fetch_or_compute` reads what is cached
and computes the rest, each task writing its own entry. The entries of a whole build are also
kept as one memory-mapped array (`consolidated`), which a later build of the same rows reads
instead of one file per item.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope import cohort
from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.io.parallel import map_files
from glioscope.samples import consolidated
from glioscope.samples.consolidated import Layout
from glioscope.util import atomic
from glioscope.util.progress import progress_bar

# Entries are deflated at level 1 (fast; the zero background of scans halves them) when asked.
_COMPRESS_LEVEL = 1


def checked(frame: pd.DataFrame, purpose: str) -> pd.DataFrame:
    """The cohort rows normalised and validated; an error when there are none."""
    if frame is None or len(frame) == 0:
        raise InputError(None, f"the cohort table has no rows {purpose}")
    frame = cohort.normalise(frame.fillna(""))
    cohort.validate(frame, "cohort")
    return frame


def build_entries(planned: Sequence, folder: Path | None, *, ident: Callable, **fetch) -> tuple[list, list[Skip]]:
    """(usable (planned, entry) pairs in plan order, skips) for planned items that each carry a `task`.

    `fetch` are the keyword arguments of `fetch_or_compute` besides the tasks and the folder.
    """
    entries, skipped = fetch_or_compute([p.task for p in planned], folder, ident=ident, **fetch)
    usable = []
    for item in planned:
        entry = entries.get(ident(item.task))
        if isinstance(entry, Skip):
            skipped.append(entry)
        elif entry is not None:
            usable.append((item, entry))
    return usable, skipped


def nothing_left(what: str, count: int, unit: str, skipped: list[Skip], notes: list[str]) -> InputError:
    """The error for a build that kept nothing, with the first reason."""
    example = f"; e.g. {skipped[0].path}: {skipped[0].reason}" if skipped else "; ".join(["", *notes])
    return InputError(None, f"no {what} left from {count} {unit} ({len(skipped)} skipped{example})")


def read_npz(path: Path, unpack: Callable) -> dict | Skip | None:
    """A cached entry (`unpack(archive)`), its cached Skip, or None when absent or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "skip" in archive.files:
                where, reason = (str(s) for s in archive["skip"])
                return Skip(where, reason)
            return unpack(archive)
    except (OSError, ValueError, EOFError, KeyError, IndexError, zipfile.BadZipFile):
        return None  # absent, or damaged by something outside glioscope: compute again


def write_npz(path: Path, entry: dict | Skip, pack: Callable, deflate: bool) -> None:
    """Write `pack(entry)` (arrays by name), or a Skip, atomically as a .npz that `numpy.load` reads."""
    if isinstance(entry, Skip):
        arrays, deflate = {"skip": np.array([entry.path, entry.reason])}, False
    else:
        arrays = pack(entry)
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with atomic.atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", method, compresslevel=_COMPRESS_LEVEL if deflate else None) as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def stamp(path: Path) -> list:
    """[path, size, mtime_ns] of a file; InputError naming it when it cannot be read."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror or exc})") from None
    return [str(path), info.st_size, info.st_mtime_ns]


def settings_folder(cache_dir: Path, settings, what: str) -> Path:
    """The cache folder of these settings (a dataclass with `key()`), with settings.json written once."""
    path = Path(cache_dir).expanduser() / settings.key()
    described = path / "settings.json"
    try:
        if not described.is_file():
            atomic.write_json(described, asdict(settings))
    except OSError as exc:
        raise InputError(path, f"cannot write the {what} cache here ({exc.strerror or exc})") from None
    return path


def fetch_or_compute(
    tasks: Sequence,
    folder: Path | None,
    *,
    key: Callable,
    ident: Callable,
    load: Callable,
    compute: Callable,
    reason: Callable,
    workers,
    progress: bool,
    pool_worth_seconds: float,
    labels: tuple[str, str, str],
    layout: Layout | None = None,
) -> tuple[dict, list[Skip]]:
    """Entries by `ident(task)`: loaded from `folder` where cached, else `compute(task)` (in parallel when the
    tasks' estimated `seconds` add up to more than `pool_worth_seconds`). Tasks get `cache_file` set so that
    `compute` writes its entry. A task whose key cannot be made (a missing file) is skipped with `reason(exc)`.
    labels: (cache bar, its unit, compute bar). With a `layout`, the whole set is read from its memory-mapped
    array when there is one (glioscope.samples.consolidated), and written as one after a build without it."""
    entries, skipped, pending, keyed = {}, [], [], []
    cache_desc, unit, compute_desc = labels
    for task in tasks if folder is not None else ():
        try:
            keyed.append((task, key(task)))  # stats files only
        except InputError as exc:
            skipped.append(Skip(exc.path, reason(exc)))
    keys = [entry_key for _, entry_key in keyed]
    if layout is not None and keyed:
        found = consolidated.read_set(folder, keys, layout)
        if found is not None:
            return {ident(task): found[entry_key] for task, entry_key in keyed}, skipped
    if folder is None:
        pending = list(tasks)
    for task, entry_key in progress_bar(keyed, desc=cache_desc, unit=unit, disable=not progress or folder is None):
        entry_file = folder / f"{entry_key}.npz"
        cached = load(entry_file)
        if cached is not None:
            entries[ident(task)] = cached
            continue
        pending.append(replace(task, cache_file=str(entry_file)))
    threshold = 2 if sum(task.seconds for task in pending) > pool_worth_seconds else len(pending) + 1
    done = map_files(compute, pending, workers, progress, desc=compute_desc, min_parallel=threshold)
    entries.update((ident(task), entry) for task, entry in zip(pending, done))
    if layout is not None and keyed:
        consolidated.write_set(folder, keys, [entries.get(ident(task)) for task, _ in keyed], layout)
    return entries, skipped


def reason_of(exc: InputError) -> str:
    """The message of an InputError without the path it starts with."""
    text = str(exc)
    prefix = f"{exc.path}: "
    return text[len(prefix) :] if exc.path and text.startswith(prefix) else text


def store(save: Callable, cache_file: str | None, entry):
    """`save(path, entry)` when the task has a cache file; a failed write (a full disk) costs the cache, not the run."""
    if cache_file:
        try:
            save(Path(cache_file), entry)
        except OSError as exc:
            return entry if isinstance(entry, Skip) else {**entry, "cache_error": f"{exc.strerror or exc}"}
    return entry
