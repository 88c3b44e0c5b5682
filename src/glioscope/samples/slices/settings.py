"""What a 2D method asks of its slices (SliceSettings), and the columns of the slice table."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Annotated, Literal

from glioscope import defaults
from glioscope.errors import InputError
from glioscope.io import limits
from glioscope.io.sequences import normalise_sequence
from glioscope.util import schema
from glioscope.util.schema import Range, at_least

# Bump when the cached arrays change meaning: old cache folders are then ignored.
# 2: stacked sequences on different grids are resampled onto the first one's (were skipped, or
#    concatenated index by index when their shapes happened to agree).
# 3: entries count the slices that selection "tumour" left out.
CACHE_VERSION = 3
CHANNEL_MODES = ("stack3", "single", "native")
# Channels of a slice in each mode ("native": a file's own, counted as three, as kaggle_3m's RGB TIFs).
_MODE_CHANNELS = {"stack3": 3, "single": 1, "native": 3}

_default = defaults.of("data.slices")


@dataclass(frozen=True)
class SliceSettings:
    """How slices are chosen, scaled, cropped and resized; `key()` names their cache folder.

    Defaults: base.yaml's `data.slices`.

    selection: "all" slices of each item, the "middle" `middle_fraction` of them, one
        "representative" slice per patient (largest tumour area; the middle slice without a mask), or
        the "tumour" slices: those whose mask covers at least `min_tumour_area` pixels (at the source's
        resolution), at most `tumour_slices` per patient (the largest first; None = all). "tumour" needs
        a mask for every item; a patient left with no slice is skipped with the reason.
    vote: how a patient's probability is made from its slices': their "mean", or their mean weighted by
        each slice's "tumour_area" (a patient whose slices all have none: the plain mean).
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
    context: 2.5D, k >= 0: each slice carries its k neighbours below and above as extra channels, so a
        slice has C*(2k+1) channels, ordered per channel: [c0 at z-k .. z+k, c1 at z-k .. z+k, ...].
        At an item's edge the nearest existing slice is repeated (edge padding); a 2D image alone
        (no slice_index, or no other slice of its study) repeats itself. Selection, the foreground
        check, tumour area and the roi_crop box are the centre slice's; the neighbours are scaled with
        the centre item's range, cropped with its box and resized alike. 0: plain 2D slices.

    A size whose slice (channels x size x size, float32) is over the input limits (glioscope.io.limits)
    is a SettingError naming data.slices.size.
    """

    selection: Literal["all", "middle", "representative", "tumour"] = _default("selection")
    middle_fraction: Annotated[float, Range(0.0, 1.0, low_open=True)] = _default("middle_fraction")
    min_tumour_area: Annotated[int, at_least(1)] = _default("min_tumour_area")
    tumour_slices: Annotated[int, at_least(1)] | None = _default("tumour_slices")
    vote: Literal["mean", "tumour_area"] = _default("vote")
    size: Annotated[int, at_least(8)] = _default("size")
    scaling: Literal["minmax", "percentile", "none"] = _default("scaling")
    percentiles: tuple[float, float] = _default("percentiles")
    channels: str | tuple[str, ...] = _default("channels")
    roi_crop: bool = _default("roi_crop")
    roi_margin: Annotated[float, at_least(0.0)] = _default("roi_margin")
    axis: Literal["axial", "sagittal", "coronal"] = _default("axis")
    min_foreground: Annotated[float, Range(0.0, 1.0, high_open=True)] = _default("min_foreground")
    context: Annotated[int, at_least(0)] = _default("context")

    def __post_init__(self):
        schema.check(self, "slice settings")
        if isinstance(self.channels, str) and self.channels not in CHANNEL_MODES:
            object.__setattr__(self, "channels", (self.channels,))  # one sequence, e.g. "T1c" of a kaggle_3m TIF
        if isinstance(self.channels, tuple):
            sequences = tuple(normalise_sequence(s) for s in self.channels)
            if not sequences or "unknown" in sequences:
                modes = ", ".join(CHANNEL_MODES)
                raise InputError(
                    None, f"channels {self.channels!r}: choose {modes} or sequences such as T1, T1c, FLAIR"
                )
            object.__setattr__(self, "channels", sequences)
        low, high = self.percentiles
        _check(0 <= low < high <= 100, f"percentiles {self.percentiles} must satisfy 0 <= low < high <= 100")
        shape = self.sample_shape()
        too_large = limits.current().problem(f"a slice of {limits.dims(shape)}", limits.count(shape))
        if too_large:
            raise schema.SettingError("data.slices.size", f"got {self.size}: {too_large}")

    def sample_shape(self) -> tuple[int, int, int]:
        """(channels, size, size) of one slice as the model receives it."""
        channels = len(self.channels) if isinstance(self.channels, tuple) else _MODE_CHANNELS[self.channels]
        return channels * self.depth, self.size, self.size

    @property
    def depth(self) -> int:
        """Slices per channel of a sample: 2 * context + 1 (1 for plain 2D slices)."""
        return 2 * self.context + 1

    @property
    def stacked(self) -> tuple[str, ...] | None:
        """The sequences stacked as channels, or None for a channel mode."""
        return self.channels if isinstance(self.channels, tuple) else None

    def key(self) -> str:
        """Stable hash of everything that changes the cached arrays."""
        fields = asdict(self)
        # stack3 repeats the single grey channel when the set is assembled: both share a cache.
        fields["channels"] = "single" if self.channels == "stack3" else fields["channels"]
        del fields["vote"], fields["tumour_slices"]  # applied to the decoded slices, not cached
        if not self.context:  # plain 2D slices keep the key (and the cache) they had before context existed
            del fields["context"]
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
    "series_id",  # the DICOM SeriesInstanceUID(s) of the item ('' for other formats)
    "label",
    "sequence",
    "slice_index",  # index along the cut axis (or the source's own slice number for 2D images)
    "tumour_area",  # mask pixels in the slice at its native resolution; 0 without a mask
    "crop",  # "row0,col0,row1,col1" of the ROI crop in the displayed slice ('' without roi_crop)
    "source_split",
    "source_path",
]
