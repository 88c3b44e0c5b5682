"""What a recipe's `augment` section asks for (defaults: base.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from glioscope import defaults
from glioscope.util import schema
from glioscope.util.schema import Range, at_least, fraction

_default = defaults.of("augment")
_KERNEL = Annotated[int, at_least(1)]


@dataclass(frozen=True)
class AugmentSettings:
    """Random augmentation while training: 2D per image and per batch, 3D per volume (TorchIO).

    rotation: degrees, +-; zoom: a scale range; shift: a fraction of the side; hflip, vflip:
    probabilities; brightness: a factor range; gaussian_blur: kernel size(s), one drawn per image;
    autoaugment: "svhn", the random AutoAugment SVHN policy; expand: "svhn", the AutoAugment paper's fixed
    56-variant expansion; volume: the 3D preset, none | light | heavy.
    """

    rotation: Annotated[float, Range(0.0, 180.0)] = _default("rotation")
    gaussian_blur: _KERNEL | tuple[_KERNEL, ...] | None = _default("gaussian_blur")
    hflip: Annotated[float, fraction()] = _default("hflip")
    vflip: Annotated[float, fraction()] = _default("vflip")
    zoom: tuple[Annotated[float, Range(0.0, low_open=True)], Annotated[float, Range(0.0, low_open=True)]] | None = (
        _default("zoom")
    )
    shift: Annotated[float, fraction(open_high=True)] = _default("shift")
    brightness: tuple[Annotated[float, at_least(0.0)], Annotated[float, at_least(0.0)]] | None = _default("brightness")
    autoaugment: Literal["svhn"] | None = _default("autoaugment")
    expand: Literal["svhn"] | None = _default("expand")
    volume: Literal["none", "light", "heavy"] = _default("volume")

    def __post_init__(self):
        schema.check(self, "augment")
        for name in ("zoom", "brightness"):
            pair = getattr(self, name)
            if pair is not None and pair[0] > pair[1]:
                raise schema.SettingError(f"augment.{name}", f"got {list(pair)}, expected [low, high] with low <= high")
        blur = self.gaussian_blur
        for size in blur if isinstance(blur, tuple) else () if blur is None else (blur,):
            if size % 2 == 0:
                raise schema.SettingError("augment.gaussian_blur", f"got {size}, expected odd kernel sizes")
