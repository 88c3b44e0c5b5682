"""How much one input may decode to: limits checked against what a header promises, before anything is decoded.

A header can promise far more than its file holds: a few KB of gzip whose NIfTI header says
4000 x 4000 x 4000 float32, a PNG of one colour on a huge canvas, a DICOM whose Rows x Columns x
NumberOfFrames make gigabytes. Every reader compares what the header promises with these limits
and refuses the file, naming it, before its pixels are decoded or an array is allocated; a
recipe's sample sizes are checked against them when it is loaded. The limits are read from the
environment, so that a user with a larger input can raise them:

    GLIOSCOPE_MAX_VOXELS      values in one decoded volume, DICOM series or image, all channels
                              (default 262,144,000: a 512 x 512 x 1000 volume)
    GLIOSCOPE_MAX_BYTES       bytes of one decoded volume, series or image, each value counted at 4 bytes
                              (float32, as glioscope holds it) or at the file's own size when larger
                              (default 1,073,741,824: 1 GiB)
    GLIOSCOPE_MAX_IMAGE_SIDE  pixels along the longer side of a 2D image (default 8192); slices are
                              padded to a square before they are resized, so a 100000 x 1 image would
                              decode to 100000 x 100000
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from glioscope.errors import InputError

MAX_VOXELS = "GLIOSCOPE_MAX_VOXELS"
MAX_BYTES = "GLIOSCOPE_MAX_BYTES"
MAX_IMAGE_SIDE = "GLIOSCOPE_MAX_IMAGE_SIDE"
DEFAULT_MAX_VOXELS = 512 * 512 * 1000
DEFAULT_MAX_BYTES = 1024**3
DEFAULT_MAX_IMAGE_SIDE = 8192
FLOAT32 = 4  # bytes a value takes once decoded: glioscope converts what it reads to float32
REFUSED = "refused before decoding"


@dataclass(frozen=True)
class InputLimits:
    """The largest input glioscope decodes (see the module docstring); `current()` reads them from the environment."""

    max_voxels: int = DEFAULT_MAX_VOXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_image_side: int = DEFAULT_MAX_IMAGE_SIDE

    def problem(self, what: str, count: int, value_bytes: int = FLOAT32) -> str:
        """Why `count` values of `value_bytes` each (described by `what`, e.g. "4000 x 4000 x 4000 voxels") are
        too many, or ''."""
        value_bytes = max(int(value_bytes), FLOAT32)
        if count > self.max_voxels:
            return f"{what} ({count:,} values), over the limit of {self.max_voxels:,} ({MAX_VOXELS} raises it)"
        if count * value_bytes > self.max_bytes:
            return (
                f"{what} ({count:,} values of {value_bytes} bytes: {_size(count * value_bytes)}), over the limit of "
                f"{_size(self.max_bytes)} ({MAX_BYTES} raises it)"
            )
        return ""

    def image_problem(self, cols: int, rows: int, channels: int = 1, value_bytes: int = FLOAT32) -> str:
        """Why a 2D image of `cols` x `rows` pixels is too large to decode, or ''."""
        what = f"{cols} x {rows} pixels" + (f" x {channels} channels" if channels > 1 else "")
        longest = max(cols, rows)
        if longest > self.max_image_side:
            return (
                f"{what}: a side of {longest:,} pixels, over the limit of {self.max_image_side:,} "
                f"({MAX_IMAGE_SIDE} raises it)"
            )
        return self.problem(what, cols * rows * channels, value_bytes)


def current() -> InputLimits:
    """The limits in force: the environment's, else the defaults; InputError for a value that is not a number >= 1."""
    return InputLimits(
        _read(MAX_VOXELS, DEFAULT_MAX_VOXELS),
        _read(MAX_BYTES, DEFAULT_MAX_BYTES),
        _read(MAX_IMAGE_SIDE, DEFAULT_MAX_IMAGE_SIDE),
    )


def dims(shape) -> str:
    """A shape as "4000 x 4000 x 4000"."""
    return " x ".join(str(int(s)) for s in shape)


def count(shape) -> int:
    """The number of values of an array of `shape`."""
    return math.prod(int(s) for s in shape)


def _read(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip().replace("_", "")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise InputError(
            None, f"{name}={os.environ[name]!r}: expected a whole number of at least 1 (default {default})"
        )
    return int(value)


def _size(n: int) -> str:
    return f"{n:,} bytes ({n / 1024**3:.2f} GiB)" if n >= 1024**3 / 100 else f"{n:,} bytes"
