"""Per-slice image operations: intensity scaling, ROI box, padding to a square, resizing."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

# Percentiles of more voxels than this are taken on an even subsample: same values, a tenth of the time.
_PERCENTILE_SAMPLE = 2_000_000
# A pixel is foreground (for min_foreground) when brighter than this fraction of the scaled range.
FOREGROUND_LEVEL = 0.05
_BILINEAR = Image.Resampling.BILINEAR


def intensity_range(stack: np.ndarray, scaling: str, percentiles, eight_bit: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (low, high) of an item (slices, channels, rows, cols), each shaped (channels, 1, 1)."""
    low, high = [], []
    for channel in np.moveaxis(stack, 1, 0):
        if scaling == "none" and eight_bit:
            lo, hi = 0.0, 255.0
        elif scaling == "percentile":
            values = channel[channel != 0]
            if values.size > _PERCENTILE_SAMPLE:
                values = values[:: values.size // _PERCENTILE_SAMPLE + 1]
            lo, hi = np.percentile(values, percentiles) if values.size else (0.0, 0.0)
        else:
            lo, hi = float(channel.min()), float(channel.max())
        low.append(lo)
        high.append(hi if hi > lo else lo + 1.0)
    shape = (-1, 1, 1)
    return np.array(low, np.float32).reshape(shape), np.array(high, np.float32).reshape(shape)


def scale(image: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(channels, rows, cols) mapped to [0, 1], values outside [low, high] clipped."""
    scaled = np.subtract(image, low, dtype=np.float32)
    scaled *= 1.0 / (high - low)
    return np.clip(scaled, 0.0, 1.0, out=scaled)


def foreground_fraction(scaled: np.ndarray) -> float:
    """Fraction of pixels brighter than FOREGROUND_LEVEL in any channel."""
    return float((scaled.max(axis=0) > FOREGROUND_LEVEL).mean())


def roi_box(mask: np.ndarray, margin: float) -> tuple[int, int, int, int]:
    """A square (row0, col0, row1, col1) centred on the mask's bounding box, widened by `margin`.

    The side is the longer side of the box plus `margin` times that side on each
    end; the box may reach past the image, whose outside then reads as zero.
    """
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = max(r1 - r0, c1 - c0)
    side = int(math.ceil(side * (1 + 2 * margin)))
    top = int(round((r0 + r1 - side) / 2))
    left = int(round((c0 + c1 - side) / 2))
    return top, left, top + side, left + side


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """(channels, rows, cols) cut to `box`; parts outside the image are zero."""
    top, left, bottom, right = box
    out = np.zeros((image.shape[0], bottom - top, right - left), np.float32)
    rows, cols = image.shape[1:]
    src_r0, src_r1 = max(top, 0), min(bottom, rows)
    src_c0, src_c1 = max(left, 0), min(right, cols)
    if src_r1 > src_r0 and src_c1 > src_c0:
        out[:, src_r0 - top : src_r1 - top, src_c0 - left : src_c1 - left] = image[:, src_r0:src_r1, src_c0:src_c1]
    return out


def pad_to_square(image: np.ndarray) -> np.ndarray:
    """Zero-pad (channels, rows, cols) evenly to a square, keeping the aspect ratio."""
    rows, cols = image.shape[1:]
    if rows == cols:
        return image
    side = max(rows, cols)
    top, left = (side - rows) // 2, (side - cols) // 2
    return crop(image, (-top, -left, side - top, side - left))


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Square (channels, side, side) float to (channels, size, size), antialiased.

    PIL's bilinear filter widens its support by the reduction factor, so shrinking
    averages (no aliasing) and enlarging interpolates.
    """
    if image.shape[1] == size and image.shape[2] == size:
        return image
    channels = [Image.fromarray(np.ascontiguousarray(c, np.float32)) for c in image]
    return np.stack([np.asarray(c.resize((size, size), _BILINEAR)) for c in channels])


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] floats to 8-bit grey levels."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
