"""The AutoAugment paper's fixed AutoAugment expansion of the SVHN policy.

Every SVHN sub-policy (op1, op2) is split into op1, op2 and op1+op2, the
probabilities are ignored and duplicates dropped. Duplicates are judged on the
published table, where every op carries a magnitude index, also the ops that do
not use one (Invert, Equalize, AutoContrast): this is how the count of 56 variants
(57-fold data with the original) arises. torchvision's copy of the policy stores
None for those unused magnitudes, so the table below restores them; a test checks
that it agrees with torchvision everywhere else. Because those magnitudes change
nothing, 11 of the 56 variants give images identical to another variant:
`svhn_variants(distinct_images=True)` returns the 45 distinct ones.

The ops themselves are torchvision's (v2.AutoAugment), applied with probability 1
and a positive sign.
"""

from __future__ import annotations

import torch
from torchvision.transforms import AutoAugmentPolicy, InterpolationMode, v2

# (op1, p1, magnitude index 1, op2, p2, magnitude index 2), as published with the policy.
SVHN_TABLE = [
    ("ShearX", 0.9, 4, "Invert", 0.2, 3),
    ("ShearY", 0.9, 8, "Invert", 0.7, 5),
    ("Equalize", 0.6, 5, "Solarize", 0.6, 6),
    ("Invert", 0.9, 3, "Equalize", 0.6, 3),
    ("Equalize", 0.6, 1, "Rotate", 0.9, 3),
    ("ShearX", 0.9, 4, "AutoContrast", 0.8, 3),
    ("ShearY", 0.9, 8, "Invert", 0.4, 5),
    ("ShearY", 0.9, 5, "Solarize", 0.2, 6),
    ("Invert", 0.9, 6, "AutoContrast", 0.8, 1),
    ("Equalize", 0.6, 3, "Rotate", 0.9, 3),
    ("ShearX", 0.9, 4, "Solarize", 0.3, 3),
    ("ShearY", 0.8, 8, "Invert", 0.7, 4),
    ("Equalize", 0.9, 5, "TranslateY", 0.6, 6),
    ("Invert", 0.9, 4, "Equalize", 0.6, 7),
    ("Contrast", 0.3, 3, "Rotate", 0.8, 4),
    ("Invert", 0.8, 5, "TranslateY", 0.0, 2),
    ("ShearY", 0.7, 6, "Solarize", 0.4, 8),
    ("Invert", 0.6, 4, "Rotate", 0.8, 4),
    ("ShearY", 0.3, 7, "TranslateX", 0.9, 3),
    ("ShearX", 0.1, 6, "Invert", 0.6, 5),
    ("Solarize", 0.7, 2, "TranslateY", 0.6, 7),
    ("ShearY", 0.8, 4, "Invert", 0.8, 8),
    ("ShearX", 0.7, 9, "TranslateY", 0.8, 3),
    ("ShearY", 0.8, 5, "AutoContrast", 0.7, 3),
    ("ShearX", 0.7, 2, "Invert", 0.1, 5),
]
MAGNITUDE_FREE = {"Invert", "Equalize", "AutoContrast"}

Op = tuple[str, int]  # (op name, magnitude index)


def svhn_variants(distinct_images: bool = False) -> list[tuple[Op, ...]]:
    """The fixed variants, in table order: 56 (or 45 that differ as images)."""
    variants: list[tuple[Op, ...]] = []
    seen: set = set()
    for op1, _, m1, op2, _, m2 in SVHN_TABLE:
        for variant in (((op1, m1),), ((op2, m2),), ((op1, m1), (op2, m2))):
            key = tuple((op, None if op in MAGNITUDE_FREE else m) for op, m in variant) if distinct_images else variant
            if key not in seen:
                seen.add(key)
                variants.append(variant)
    return variants


class FixedSubPolicy(v2.AutoAugment):
    """Apply a fixed sequence of AutoAugment ops, always, with positive magnitudes."""

    def __init__(self, ops: tuple[Op, ...], interpolation=InterpolationMode.BILINEAR, fill=0):
        super().__init__(AutoAugmentPolicy.SVHN, interpolation=interpolation, fill=fill)
        self.ops = tuple(ops)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        for name, index in self.ops:
            magnitudes_fn, _signed = self._AUGMENTATION_SPACE[name]
            magnitudes = magnitudes_fn(10, height, width)
            magnitude = 0.0 if magnitudes is None or magnitudes.ndim == 0 else float(magnitudes[index])
            image = self._apply_image_or_video_transform(image, name, magnitude, self.interpolation, self._fill)
        return image

    def extra_repr(self) -> str:
        return " + ".join(f"{n}({m})" for n, m in self.ops)


def expansion(distinct_images: bool = False) -> list[FixedSubPolicy]:
    """The transforms of the offline expansion (the original image is not included)."""
    return [FixedSubPolicy(ops) for ops in svhn_variants(distinct_images)]


def random_policy() -> v2.AutoAugment:
    """The usual stochastic SVHN AutoAugment, for on-the-fly augmentation."""
    return v2.AutoAugment(AutoAugmentPolicy.SVHN)
