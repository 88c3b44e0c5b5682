"""One protocol for 2D slices and 3D volumes; one function from logits to probabilities; the registry's entries."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from glioscope.augment.settings import AugmentSettings
from glioscope.models import model_entry
from glioscope.models.build import input_normalisation, reported_names
from glioscope.models.outputs import probabilities
from glioscope.models.spec import ModelSpec
from glioscope.samples.slices import SliceSet, SliceSettings
from glioscope.samples.volumes import VolumeSet, VolumeSettings
from glioscope.samples import SampleSet


def slice_set() -> SliceSet:
    """Two patients: p1 with a stacked study (items a+b) of 2 slices, p2 with one image."""
    images = np.zeros((3, 3, 16, 16), np.uint8)
    images[:, :, 4:8, 4:8] = [[[[50]]], [[[100]]], [[[200]]]]
    table = pd.DataFrame(
        {
            "slice_id": ["a+b:0", "a+b:1", "c:0"],
            "item_id": ["a+b", "a+b", "c"],
            "patient_id": ["p1", "p1", "p2"],
            "label": ["II", "II", "IV"],
            "slice_index": [0, 1, 0],
        }
    )
    return SliceSet(images, table, SliceSettings(size=16))


def volume_set() -> VolumeSet:
    volumes = np.random.default_rng(0).random((2, 1, 8, 10, 12)).astype(np.float16)
    table = pd.DataFrame(
        {"volume_id": ["p1", "p2"], "patient_id": ["p1", "p2"], "label": ["LGG", "HGG"], "sequences": ["T1c", "T1c"]}
    )
    return VolumeSet(volumes, table, VolumeSettings(spacing=4.0, shape=(8, 10, 12)))


def test_slices_and_volumes_answer_the_same_questions():
    items = pd.DataFrame({"item_id": ["a", "x"], "patient_id": ["p1", "p1"]})  # a partition's cohort rows
    for samples, names in ((slice_set(), ["II", "IV"]), (volume_set(), ["LGG", "HGG"])):
        assert isinstance(samples, SampleSet)
        targets = samples.targets(names)
        assert targets.tolist() == [0] * (len(samples) - 1) + [1]
        mask = samples.mask(items)
        assert mask.tolist() == [True] * (len(samples) - 1) + [False]  # p1's samples; a stacked one by its first row
        keys = samples.keys(mask)
        assert list(keys.columns) == ["slice_id", "item_id", "patient_id"] and set(keys["patient_id"]) == {"p1"}
        plain = samples.dataset(mask, targets)
        assert len(plain) == mask.sum() and int(plain[0][1]) == 0
        inputs = samples.inputs()
        assert inputs.dtype == torch.float32 and inputs.shape[:2] == (len(samples), samples.channels)
        assert samples.describe(0)["patient_id"] == "p1"


def test_slice_datasets_normalise_and_augment_as_asked():
    samples = slice_set()
    raw = samples.inputs("none")
    assert torch.allclose(raw[2, :, 5, 5], torch.full((3,), 200 / 255))
    normalised = samples.inputs("imagenet")
    assert torch.allclose(normalised[2, 0, 5, 5], torch.tensor((200 / 255 - 0.485) / 0.229))
    flipped = samples.dataset(np.ones(3, bool), np.zeros(3, int), AugmentSettings(hflip=1.0), "none")
    batch, _ = flipped.collate([flipped[2]])
    assert torch.allclose(batch[0], raw[2].flip(-1), atol=1e-5)  # every image flipped, in one batch call


def test_volume_sets_take_no_imagenet_statistics():
    with pytest.raises(Exception, match="volumes are scaled"):
        volume_set().inputs("imagenet")


def test_one_function_turns_logits_into_probabilities():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    [p] = probabilities(logits)
    assert torch.allclose(p, torch.softmax(logits, 1))
    [q] = probabilities(torch.tensor([[0.0], [2.0]]))  # one sigmoid unit: the second class
    assert torch.allclose(q[:, 1], torch.sigmoid(torch.tensor([0.0, 2.0]))) and torch.allclose(q.sum(1), torch.ones(2))
    members = torch.stack([logits, -logits])  # SDL: (members, N, C)
    net1, net2, mean = probabilities(members)
    assert torch.allclose(mean, (torch.softmax(logits, 1) + torch.softmax(-logits, 1)) / 2)
    assert torch.allclose(net2, torch.softmax(-logits, 1))


def test_the_registry_imports_its_builders_only_when_a_model_is_listed_or_built():
    code = """
import sys
import glioscope.models
assert "torchvision" not in sys.modules, "import glioscope.models loaded torchvision"
from glioscope.models.sdl import sdl  # a builder module alone registers what it needs
assert type(sdl(3, backbone="smallcnn", head="linear", width=4)).__name__ == "SynergicNet"
from glioscope.models import list_models
assert {"alexnet", "r3d_18", "resnet10_3d", "sdl", "smallcnn"} <= set(list_models())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_registry_entries_say_how_a_model_is_fed_and_reported():
    assert reported_names(ModelSpec(name="sdl", members=3), "sdl-n") == [
        "sdl-n/net1",
        "sdl-n/net2",
        "sdl-n/net3",
        "sdl-n/mean",
    ]
    assert reported_names(ModelSpec(name="resnet18"), "r18") == ["r18"]
    assert input_normalisation(ModelSpec(name="alexnet"), "model") == "imagenet"
    assert input_normalisation(ModelSpec(name="r3d_18"), "model") == "none"
    assert input_normalisation(ModelSpec(name="alexnet"), "none") == "none"  # the recipe's word wins
    assert model_entry("r3d_18").kind == "volumes" and model_entry("sdl").variant == "synergic"
