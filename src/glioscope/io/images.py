"""2D images (PNG, JPEG, TIFF, BMP): read sizes from headers at ingest, pixels later."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.io.parallel import map_files

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def is_image(path: Path) -> bool:
    """True for the 2D image formats the readers accept."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image_header(path: str | Path) -> dict | Skip:
    """Rows, columns and channels of one image without decoding it, or a Skip."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            channels = len(image.getbands())
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return Skip(str(path), f"cannot be read as an image ({type(exc).__name__}: {str(exc)[:200]})")
    if width < 1 or height < 1:
        return Skip(str(path), f"image has no pixels ({width}x{height})")
    return {"path": str(path), "rows": height, "cols": width, "channels": channels}


def read_image_headers(paths: list[Path], workers: int | None = None, progress: bool = True):
    """read_image_header over many files: (headers by path, skips)."""
    results = map_files(read_image_header, [str(p) for p in paths], workers, progress, desc="image headers")
    return {r["path"]: r for r in results if isinstance(r, dict)}, [r for r in results if isinstance(r, Skip)]


def load_image(path: str | Path) -> np.ndarray:
    """Pixels of one image as an array (rows, cols[, channels]); InputError naming the file on failure."""
    try:
        with Image.open(path) as image:
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(path, f"cannot be read as an image ({type(exc).__name__}: {exc})") from None
