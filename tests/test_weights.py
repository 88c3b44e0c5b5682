"""glioscope weights: named weights listed with their on-disk state, fetched on request only, never by training."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from glioscope.cli import main
from glioscope.models.catalogue import catalogue, choose
from glioscope.util.tensors import load_tensors


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """torch's cache in a temporary folder (TORCH_HOME), whatever torch.hub.set_dir was given before."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return tmp_path / "torch" / "hub" / "checkpoints"


def _served(tmp_path: Path, name: str, content) -> str:
    """A file:// URL serving `content` (a state dict, or raw bytes) under `name`; NAME may hold the hash prefix."""
    folder = tmp_path / "server"
    folder.mkdir(exist_ok=True)
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return path.as_uri()


def _with_hash(tmp_path: Path, stem: str, content) -> str:
    url = _served(tmp_path, f"{stem}.pth", content)
    digest = hashlib.sha256(Path(url[len("file://") :]).read_bytes()).hexdigest()[:8]
    named = Path(url[len("file://") :]).rename(tmp_path / "server" / f"{stem}-{digest}.pth")
    return named.as_uri()


def test_the_list_says_which_named_weights_are_on_disk(torch_home, capsys):
    rows = {(r.model, r.name): r for r in catalogue()}
    assert rows[("resnet18", "imagenet")].file == "resnet18-f37072fd.pth"
    assert rows[("r3d_18", "kinetics")].url.startswith("https://download.pytorch.org/")
    assert rows[("smallcnn", "none")].url == ""
    assert rows[("sdl", "imagenet")].file == rows[("alexnet", "imagenet")].file  # SDL members: alexnet's
    assert not any(r.on_disk for r in rows.values() if not r.package)  # a package's file: wherever pip put it
    torch_home.mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), torch_home / "resnet18-f37072fd.pth")
    assert main(["weights"]) == 0
    lines = {line.split()[0] + " " + line.split()[1]: line for line in capsys.readouterr().out.splitlines() if line}
    assert lines["resnet18 imagenet"].split()[2] == "yes"
    assert str(torch_home / "resnet18-f37072fd.pth") in lines["resnet18 imagenet"]
    assert lines["resnet50 imagenet"].split()[2] == "no"


def test_fetch_downloads_into_torch_cache_with_the_hash_checked(torch_home, tmp_path, capsys):
    state = torchvision.models.resnet18(weights=None).state_dict()
    url = _with_hash(tmp_path, "mirror-resnet18", state)
    assert main(["weights", "fetch", "imagenet", "--model", "resnet18", "--url", url]) == 0
    target = torch_home / "resnet18-f37072fd.pth"  # the name glioscope reads, whatever the mirror's
    assert target.is_file() and torch.equal(load_tensors(target)["conv1.weight"], state["conv1.weight"])
    assert "downloaded" in capsys.readouterr().out
    assert main(["weights", "fetch", "resnet18"]) == 0  # a model name means its weights; already there
    assert "already on disk" in capsys.readouterr().out

    from glioscope.models import create_model  # and training reads it from the cache, offline

    model = create_model("resnet18", 2, weights="imagenet")
    assert torch.equal(model.backbone.conv1.weight, state["conv1.weight"])


def test_fetch_refuses_a_wrong_hash_an_unsafe_file_and_an_ambiguous_name(torch_home, tmp_path, capsys):
    state = torchvision.models.alexnet(weights=None).state_dict()
    bad_hash = _served(tmp_path, "alexnet-00000000.pth", state)
    assert main(["weights", "fetch", "alexnet", "--url", bad_hash]) == 2
    assert "hash" in capsys.readouterr().err.lower()
    assert not torch_home.exists() or not any(torch_home.iterdir())  # nothing left behind

    unsafe = _served(tmp_path, "alexnet.pth", {"weights": argparse.Namespace(run="code")})  # a pickled object
    assert main(["weights", "fetch", "alexnet", "--url", unsafe]) == 2
    assert "pickled objects" in capsys.readouterr().err
    assert not (torch_home / "alexnet-owt-7be5be79.pth").exists()

    with pytest.raises(Exception, match="choose one with --model"):
        choose("imagenet")
    assert main(["weights", "fetch", "nosuchweights"]) == 2


def test_training_never_downloads(torch_home, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("training tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", no_network)
    monkeypatch.setenv("GLIOSCOPE_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "images"
    for k in range(8):
        folder = source / ("a" if k % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        image = np.random.default_rng(k).integers(0, 255, (36, 36), dtype=np.uint8)
        Image.fromarray(image).save(folder / f"p{k}_0.png")
    assert main(["ingest", str(source), "--format", "imagefolder", "-o", str(tmp_path / "cohort")]) == 0
    settings = [
        "train.epochs=1",
        "data.slices.size=32",
        "cv.folds=2",
        "model.weights=imagenet",
        "train.validation=none",
        "train.tensorboard=false",
        "evaluate.gradcam_per_class=0",
    ]
    args = [a for s in settings for a in ("--set", s)]
    assert (
        main(["train", "r18", "--cohort", str(tmp_path / "cohort"), "-o", str(tmp_path / "run"), *args, "--no-report"])
        == 0
    )  # ImageNet weights absent: from scratch, with a note, and no download
    assert not torch_home.exists() or not list(torch_home.iterdir())
    weights = json.loads((tmp_path / "run" / "run.json").read_text())["training"]["weights"]
    assert weights["source"] == "imagenet" and weights["on_disk"] is False  # run.json does not claim ImageNet
