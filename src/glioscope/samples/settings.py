"""What a recipe's `data` section asks for (defaults: base.yaml): which rows, what kind of samples, how made."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from glioscope import defaults
from glioscope.samples.slices.settings import SliceSettings
from glioscope.samples.volumes.settings import VolumeSettings
from glioscope.util import schema

_default = defaults.of("data")


class CohortData:
    """What the `data` section of every kind of method has: `select` (the cohort rows used) and `cache` (where
    what is decoded or computed from them is kept)."""

    select: Mapping[str, str | tuple[str, ...]]
    cache: str | None

    def selection(self) -> dict[str, list[str]]:
        """data.select as glioscope.cohort.select takes it: every value a list."""
        return {k: list(v) if isinstance(v, tuple) else [v] for k, v in self.select.items()}

    def cache_dir(self) -> Path:
        """data.cache, else $GLIOSCOPE_CACHE, else ~/.cache/glioscope (each kind of data in its own subfolder)."""
        return Path(self.cache or os.environ.get("GLIOSCOPE_CACHE") or Path.home() / ".cache" / "glioscope")


@dataclass(frozen=True)
class DataSettings(CohortData):
    """select: cohort rows to use ({column: value or [values]}); cache: folder of decoded samples (None:
    $GLIOSCOPE_CACHE or ~/.cache/glioscope); kind: slices (2D models) or volumes (3D models);
    normalize: after augmentation, "model" (the model's own, see glioscope.models), "imagenet" or "none";
    slices, volumes: how each kind is made."""

    select: Mapping[str, str | tuple[str, ...]] = _default("select")
    cache: str | None = _default("cache")
    kind: Literal["slices", "volumes"] = _default("kind")
    normalize: Literal["model", "imagenet", "none"] = _default("normalize")
    volumes: VolumeSettings = _default("volumes")
    slices: SliceSettings = _default("slices")

    def __post_init__(self):
        schema.check(self, "data")
        if self.kind == "volumes" and self.normalize == "imagenet":
            raise schema.SettingError(
                "data.normalize",
                "got 'imagenet', expected model or none: volumes are scaled to [0, 1] by preprocessing",
            )

    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample as the model receives it: (C, size, size) slices or (C, D, H, W) volumes."""
        return self.volumes.sample_shape() if self.kind == "volumes" else self.slices.sample_shape()

    @property
    def slice_context(self) -> int:
        """2.5D: the neighbouring slices each side a 2D sample carries (data.slices.context); 0 for volumes."""
        return self.slices.context if self.kind == "slices" else 0
