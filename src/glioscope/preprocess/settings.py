"""What a 2D method asks of its slices (SliceSettings) and what it gets back (SliceSet)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.io.sequences import normalise_sequence

SELECTIONS = ("all", "middle", "representative")
SCALINGS = ("minmax", "percentile", "none")
CHANNEL_MODES = ("stack3", "single", "native")
AXES = ("axial", "sagittal", "coronal")
# Bump when the cached arrays change meaning: old cache folders are then ignored.
# 2: stacked sequences on different grids are resampled onto the first one's (were skipped, or
#    concatenated index by index when their shapes happened to agree).
CACHE_VERSION = 2


@dataclass(frozen=True)
class SliceSettings:
    """How slices are chosen, scaled, cropped and resized; `key()` names their cache folder.

    selection: "all" slices of each item, the "middle" `middle_fraction` of them, or one
        "representative" slice per patient (largest tumour area; the middle slice without a mask).
    scaling: per item (volume, series or image) and channel: "minmax", "percentile" (clip to
        `percentiles` of the non-zero voxels, then min-max), or "none" (8-bit images kept as they
        are; anything else is min-max scaled). Output is always uint8 0..255.
    channels: "stack3" (grey repeated to 3), "single" (grey), "native" (the file's channels), or a
        tuple of sequences stacked as channels, e.g. ("T1", "FLAIR", "T1c"): one item per study,
        on the grid of the FIRST sequence named (its plane, matrix and slices); the others are
        resampled onto it through patient coordinates unless co-registered (see `resample`).
    roi_crop: crop each slice to its mask's bounding box plus `roi_margin` (a fraction of the box side).
    axis: the plane NIfTI volumes are cut in; DICOM series are cut in their acquisition plane.
    min_foreground: drop slices ("all", "middle") whose bright-pixel fraction is below this.
    """

    selection: str = "all"
    middle_fraction: float = 0.2
    size: int = 128
    scaling: str = "minmax"
    percentiles: tuple[float, float] = (0.5, 99.5)
    channels: str | tuple[str, ...] = "stack3"
    roi_crop: bool = False
    roi_margin: float = 0.1
    axis: str = "axial"
    min_foreground: float = 0.0

    def __post_init__(self):
        if isinstance(self.channels, str) and self.channels not in CHANNEL_MODES:
            object.__setattr__(self, "channels", (self.channels,))  # one sequence, e.g. "T1c" of a kaggle_3m TIF
        if isinstance(self.channels, (list, tuple)):
            sequences = tuple(normalise_sequence(s) for s in self.channels)
            if not sequences or "unknown" in sequences:
                modes = ", ".join(CHANNEL_MODES)
                raise InputError(None, f"channels {self.channels!r}: choose {modes} or sequences such as T1, T1c, FLAIR")
            object.__setattr__(self, "channels", sequences)
        object.__setattr__(self, "percentiles", tuple(float(p) for p in self.percentiles))
        _check(self.selection in SELECTIONS, f"selection {self.selection!r}: choose one of {', '.join(SELECTIONS)}")
        _check(self.scaling in SCALINGS, f"scaling {self.scaling!r}: choose one of {', '.join(SCALINGS)}")
        _check(self.axis in AXES, f"axis {self.axis!r}: choose one of {', '.join(AXES)}")
        _check(0 < self.middle_fraction <= 1, f"middle_fraction {self.middle_fraction} must be in (0, 1]")
        _check(int(self.size) == self.size and self.size >= 8, f"size {self.size} must be an integer >= 8")
        low, high = self.percentiles
        _check(0 <= low < high <= 100, f"percentiles {self.percentiles} must satisfy 0 <= low < high <= 100")
        _check(self.roi_margin >= 0, f"roi_margin {self.roi_margin} must be >= 0")
        _check(0 <= self.min_foreground < 1, f"min_foreground {self.min_foreground} must be in [0, 1)")

    @property
    def stacked(self) -> tuple[str, ...] | None:
        """The sequences stacked as channels, or None for a channel mode."""
        return self.channels if isinstance(self.channels, tuple) else None

    def key(self) -> str:
        """Stable hash of everything that changes the cached arrays."""
        fields = asdict(self)
        # stack3 repeats the single grey channel when the set is assembled: both share a cache.
        fields["channels"] = "single" if self.channels == "stack3" else fields["channels"]
        fields["version"] = CACHE_VERSION
        text = json.dumps(fields, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(None, f"slice settings: {message}")


TABLE_COLUMNS = [
    "slice_id",  # "<item_id>:<slice_index>"
    "item_id",
    "patient_id",
    "study_id",
    "label",
    "sequence",
    "slice_index",  # index along the cut axis (or the source's own slice number for 2D images)
    "tumour_area",  # mask pixels in the slice at its native resolution; 0 without a mask
    "crop",  # "row0,col0,row1,col1" of the ROI crop in the displayed slice ('' without roi_crop)
    "source_split",
    "source_path",
]


@dataclass
class SliceSet:
    """Slices ready for a 2D model: uint8 (N, C, H, W) images and one table row per slice."""

    images: np.ndarray
    table: pd.DataFrame
    settings: SliceSettings
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)
