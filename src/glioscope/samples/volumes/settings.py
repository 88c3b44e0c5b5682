"""What a 3D method asks of its volumes (VolumeSettings), the axes of its arrays, and the volume table's columns."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Annotated, Literal


from glioscope import defaults
from glioscope.errors import InputError
from glioscope.io import limits
from glioscope.io.sequences import normalise_sequence
from glioscope.samples.volumes import brain_nets
from glioscope.util import schema
from glioscope.util.schema import Range, at_least

# Bump when the cached arrays change meaning (pipeline, registration, axis order): old cache folders are then ignored.
CACHE_VERSION = 2  # 2: an entry's meta holds its grid's affine

_default = defaults.of("data.volumes")


@dataclass(frozen=True)
class VolumeSettings:
    """How each patient's study becomes one (C, D, H, W) volume; `key()` names its cache folder.

    channels: sequences stacked as channels, taken from one study's co-registered volumes
        (BraTS: T1, T1c, T2, FLAIR share a grid; others are resampled onto the first channel's grid).
    fallback: (wanted, substitute) pairs used when a study lacks a wanted sequence. The default
        (("T1c", "T1"),) lets a T1c model take a healthy IXI subject's T1, as the spatio-spatial paper does (BraTS
        T1ce vs IXI T1); the table's `fallback` column says where it was used. A dict is accepted.
    skull_strip: "none", "mni" (every volume: affine registration of nilearn's MNI152 template and
        its brain mask, see `skullstrip`), "hdbet", "hdbet-accurate" or "deepbet" (every volume: a
        brain-extraction network, an optional package, see `brain_nets`) or "auto" (strip the volumes
        that still have a skull, with HD-BET, else deepbet, else mni, whichever is installed first: IXI
        always, others when their foreground is head-sized, see `skullstrip.looks_stripped`; BraTS
        volumes, stripped at the source, come out brain-sized and are left as they are).
    percentiles: each channel is clipped at these percentiles of its brain voxels (head voxels when
        the volume keeps its skull) and scaled to [0, 1].
    spacing: isotropic output voxel size in mm (the spatio-spatial paper: 2 mm; the quick recipes use 4 mm).
    shape: output (D, H, W) = (inferior-superior, anterior-posterior, right-left) voxels, cropped
        or zero-padded around the centre of the brain's bounding box. A shape whose volume (channels x D x H x W,
        float32) is over the input limits (glioscope.io.limits) is a SettingError naming data.volumes.shape.

    Defaults: base.yaml's `data.volumes`.
    """

    channels: str | tuple[str, ...] = _default("channels")
    fallback: tuple[tuple[str, str], ...] | Mapping[str, str] | None = _default("fallback", metadata={"plain": dict})
    skull_strip: Literal["auto", "mni", "none", "hdbet", "hdbet-accurate", "deepbet"] = _default("skull_strip")
    percentiles: tuple[float, float] = _default("percentiles")
    spacing: Annotated[float, Range(0.25, 16.0)] = _default("spacing")
    shape: Annotated[int, at_least(8)] | tuple[Annotated[int, at_least(8)], ...] = _default("shape")

    def __post_init__(self):
        schema.check(self, "volume settings")
        channels = (self.channels,) if isinstance(self.channels, str) else self.channels
        channels = tuple(_sequence(s, "channels") for s in channels)
        _check(len(channels) > 0, "channels must name at least one sequence, e.g. ('T1c',)")
        _check(len(set(channels)) == len(channels), f"channels {channels} name a sequence twice")
        object.__setattr__(self, "channels", channels)
        pairs = self.fallback.items() if isinstance(self.fallback, Mapping) else (self.fallback or ())
        object.__setattr__(
            self, "fallback", tuple((_sequence(a, "fallback"), _sequence(b, "fallback")) for a, b in pairs)
        )
        shape = self.shape if isinstance(self.shape, tuple) else (self.shape,) * 3
        _check(len(shape) == 3, f"shape {self.shape}: three integers >= 8")
        object.__setattr__(self, "shape", shape)
        low, high = self.percentiles
        _check(0 <= low < high <= 100, f"percentiles {self.percentiles} must satisfy 0 <= low < high <= 100")
        sample = self.sample_shape()
        too_large = limits.current().problem(f"a volume of {limits.dims(sample)}", limits.count(sample))
        if too_large:
            raise schema.SettingError("data.volumes.shape", f"got {list(self.shape)}: {too_large}")

    def sample_shape(self) -> tuple[int, int, int, int]:
        """(channels, D, H, W) of one volume as the model receives it."""
        return (len(self.channels), *self.shape)

    def substitutes(self, sequence: str) -> list[str]:
        """The sequences that may stand in for `sequence`, in the order given."""
        return [substitute for wanted, substitute in self.fallback if wanted == sequence]

    def key(self) -> str:
        """Stable hash of everything that changes the cached arrays."""
        fields = asdict(self)
        fields["version"] = CACHE_VERSION
        tool = brain_nets.cache_tag(self.skull_strip)
        if tool:  # the network "auto" resolves to, and its version: another install is another cache
            fields["strip_tool"] = tool
        text = json.dumps(fields, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sequence(name, what: str) -> str:
    sequence = normalise_sequence(str(name))
    _check(sequence != "unknown", f"{what}: {name!r} is not a sequence; use T1, T1c, T2, FLAIR or PD")
    return sequence


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(None, f"volume settings: {message}")


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
    "skull_strip",  # what was done: "source" (already stripped), "mni", "hdbet", "hdbet-accurate", "deepbet"
    # (stripped here by that tool), "none" (skull kept)
]
