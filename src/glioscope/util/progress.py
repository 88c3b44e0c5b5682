"""Progress: a bar on a terminal, one line per stage otherwise (a log file, CI, nohup, `make demo > log`).

tqdm writes a carriage return for every update; in a file those pile up into thousands
of lines. `progress_bar` gives tqdm when standard error is a terminal (or when
GLIOSCOPE_PROGRESS=bar), and otherwise a `StageLine`: one line when the stage ends ("decoding
items: 412 file(s) in 3.2 s"), and, given `every_s`, one line every `every_s` seconds while it runs
("pretrain-simclr-r18 epoch 2/30: 120/400 batch(es), 31 s, ~72 s left (loss=1.234)"), so that a
long stage in a log file is seen to progress.
"""

from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm


def interactive() -> bool:
    """Whether progress bars are wanted: standard error is a terminal, or GLIOSCOPE_PROGRESS says bar / lines."""
    wanted = os.environ.get("GLIOSCOPE_PROGRESS", "").lower()
    if wanted in ("bar", "lines"):
        return wanted == "bar"
    return sys.stderr.isatty()


def progress_bar(
    iterable=None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    disable: bool = False,
    leave: bool = False,
    summary: bool = True,
    every_s: float | None = None,
    **options,
):
    """tqdm on a terminal; a StageLine (one line at the end, none with `summary=False`; one every `every_s` seconds
    while it runs) in a log."""
    if disable or interactive():
        return tqdm(
            iterable, total=total, desc=desc, unit=unit, disable=disable, leave=leave, dynamic_ncols=True, **options
        )
    return StageLine(iterable, total, desc, unit, summary, every_s)


class StageLine:
    """The part of tqdm's interface glioscope uses, printing one line when the stage ends."""

    def __init__(
        self,
        iterable=None,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        summary: bool = True,
        every_s: float | None = None,
    ):
        self.iterable, self.total, self.desc, self.unit, self.summary = iterable, total, desc, unit, summary
        self.n, self.postfix, self.closed = 0, "", False
        self.start = self.shown = time.perf_counter()
        self.every_s = every_s

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.n += 1
                self._heartbeat()
        finally:
            self.close()

    def _heartbeat(self) -> None:
        """The line of a stage still running, once `every_s` seconds have passed since the last."""
        now = time.perf_counter()
        if self.every_s is None or now - self.shown < self.every_s:
            return
        self.shown, elapsed = now, now - self.start
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        left = f", ~{elapsed / self.n * (self.total - self.n):.0f} s left" if self.total and self.n else ""
        extra = f" ({self.postfix})" if self.postfix else ""
        print(f"{self.desc}: {done} {self.unit}(s), {elapsed:.0f} s{left}{extra}", file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        self._heartbeat()

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.summary and self.n:
            seconds = time.perf_counter() - self.start
            extra = f" ({self.postfix})" if self.postfix else ""
            print(f"{self.desc}: {self.n} {self.unit}(s) in {seconds:.1f} s{extra}", file=sys.stderr, flush=True)
