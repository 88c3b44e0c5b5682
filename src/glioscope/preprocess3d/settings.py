"""What a 3D method asks of its volumes (VolumeSettings) and what it gets back (VolumeSet)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.io.sequences import normalise_sequence

SKULL_STRIPS = ("auto", "mni", "none")
# Bump when the cached arrays change meaning (pipeline, registration, axis order): old cache folders are then ignored.
CACHE_VERSION = 1


@dataclass(frozen=True)
class VolumeSettings:
    """How each patient's study becomes one (C, D, H, W) volume; `key()` names its cache folder.

    channels: sequences stacked as channels, taken from one study's co-registered volumes
        (BraTS: T1, T1c, T2, FLAIR share a grid; others are resampled onto the first channel's grid).
    fallback: (wanted, substitute) pairs used when a study lacks a wanted sequence. The default
        (("T1c", "T1"),) lets a T1c model take a healthy IXI subject's T1, as seed 002 does (BraTS
        T1ce vs IXI T1); the table's `fallback` column says where it was used. A dict is accepted.
    skull_strip: "none", "mni" (every volume: affine registration of nilearn's MNI152 template and
        its brain mask, see `skullstrip`) or "auto" (strip the volumes that still have a skull: IXI
        always, others when their foreground is head-sized, see `skullstrip.looks_stripped`; BraTS
        volumes, stripped at the source, come out brain-sized and are left as they are).
    percentiles: each channel is clipped at these percentiles of its brain voxels (head voxels when
        the volume keeps its skull) and scaled to [0, 1].
    spacing: isotropic output voxel size in mm (seed 002: 2 mm; the quick recipes use 4 mm).
    shape: output (D, H, W) = (inferior-superior, anterior-posterior, right-left) voxels, cropped
        or zero-padded around the centre of the brain's bounding box.
    """

    channels: tuple[str, ...] = ("T1c",)
    fallback: tuple[tuple[str, str], ...] = (("T1c", "T1"),)
    skull_strip: str = "auto"
    percentiles: tuple[float, float] = (0.5, 99.5)
    spacing: float = 2.0
    shape: tuple[int, int, int] = (96, 112, 96)

    def __post_init__(self):
        channels = (self.channels,) if isinstance(self.channels, str) else tuple(self.channels)
        channels = tuple(_sequence(s, "channels") for s in channels)
        _check(len(channels) > 0, "channels must name at least one sequence, e.g. ('T1c',)")
        _check(len(set(channels)) == len(channels), f"channels {channels} name a sequence twice")
        object.__setattr__(self, "channels", channels)
        pairs = self.fallback.items() if isinstance(self.fallback, dict) else (self.fallback or ())
        try:
            fallback = tuple((_sequence(a, "fallback"), _sequence(b, "fallback")) for a, b in pairs)
        except (TypeError, ValueError):
            raise InputError(
                None, f"volume settings: fallback {self.fallback!r}: give (wanted, substitute) pairs"
            ) from None
        object.__setattr__(self, "fallback", fallback)
        object.__setattr__(self, "percentiles", tuple(float(p) for p in self.percentiles))
        object.__setattr__(self, "spacing", float(self.spacing))
        shape = tuple(self.shape) if not isinstance(self.shape, (int, float)) else (self.shape,) * 3
        _check(
            len(shape) == 3 and all(int(n) == n and n >= 8 for n in shape), f"shape {self.shape}: three integers >= 8"
        )
        object.__setattr__(self, "shape", tuple(int(n) for n in shape))
        _check(
            self.skull_strip in SKULL_STRIPS,
            f"skull_strip {self.skull_strip!r}: choose one of {', '.join(SKULL_STRIPS)}",
        )
        low, high = self.percentiles
        _check(0 <= low < high <= 100, f"percentiles {self.percentiles} must satisfy 0 <= low < high <= 100")
        _check(0.25 <= self.spacing <= 16, f"spacing {self.spacing} mm must be between 0.25 and 16")

    def substitutes(self, sequence: str) -> list[str]:
        """The sequences that may stand in for `sequence`, in the order given."""
        return [substitute for wanted, substitute in self.fallback if wanted == sequence]

    def key(self) -> str:
        """Stable hash of everything that changes the cached arrays."""
        fields = asdict(self)
        fields["version"] = CACHE_VERSION
        text = json.dumps(fields, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sequence(name, what: str) -> str:
    sequence = normalise_sequence(str(name))
    _check(sequence != "unknown", f"{what}: {name!r} is not a sequence; use T1, T1c, T2, FLAIR or PD")
    return sequence


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(None, f"volume settings: {message}")


def array_affine(spacing: float) -> np.ndarray:
    """The RAS affine of a (D, H, W) output array: D runs inferior to superior, H anterior to posterior,
    W the patient's right to left (an axial slice volume[d] displays radiologically, like the 2D slices)."""
    return np.array(
        [[0.0, 0.0, -spacing, 0.0], [0.0, -spacing, 0.0, 0.0], [spacing, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    )


TABLE_COLUMNS = [
    "volume_id",  # the patient id, or "<patient>/<study>" for a patient with several studies
    "patient_id",
    "study_id",
    "label",
    "grade",
    "mgmt",
    "item_ids",  # the cohort rows stacked as channels, joined by '+' in channel order
    "sequences",  # the sequence of each channel as used, joined by '+' (T1 where T1c fell back to it)
    "fallback",  # e.g. "T1c<-T1" when a substitute was used, else ''
    "source_paths",  # each channel's file or series folder, joined by ' + '
    "source_format",
    "source_split",
    "mask_path",  # the tumour mask of the source, when it has one (not resampled)
    "skull_stripped",  # True when the volume has no skull: stripped at the source or by registration
    "skull_strip",  # what was done: "source" (already stripped), "mni" (registered here), "none" (skull kept)
]


@dataclass
class VolumeSet:
    """Volumes ready for a 3D model and one table row per volume.

    volumes: float16 (N, C, D, H, W) in [0, 1]; C follows settings.channels; D runs inferior to
        superior (axial slices), H anterior to posterior, W the patient's right to left, so
        `volumes[n, c, d]` shows an axial slice in radiological convention (see `array_affine`).
    """

    volumes: np.ndarray
    table: pd.DataFrame
    settings: VolumeSettings
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.volumes)
