"""The image-folder layout: 8-bit axial T1c PNGs around the tumour, one folder per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from glioscope.synth.geometry import axial_slice
from glioscope.synth.plan import Record
from glioscope.synth.presets import CLASSES, Preset
from glioscope.synth.subject import Subject

SLICE_GAP_MM = 4.0  # between the PNG slices of one subject


def to_uint8(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Window [low, high] onto 0..255."""
    return np.clip((image - low) / max(high - low, 1e-6) * 255, 0, 255).round().astype(np.uint8)


def square(image: np.ndarray) -> np.ndarray:
    """Pad with zeros to a centred square."""
    side = max(image.shape)
    out = np.zeros((side, side), image.dtype)
    top, left = (side - image.shape[0]) // 2, (side - image.shape[1]) // 2
    out[top : top + image.shape[0], left : left + image.shape[1]] = image
    return out


class ImageFolderWriter:
    """`imagefolder/<class>/<patient>_<slice>.png`: T1c slices through the tumour (healthy: a comparable level)."""

    layout = "imagefolder"

    def __init__(self, root: Path, preset: Preset):
        self.root, self.preset = root / "imagefolder", preset

    def write(self, subject: Subject, record: Record) -> dict:
        """Write the subject's PNGs; return how many."""
        folder = self.root / record.grade
        folder.mkdir(parents=True, exist_ok=True)
        volume = subject.images["T1c"]
        low, high = np.percentile(volume[subject.head], [0.5, 99.5])
        step = max(1, int(round(SLICE_GAP_MM / abs(subject.affine[2, 2]))))
        n, files = self.preset.png_slices, 0
        z = subject.reference_mm[2]
        for offset in (np.arange(n) - n // 2) * step:
            pixels, k = axial_slice(volume, subject.affine, z, int(offset))
            image = Image.fromarray(square(to_uint8(pixels, low, high))).resize(
                (self.preset.png_size,) * 2, Image.BILINEAR
            )
            image.save(folder / f"{record.ids['imagefolder']}_{k:03d}.png")
            files += 1
        return {"class": record.grade, "files": files}

    def finish(self, rows: list[dict]) -> dict:
        """Return the layout's summary: images per class."""
        counts = {c: sum(row["files"] for row in rows if row["class"] == c) for c in CLASSES}
        return {"folder": "imagefolder", "images": counts, "files": sum(counts.values())}
