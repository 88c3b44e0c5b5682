"""Seed 004's fixed SVHN AutoAugment expansion."""

from __future__ import annotations

import torch
from torchvision.transforms import AutoAugmentPolicy, v2

from glioscope.augment.svhn import SVHN_TABLE, expansion, svhn_variants


def test_svhn_expansion_has_56_variants_45_distinct():
    assert len(svhn_variants()) == 56  # 57-fold data with the original image
    assert len(svhn_variants(distinct_images=True)) == 45
    assert len(set(svhn_variants())) == 56


def test_table_agrees_with_torchvision_policy():
    policy = v2.AutoAugment(AutoAugmentPolicy.SVHN)._get_policies(AutoAugmentPolicy.SVHN)
    assert len(policy) == len(SVHN_TABLE) == 25
    for (a, b), row in zip(policy, SVHN_TABLE):
        for (name, p, magnitude), (my_name, my_p, my_m) in zip((a, b), (row[:3], row[3:])):
            assert (name, p) == (my_name, my_p)
            assert magnitude is None or magnitude == my_m


def test_variants_are_deterministic_and_change_the_image():
    image = (torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    transforms = expansion()
    first = [t(image) for t in transforms]
    again = [t(image) for t in transforms]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(out.shape == image.shape for out in first)
    assert sum(not torch.equal(out, image) for out in first) >= 50
