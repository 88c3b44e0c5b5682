"""2D augmentation: the AutoAugment paper's fixed SVHN AutoAugment expansion, brightness on any channel count."""

from __future__ import annotations

import torch
from torchvision.transforms import AutoAugmentPolicy, v2

from glioscope.augment.images import build_train_transform
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


def test_batch_affine_identity_flip_and_per_image_parameters():
    from glioscope.augment.batch import BatchRandomAffine

    images = torch.rand(4, 1, 16, 16)
    assert torch.allclose(BatchRandomAffine()(images), images, atol=1e-6)
    flipped = BatchRandomAffine(hflip=1.0)(images)
    assert torch.allclose(flipped, images.flip(-1), atol=1e-6)
    torch.manual_seed(0)
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    bar = ((x - 15.5).abs() < 3).float()  # a vertical bar through the centre
    same = bar.expand(6, 1, 32, 32).contiguous()
    rotated = BatchRandomAffine(degrees=10)(same)
    assert not torch.allclose(rotated[0], rotated[1])  # each image its own angle
    assert torch.allclose(rotated[:, :, 15:17, :], same[:, :, 15:17, :], atol=0.3)  # the centre barely moves
    assert (rotated[:, :, :2, :] - same[:, :, :2, :]).abs().amax() > 0.3  # the ends of the bar do


def test_batch_prep_repeats_grey_and_normalises():
    from glioscope.augment.images import normalisation
    from glioscope.augment.prep import BatchPrep

    grey = torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)
    out = BatchPrep(normalisation("imagenet", 3), channels=3)(grey)
    assert out.shape == (2, 3, 8, 8)
    assert torch.allclose(out[:, 0], torch.full((2, 8, 8), (1 - 0.485) / 0.229))
    pairs = torch.zeros((2, 2, 1, 8, 8), dtype=torch.uint8)  # SDL batches: (batch, members, C, H, W)
    assert BatchPrep(channels=3)(pairs).shape == (2, 2, 3, 8, 8)


def test_brightness_works_on_four_channels_as_colorjitter_does_on_three():
    torch.manual_seed(0)
    four = torch.randint(0, 256, (4, 16, 16), dtype=torch.uint8)
    transform = build_train_transform({"brightness": [0.8, 1.2]})
    out = transform(four)
    assert out.shape == four.shape and out.dtype == torch.uint8
    ratio = out.float().sum() / four.float().sum()
    assert 0.78 < ratio < 1.22 and not torch.equal(out, four)
    fixed = build_train_transform({"brightness": [1.1, 1.1]})
    three = four[:3]
    assert torch.equal(fixed(three), v2.ColorJitter(brightness=(1.1, 1.1))(three))
