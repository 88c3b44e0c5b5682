"""A stage log: one timestamped line per stage, appended to a file (a run's run.log; curve.log, auto.log).

A log is appended to rather than written atomically: a killed run keeps its lines up to the stage it
died in, and a resumed run adds its own below them. Lines logged before the file's folder may be
written (a run that can still refuse its inputs, or one staged in a temporary folder) wait in memory
until `to` names the file. While `notes` is active, every line printed that starts with "note:" or
"warning:", and every Python warning, is copied into the log too, wherever in the run it is printed.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Iterator

NOTED = ("note:", "warning:")  # the printed lines a log keeps beside its stages


def stamp(line: str) -> str:
    """`line` after the local time with its UTC offset (2026-12-06T23:40:05+00:00)."""
    return f"{datetime.now().astimezone().isoformat(timespec='seconds')} {line}"


class StageLog:
    """Timestamped lines appended to `path` (kept in memory while it is None); `enabled=False` keeps none."""

    def __init__(self, path: Path | None = None, enabled: bool = True):
        self.path = Path(path) if path is not None else None
        self.enabled = enabled
        self._waiting: list[str] = []

    def __call__(self, line: str) -> None:
        if not self.enabled:
            return
        self._waiting += [stamp(part) for part in str(line).splitlines() or [""]]
        if self.path is not None:
            self._flush()

    def to(self, path: Path, earlier: Path | None = None) -> None:
        """Write into `path` from now on (and the lines waiting); a new file starts with `earlier`'s lines."""
        self.path = Path(path)
        if not self.enabled:
            return
        if earlier is not None and Path(earlier).is_file() and not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(earlier, self.path)  # a resumed run staged anew keeps the log it started
        self._flush()

    def _flush(self) -> None:
        if not self._waiting:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in self._waiting))
        self._waiting = []

    @contextlib.contextmanager
    def timed(self, what: str) -> Iterator[None]:
        """`what` started, then finished with its time (or stopped, with the error's type)."""
        self(f"{what} started")
        start = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            self(f"{what} stopped after {time.perf_counter() - start:.1f} s: {type(exc).__name__}")
            raise
        self(f"{what} finished in {time.perf_counter() - start:.1f} s")

    @contextlib.contextmanager
    def notes(self) -> Iterator[None]:
        """Copy the notes and warnings printed on standard output, and Python's warnings, into the log."""
        original_stdout, original_warning = sys.stdout, warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            self(f"warning: {category.__name__}: {message}")
            original_warning(message, category, filename, lineno, file, line)

        tee = _NoteTee(original_stdout, self)
        sys.stdout, warnings.showwarning = tee, show
        try:
            yield
        finally:
            tee.close_line()
            sys.stdout, warnings.showwarning = original_stdout, original_warning


class _NoteTee:
    """A text stream that passes every write on and logs the complete lines that are notes or warnings."""

    def __init__(self, stream, log: StageLog):
        self._stream, self._log, self._partial = stream, log, ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if line.lstrip().startswith(NOTED):
                self._log(line.strip())
        return self._stream.write(text)

    def close_line(self) -> None:
        if self._partial.lstrip().startswith(NOTED):
            self._log(self._partial.strip())
        self._partial = ""

    def __getattr__(self, name):
        return getattr(self._stream, name)
