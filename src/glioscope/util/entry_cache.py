"""What the slice cache and the volume cache share: file stamps, the settings folder, cache-or-compute.

Both caches keep one .npz per item under <cache_dir>/<settings key>/, named by a hash of
the item's source files' (path, size, mtime_ns): `stamp` gives that triple, `settings_folder`
the folder (with settings.json for a person), and `fetch_or_compute` reads what is cached and
computes the rest in parallel, each task writing its own entry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from tqdm import tqdm

from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.io.parallel import map_files
from glioscope.util import atomic


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


def fetch_or_compute(tasks: Sequence, folder: Path | None, *, key: Callable, ident: Callable, load: Callable,
                     compute: Callable, reason: Callable, workers, progress: bool, pool_worth_seconds: float,
                     labels: tuple[str, str, str]) -> tuple[dict, list[Skip]]:
    """Entries by `ident(task)`: loaded from `folder` where cached, else `compute(task)` (in parallel when the
    tasks' estimated `seconds` add up to more than `pool_worth_seconds`). Tasks get `cache_file` set so that
    `compute` writes its entry. A task whose key cannot be made (a missing file) is skipped with `reason(exc)`.
    labels: (cache bar, its unit, compute bar)."""
    entries, skipped, pending = {}, [], []
    cache_desc, unit, compute_desc = labels
    for task in tqdm(tasks, desc=cache_desc, unit=unit, disable=not progress or folder is None, leave=False):
        if folder is not None:
            try:
                entry_file = folder / f"{key(task)}.npz"
            except InputError as exc:
                skipped.append(Skip(exc.path, reason(exc)))
                continue
            cached = load(entry_file)
            if cached is not None:
                entries[ident(task)] = cached
                continue
            task = replace(task, cache_file=str(entry_file))
        pending.append(task)
    threshold = 2 if sum(task.seconds for task in pending) > pool_worth_seconds else len(pending) + 1
    done = map_files(compute, pending, workers, progress, desc=compute_desc, min_parallel=threshold)
    entries.update((ident(task), entry) for task, entry in zip(pending, done))
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
