"""Text for the terminal: control characters in ids and file names are shown escaped, never acted on.

A patient id or a file name can hold an escape sequence that would move the cursor, rewrite a line
or retitle the window. What glioscope prints goes through `printable`: every control character but
the newline and the tab is written as its Python escape (ESC as \\x1b).
"""

from __future__ import annotations

import contextlib
import re
import sys
from typing import Iterator

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with its control characters (all but newline and tab) written as escapes."""
    return _CONTROL.sub(lambda found: repr(found.group())[1:-1], str(text))


class _Escaped:
    """A text stream whose writes go through `printable`."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(printable(text))

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def escaped_stdout() -> Iterator[None]:
    """sys.stdout escaped for the duration (progress bars, on stderr, keep their own control characters)."""
    original = sys.stdout
    sys.stdout = _Escaped(original)
    try:
        yield
    finally:
        sys.stdout = original
