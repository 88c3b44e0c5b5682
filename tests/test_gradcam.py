"""Grad-CAM: maps of the input size in [0, 1] that point at the region driving the logit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from glioscope.evaluate.gradcam import default_target_layer, grad_cam, gradcam_panels, overlay
from glioscope.models.heads import Classifier
from glioscope.models.sdl import SynergicNet


def tiny_classifier(conv=nn.Conv2d, pool=nn.AdaptiveAvgPool2d, classes=3) -> Classifier:
    torch.manual_seed(0)
    backbone = nn.Sequential(
        conv(1, 4, 3, padding=1),
        nn.ReLU(inplace=True),
        conv(4, 6, 3, stride=2, padding=1),
        nn.ReLU(inplace=True),
        pool(1),
        nn.Flatten(1),
    )
    return Classifier(backbone, nn.Identity(), 6, classes)


def two_region_classifier(conv=nn.Conv2d, pool=nn.AdaptiveAvgPool2d) -> Classifier:
    """Class 0 is driven by bright areas, class 1 by dark ones (channels +x and -x, stride 2)."""
    layer = conv(1, 2, 2, stride=2, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0].fill_(1.0)
        layer.weight[1].fill_(-1.0)
    model = Classifier(nn.Sequential(layer, nn.ReLU(inplace=True), pool(1), nn.Flatten(1)), nn.Identity(), 2, 2)
    with torch.no_grad():
        model.fc.weight.copy_(torch.eye(2) * 10)
        model.fc.bias.zero_()
    return model


def test_2d_maps_have_input_size_and_unit_range():
    model = tiny_classifier()
    x = torch.randn(3, 1, 20, 24)
    cams = grad_cam(model, x, default_target_layer(model))
    assert cams.shape == (3, 20, 24)
    assert cams.min() >= 0 and cams.max() <= 1
    assert np.isclose(cams.reshape(3, -1).max(axis=1), 1).all() or (cams == 0).any()


def test_3d_maps_have_input_size_and_unit_range():
    model = tiny_classifier(nn.Conv3d, nn.AdaptiveAvgPool3d)
    x = torch.randn(2, 1, 10, 12, 14)
    cams = grad_cam(model, x, default_target_layer(model), class_index=1)
    assert cams.shape == (2, 10, 12, 14)
    assert cams.min() >= 0 and cams.max() <= 1


def test_default_target_layer_is_the_last_backbone_conv():
    model = tiny_classifier()
    assert default_target_layer(model) is model.backbone[2]
    sdl = SynergicNet([tiny_classifier(), tiny_classifier()])
    assert default_target_layer(sdl, member=1) is sdl.members[1].backbone[2]


def test_map_points_at_the_region_that_drives_each_class_2d():
    model = two_region_classifier()
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 2:6, 2:6] = 2.0  # bright: drives class 0, which wins
    x[0, 0, 10:14, 8:12] = -1.0  # dark: drives class 1
    bright = np.zeros((16, 16), bool)
    bright[2:6, 2:6] = True
    dark = np.zeros((16, 16), bool)
    dark[10:14, 8:12] = True
    predicted = grad_cam(model, x)[0]
    assert bright.ravel()[predicted.argmax()]
    assert predicted[dark].max() == 0
    second = grad_cam(model, x, class_index=1)[0]
    assert dark.ravel()[second.argmax()]
    assert second[bright].max() == 0


def test_map_points_at_the_region_that_drives_the_logit_3d():
    model = two_region_classifier(nn.Conv3d, nn.AdaptiveAvgPool3d)
    x = torch.zeros(1, 1, 8, 12, 16)
    x[0, 0, 2:4, 8:12, 0:4] = 2.0  # asymmetric in every axis: a swapped axis would miss it
    region = np.zeros((8, 12, 16), bool)
    region[2:4, 8:12, 0:4] = True
    cam = grad_cam(model, x)[0]
    assert cam.shape == (8, 12, 16)
    assert region.ravel()[cam.argmax()]
    assert cam[~region].mean() < 0.2


def test_sdl_member_and_frozen_weights():
    sdl = SynergicNet([two_region_classifier(), two_region_classifier()])
    for p in sdl.parameters():
        p.requires_grad_(False)
    x = torch.zeros(2, 1, 16, 16)
    x[:, 0, 8:12, 8:12] = 1.0
    cams = grad_cam(sdl, x, default_target_layer(sdl, member=1))
    assert cams.shape == (2, 16, 16)
    assert cams[:, 8:12, 8:12].max() == pytest.approx(1.0)


def test_overlay_and_panels_give_images():
    image = np.random.default_rng(0).normal(size=(16, 16))
    rgb = overlay(image, np.linspace(0, 1, 64).reshape(8, 8))
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    model = tiny_classifier()
    panels = gradcam_panels(
        model,
        torch.randn(4, 1, 16, 16),
        labels=[0, 1, 0, 2],
        class_names=["II", "III", "IV"],
        names=["P1", "P2", "P3", "P4"],
        per_class=2,
    )
    assert [title for title, _ in panels] == [
        "Grad-CAM, true class II",
        "Grad-CAM, true class III",
        "Grad-CAM, true class IV",
    ]
    assert all(png.startswith(b"\x89PNG") for _, png in panels)
    volume_model = tiny_classifier(nn.Conv3d, nn.AdaptiveAvgPool3d)
    ((title, png),) = gradcam_panels(volume_model, torch.randn(2, 1, 8, 10, 12))
    assert png.startswith(b"\x89PNG")
