"""Run a per-file function over many files in worker processes, with a progress bar."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar


from glioscope.errors import InputError
from glioscope.util.progress import progress_bar

T = TypeVar("T")
R = TypeVar("R")

# Below this many files a pool costs more (process start, imports) than it saves.
PARALLEL_MIN_FILES = 256


def default_workers() -> int:
    """One worker per CPU core."""
    return os.cpu_count() or 1


def map_files(
    function: Callable[[T], R],
    items: Sequence[T],
    workers: int | None = None,
    progress: bool = True,
    desc: str = "reading",
    min_parallel: int | None = None,
) -> list[R]:
    """`[function(item) for item in items]`, in order, spread over processes in chunks.

    `function` must be a module-level function (it is pickled by name) and must not
    raise for a bad file: it returns a value that says what went wrong instead. Fewer
    than `min_parallel` items (default PARALLEL_MIN_FILES) run in this process.
    """
    workers = default_workers() if workers is None else max(1, int(workers))
    bar = progress_bar(total=len(items), desc=desc, unit="file", disable=not progress or not items)
    try:
        threshold = PARALLEL_MIN_FILES if min_parallel is None else min_parallel
        if workers == 1 or len(items) < max(2, threshold):
            results = []
            for item in items:
                results.append(function(item))
                bar.update(1)
            return results
        return _map_in_pool(function, items, workers, bar)
    finally:
        bar.close()


def _map_in_pool(function, items, workers, bar) -> list:
    # Small chunks keep the bar moving and balance slow files; large ones cut pickling.
    size = max(1, min(256, len(items) // (workers * 8) or 1))
    chunks = [list(items[start : start + size]) for start in range(0, len(items), size)]
    results: list = [None] * len(chunks)
    executor = ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=_context())
    try:
        futures = {executor.submit(_run_chunk, function, chunk): i for i, chunk in enumerate(chunks)}
        for future in as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            bar.update(len(chunks[index]))
    except BrokenProcessPool:
        raise InputError(
            None, "a worker process died while reading files; retry with --workers 1 to find the file"
        ) from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return [value for chunk in results for value in chunk]


def _run_chunk(function, chunk):
    return [function(item) for item in chunk]


def _context():
    # fork is unsafe once threads exist (torch, tqdm's monitor); forkserver avoids that
    # and starts faster than spawn. Windows and macOS builds without it use spawn.
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method)
