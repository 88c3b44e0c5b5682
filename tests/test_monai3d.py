"""MONAI's 3D ResNet-10 (the RSNA-MICCAI 2021 winner's network): MedicalNet weights from a file, its recipe."""

from __future__ import annotations

import pytest
import torch

from glioscope.errors import GlioscopeError
from glioscope.models.weights import WeightsUnavailable
from glioscope.evaluate.gradcam import default_target_layer, grad_cam
from glioscope.models import create_model
from glioscope.recipe import load_recipe

pytest.importorskip("monai")


def medicalnet_checkpoint(path):
    """A file laid out as MedicalNet's: a DataParallel state dict, one input channel, a segmentation head."""
    from monai.networks.nets import resnet10

    torch.manual_seed(1)
    net = resnet10(spatial_dims=3, n_input_channels=1, num_classes=2, shortcut_type="B", bias_downsample=False)
    state = {f"module.{k}": v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    state["module.conv_seg.0.weight"] = torch.zeros(32, 512, 3, 3, 3)
    torch.save({"state_dict": state, "epoch": 200}, path)
    return net


def test_medicalnet_weights_load_and_the_stem_is_adapted_to_two_channels(tmp_path):
    reference = medicalnet_checkpoint(tmp_path / "resnet_10.pth")
    model = create_model("resnet10_3d", num_classes=2, in_chans=2, weights=str(tmp_path / "resnet_10.pth")).eval()
    own, ref = model.backbone.state_dict(), reference.state_dict()
    for key in ref:
        if key.startswith("fc.") or key == "conv1.weight":
            continue
        assert torch.equal(own[key], ref[key]), key
    volume = torch.rand(1, 1, 16, 24, 20)
    with torch.no_grad():  # equal channels give the one-channel network's first feature maps
        one = reference.conv1(volume)
        two = model.backbone.conv1(volume.repeat(1, 2, 1, 1, 1))
    assert torch.allclose(one, two, atol=1e-5)


def test_medicalnet_by_name_is_read_from_the_torch_cache_only(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsUnavailable, match="glioscope weights fetch medicalnet --model resnet10_3d"):
        create_model("resnet10_3d", num_classes=2, in_chans=2, weights="medicalnet")
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "resnet_10_23dataset.pth"
    cached.parent.mkdir(parents=True)
    reference = medicalnet_checkpoint(cached)
    model = create_model("resnet10_3d", num_classes=2, in_chans=2, weights="medicalnet")
    assert torch.equal(model.backbone.layer4[0].conv2.weight, reference.layer4[0].conv2.weight)


def test_named_weights_are_refused_and_an_unrelated_file_is_an_error(tmp_path):
    with pytest.raises(GlioscopeError, match="has no kinetics weights"):
        create_model("resnet10_3d", num_classes=2, in_chans=2, weights="kinetics")
    torch.save({"something.else": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(GlioscopeError, match="no tensor matches"):
        create_model("resnet10_3d", num_classes=2, in_chans=2, weights=str(tmp_path / "other.pt"))


def test_forward_and_grad_cam_on_a_volume():
    torch.manual_seed(0)
    model = create_model("resnet10_3d", num_classes=2, in_chans=2)
    assert model(torch.rand(2, 2, 16, 24, 20)).shape == (2, 2)
    assert default_target_layer(model) is model.backbone.layer4[-1].conv2
    cam = grad_cam(model.eval(), torch.rand(1, 2, 16, 24, 20))
    assert cam.shape == (1, 16, 24, 20) and cam.max() > 0


def test_rsna_r10_recipe():
    recipe = load_recipe("rsna-r10")
    assert recipe.model.name == "resnet10_3d" and recipe.data.kind == "volumes"
    assert recipe.data.volumes.channels == ("FLAIR", "T1c") and recipe.task.classes == ("0", "1")
