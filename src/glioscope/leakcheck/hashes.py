"""The hashes of one image and the distances between them (glioscope.leakcheck compares sets of them).

- exact: SHA-256 of the decoded, preprocessed array.
- aligned (the near-duplicate search): two 256-bit DCT sign hashes of the image brought into a
  standard position. The background level (the median below Otsu's threshold) is taken off, so
  zero padding, a brightness or contrast change leave the picture the same; the image is then
  resampled on a 32 x 32 grid centred on the centre of mass of its foreground (a shift moves the
  grid with it), once upright and once turned so that the foreground's long axis is vertical (a
  rotation turns the grid with it), blurred to the grid's spacing. Each hash holds the signs of
  the 16 x 16 lowest DCT coefficients of one grid, in four words by the parity of their row and
  column frequency: a mirrored image has the signs of its odd column (left-right) or odd row
  (up-down) frequencies reversed, so a flip is a whole word complemented and the search of the
  flipped copies costs four bit counts per pair, the same as one.
- perceptual (kept to read fingerprints made before the aligned hashes, and written for the
  versions that read only it): pHash, the signs of the 16 x 16 lowest DCT frequencies of the image
  box-averaged to 32 x 32, against their median. It misses a shift of a few pixels, a flip and a
  rotation of 5 degrees.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy import ndimage
from scipy.fft import dctn

NEAR_BITS = 36  # of 256: at most this far apart (the closer of the two hashes, any flip) is a near duplicate
LEGACY_NEAR_BITS = 20  # of 256, for the perceptual hash of fingerprints made before the aligned hashes
MIN_CONTENT = 0.15
HASH_WORDS = 4  # 64 bits each
ALIGNED = 2  # hashes per image: upright, long axis vertical
_SIDE, _LOW = 32, 16
_WORK = 128  # the image is box-averaged to this longer side before it is aligned
_FOREGROUND = 0.1  # of the image's range above its background level
_GROUP = 64  # bits per parity group, (16 / 2) ** 2: words 0-3 hold even/even, even/odd, odd/even, odd/odd
# (row frequency / column frequency)


def exact_hash(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def image_of(array: np.ndarray) -> np.ndarray:
    """The first channel of a (C, H, W) slice, or the middle axial slice of a (C, D, H, W) volume."""
    image = np.asarray(array, np.float32)[0]
    return image[image.shape[0] // 2] if image.ndim == 3 else image


def informative(array: np.ndarray) -> bool:
    """Whether a sample has enough content for its hashes to say something."""
    image = image_of(array)
    top = float(image.max())
    return top > 0 and float((image > 0.1 * top).mean()) >= MIN_CONTENT


def perceptual_hash(array: np.ndarray) -> np.ndarray:
    """pHash of a slice or volume, 256 bits as four uint64 words (fingerprints made before the aligned hashes)."""
    image = image_of(array)
    low = dctn(_box_means(image, _SIDE, _SIDE), norm="ortho")[:_LOW, :_LOW].ravel()[1:]  # no DC: brightness
    bits = np.append(low > np.median(low), False)
    return np.packbits(bits).view(">u8").astype(np.uint64)


def aligned_hashes(array: np.ndarray) -> np.ndarray:
    """The two aligned hashes of a slice or volume (see the module docstring): (2, 4) uint64."""
    image = _working(image_of(array).astype(np.float64))
    top, bottom = float(image.max()), float(image.min())
    if not top > bottom:
        return np.zeros((ALIGNED, HASH_WORDS), np.uint64)
    image = (image - bottom) / (top - bottom)
    image = np.clip(image - _background(image), 0.0, None)
    image /= max(float(image.max()), 1e-6)
    rows, cols = np.nonzero(image > _FOREGROUND)
    if len(rows) == 0:
        return np.zeros((ALIGNED, HASH_WORDS), np.uint64)
    centre = np.array([rows.mean(), cols.mean()])
    covariance = np.cov(np.stack([rows, cols]).astype(np.float64)) if len(rows) > 1 else np.eye(2)
    axis = np.linalg.eigh(covariance)[1][:, -1]  # (row, col) of the long axis; its sign is a flip
    side = max(image.shape)
    offsets = np.linspace(-side / 2, side / 2, _SIDE)
    blurred = ndimage.gaussian_filter(image, side / (_SIDE - 1) / 2)  # no aliasing on the grid
    down, across = np.meshgrid(offsets, offsets, indexing="ij")
    turned = (axis[0] * down - axis[1] * across, axis[1] * down + axis[0] * across)
    return np.stack([_signs(blurred, centre, grid) for grid in ((down, across), turned)])


def aligned_distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Bits apart of every pair of two sets of aligned hashes ((n, 2, 4) and (m, 2, 4)): the closer of the two
    hashes, each at its best flip; (n, m) int16."""
    best = None
    for k in range(first.shape[1]):
        counts = np.bitwise_count(first[:, None, k, :] ^ second[None, :, k, :]).astype(np.int16)
        a, b, c, d = np.moveaxis(counts, -1, 0)
        # Unflipped a + b + c + d; a half turn reverses b and c: a + d + 128 - b - c; left-right reverses b and
        # d: 128 + a - b + c - d; up-down reverses c and d: 128 + a + b - c - d.
        turned = a + d + _GROUP - np.abs(b + c - _GROUP)
        mirrored = 2 * _GROUP + a - d - np.abs(b - c)
        distance = np.minimum(turned, mirrored)
        best = distance if best is None else np.minimum(best, distance)
    return best


def legacy_distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Bits apart of every pair of two sets of perceptual hashes ((n, 4) and (m, 4)), unflipped; (n, m)."""
    return np.bitwise_count(first[:, None, :] ^ second[None, :, :]).sum(-1, dtype=np.int16)


def _signs(image: np.ndarray, centre: np.ndarray, grid) -> np.ndarray:
    """The hash of `image` sampled on `grid` (row and column offsets) about `centre`: four words of signs."""
    sampled = ndimage.map_coordinates(image, [grid[0] + centre[0], grid[1] + centre[1]], order=1, cval=0.0)
    low = dctn(sampled, norm="ortho")[:_LOW, :_LOW] > 0
    low[0, 0] = False  # the mean: no shape in it
    bits = np.concatenate([low[r::2, c::2].ravel() for r in (0, 1) for c in (0, 1)])
    return np.packbits(bits).view(">u8").astype(np.uint64)


def _working(image: np.ndarray) -> np.ndarray:
    """The image box-averaged (or linearly enlarged) to a longer side of _WORK pixels, its aspect kept."""
    scale = _WORK / max(image.shape)
    shape = tuple(max(1, round(n * scale)) for n in image.shape)
    if scale < 1:
        return _box_means(image, *shape, symmetric=True)
    return ndimage.zoom(
        image, (shape[0] / image.shape[0], shape[1] / image.shape[1]), order=1, grid_mode=True, mode="nearest"
    )


def _background(image: np.ndarray) -> float:
    """The background level of an image in [0, 1]: the median of the values at or below Otsu's threshold."""
    counts, edges = np.histogram(image, 64, (0.0, 1.0))
    share = counts / counts.sum()
    below = np.cumsum(share)
    middles = (edges[:-1] + edges[1:]) / 2
    mean_below = np.cumsum(share * middles)
    between = (mean_below[-1] * below - mean_below) ** 2 / np.maximum(below * (1 - below), 1e-12)
    threshold = middles[int(np.argmax(between))]
    return float(np.median(image[image <= threshold]))


def _box_means(image: np.ndarray, height: int, width: int, symmetric: bool = False) -> np.ndarray:
    """Means of height x width boxes; `symmetric`: box edges rounded half to even, so that a mirrored image (of an
    even side) has mirrored boxes (the perceptual hash keeps its truncated edges)."""
    edges = [np.linspace(0, n, k + 1) for n, k in zip(image.shape, (height, width))]
    rows, cols = (np.round(e).astype(int) if symmetric else e.astype(int) for e in edges)
    cumulative = np.pad(image, ((1, 0), (1, 0))).cumsum(0).cumsum(1)  # box means from an integral image
    area = np.maximum(np.diff(rows)[:, None] * np.diff(cols)[None, :], 1)
    sums = (
        cumulative[np.ix_(rows[1:], cols[1:])]
        - cumulative[np.ix_(rows[:-1], cols[1:])]
        - cumulative[np.ix_(rows[1:], cols[:-1])]
        + cumulative[np.ix_(rows[:-1], cols[:-1])]
    )
    return sums / area
