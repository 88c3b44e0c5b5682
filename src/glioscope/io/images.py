"""2D images (PNG, JPEG, TIFF, BMP): read sizes from headers at ingest, pixels later.

Both read the header first and refuse an image larger than the input limits (glioscope.io.limits:
a side of GLIOSCOPE_MAX_IMAGE_SIDE pixels, and the values and bytes of any input) before its pixels
are decoded: a PNG of one colour compresses a huge canvas into a few KB. That check takes the place
of PIL's own decompression-bomb check (Image.MAX_IMAGE_PIXELS), whose warning and error become this
refusal; PIL's threshold is raised, never lowered, to what the limits allow when a user raises them.
"""

from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.io.limits import MAX_IMAGE_SIDE, REFUSED, InputLimits, current
from glioscope.io.parallel import map_files

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError)
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def is_image(path: Path) -> bool:
    """True for the 2D image formats the readers accept."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


class _TooLarge(Exception):
    """An image over the limits: the text says why."""


def _open(path: str | Path, limits: InputLimits) -> Image.Image:
    """The image with its header read and checked against `limits`, pixels not decoded; _TooLarge when over them."""
    allowed = limits.max_image_side**2
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < allowed:
        Image.MAX_IMAGE_PIXELS = allowed  # PIL would refuse an image the user's limits admit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limits decide, just below
            image = Image.open(path)
    except Image.DecompressionBombError as exc:  # a canvas far beyond PIL's threshold, hence beyond the limits
        found = _BOMB_PIXELS.search(str(exc))
        what = f"{int(found[1]):,} pixels" if found else f"more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels"
        raise _TooLarge(
            f"{REFUSED}: its header promises {what}, beyond a side of {limits.max_image_side:,} pixels "
            f"({MAX_IMAGE_SIDE} raises it)"
        ) from None
    width, height = image.size
    problem = limits.image_problem(width, height, len(image.getbands()))
    if problem:
        image.close()
        raise _TooLarge(f"{REFUSED}: its header promises {problem}")
    return image


def read_image_header(path: str | Path, limits: InputLimits | None = None) -> dict | Skip:
    """Rows, columns and channels of one image without decoding it, or a Skip (also for one over `limits`)."""
    limits = limits or current()
    try:
        with _open(path, limits) as image:
            width, height = image.size
            channels = len(image.getbands())
    except _TooLarge as exc:
        return Skip(str(path), str(exc))
    except _UNREADABLE as exc:
        return Skip(str(path), f"cannot be read as an image ({type(exc).__name__}: {str(exc)[:200]})")
    if width < 1 or height < 1:
        return Skip(str(path), f"image has no pixels ({width}x{height})")
    return {"path": str(path), "rows": height, "cols": width, "channels": channels}


def read_image_headers(paths: list[Path], workers: int | None = None, progress: bool = True):
    """read_image_header over many files: (headers by path, skips)."""
    # The limits are read here, not in the workers, whose environment is that of the pool's first start.
    read = functools.partial(read_image_header, limits=current())
    results = map_files(read, [str(p) for p in paths], workers, progress, desc="image headers")
    return {r["path"]: r for r in results if isinstance(r, dict)}, [r for r in results if isinstance(r, Skip)]


def load_image(path: str | Path) -> np.ndarray:
    """Pixels of one image as an array (rows, cols[, channels]); InputError naming the file on failure."""
    limits = current()
    try:
        with _open(path, limits) as image:
            return np.asarray(image)
    except _TooLarge as exc:
        raise InputError(path, str(exc)) from None
    except _UNREADABLE as exc:
        raise InputError(path, f"cannot be read as an image ({type(exc).__name__}: {exc})") from None
