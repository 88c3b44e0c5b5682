"""3D video ResNets: stems, Kinetics weights, class weights, a training step, and the st3d recipe end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from glioscope.cli import main
from glioscope.recipe import load_recipe
from glioscope.ingest import ingest
from glioscope.models import create_model
from glioscope.samples.datasets import VolumeDataset
from glioscope.train.weights import class_weights
from glioscope.train.loop import Trainer

ARCHS = ("r3d_18", "mc3_18", "r2plus1d_18")


@pytest.mark.parametrize("arch", ARCHS)
def test_stem_takes_the_volume_channels(arch):
    for channels in (1, 4):
        model = create_model(arch, 3, in_chans=channels)
        assert model.backbone.stem[0].in_channels == channels
        assert model(torch.randn(2, channels, 16, 24, 20)).shape == (2, 3)
    assert isinstance(model.neck, torch.nn.Dropout) and model.neck.p == 0.3


def test_kinetics_checkpoint_loads_all_but_stem_and_head(tmp_path):
    reference = torchvision.models.video.mc3_18(weights=None)
    path = tmp_path / "kinetics_mc3.pth"
    torch.save(reference.state_dict(), path)
    model = create_model("mc3_18", 3, in_chans=1, weights=str(path))
    assert torch.equal(model.backbone.layer1[0].conv1[0].weight, reference.layer1[0].conv1[0].weight)
    assert torch.equal(model.backbone.layer4[1].conv2[0].weight, reference.layer4[1].conv2[0].weight)
    assert model.backbone.stem[0].weight.shape[1] == 1  # re-initialised for one channel
    assert model.fc.out_features == 3


def test_class_weights_follow_the_published_formula():
    targets = np.array([0] * 6 + [1] * 3 + [2] * 1)
    weights = class_weights("complement", targets, 3)
    assert torch.allclose(weights, torch.tensor([1 - 6 / 10, 1 - 3 / 10, 1 - 1 / 10]))
    assert class_weights("none", targets, 3) is None


def test_a_3d_training_step_lowers_the_loss(tmp_path):
    torch.manual_seed(0)
    targets = np.arange(8) % 2
    volumes = torch.rand(8, 1, 16, 16, 16) * 0.2
    volumes[targets == 1, :, 4:12, 4:12, 4:12] += 0.8  # a bright cube makes class 1
    settings = dict(
        optimizer="adam",
        lr=1e-3,
        batch_size=4,
        epochs=1,
        seed=0,
        precision="fp32",
        channels_last=False,
        tensorboard=False,
    )
    trainer = Trainer(create_model("mc3_18", 2, in_chans=1), settings, ["a", "b"], tmp_path, progress=False)
    dataset = VolumeDataset(volumes, targets)
    trainer._setup_precision(dataset)
    batch = (volumes, torch.as_tensor(targets))
    losses = [trainer.train_step(batch)["loss_sum"] for _ in range(6)]
    assert losses[-1] < 0.5 * losses[0]


FAST = [
    "train.epochs=1",
    "cv.folds=2",
    "data.volumes.spacing=8.0",
    "data.volumes.shape=[20,28,24]",
    "data.volumes.skull_strip=none",
    "evaluate.bootstrap=50",
    "train.precision=fp32",
    "train.channels_last=false",
    "model.weights=none",
]


@pytest.fixture(scope="module")
def st3d_run(tiny_phantom, module_tmp):
    root = module_tmp
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLIOSCOPE_CACHE", str(root / "cache"))
        ingest([tiny_phantom / "brats", tiny_phantom / "ixi"], root / "cohort", progress=False, echo=None)
        args = [arg for item in FAST for arg in ("--set", item)]
        assert main(["cv", "st3d", "--cohort", str(root / "cohort"), "-o", str(root / "run"), *args]) == 0
    return root / "run"


def test_st3d_recipe_end_to_end(st3d_run, tiny_phantom):
    volumes = pd.read_csv(st3d_run / "volumes.csv")
    truth = pd.read_csv(tiny_phantom / "truth.csv")
    assert volumes["patient_id"].is_unique and len(volumes) == len(truth)
    assert set(volumes["label"]) == {"LGG", "HGG", "healthy"}
    metrics = json.loads((st3d_run / "metrics.json").read_text())
    assert metrics["cv"]["st3d"]["patient"]["n"] == len(truth)
    html = (st3d_run / "report.html").read_text()
    assert "the spatio-spatial paper" in html and "Weighted F1" in html
    assert list((st3d_run / "fold0" / "gradcam").glob("*.png"))  # 3D Grad-CAM: three views per patient


def test_predict_a_phantom_volume(st3d_run, tiny_phantom, capsys):
    case = sorted((tiny_phantom / "brats").rglob("*_t1ce.nii.gz"))[0]
    capsys.readouterr()
    assert main(["predict", str(st3d_run), str(case)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["classes"] == ["LGG", "HGG", "healthy"] and len(result["volumes"]) == 1
    assert result["patients"][0]["seen_in_training"] is True  # the case id is read from the file name


REAL_VOLUMES = [
    "nifti/BraTS2021_00006/BraTS2021_00006_t1ce.nii.gz",
    "nifti/BraTS-GLI-00001-000/BraTS-GLI-00001-000-t1c.nii.gz",
    "nifti/brats2015-deepmedic-6cases/train/brats_2013_pat0005_1/T1c_subtrMeanDivStd.nii.gz",
    "nifti/tcga-brainles/TCGA-DU-7294/TCGA-DU-7294_brainles/raw_bet/TCGA-DU-7294_t1c_bet.nii.gz",
]


def test_real_volumes_get_a_prediction(st3d_run, shared_data, capsys):
    for relative in REAL_VOLUMES:
        path = shared_data / relative
        if not path.is_file():
            pytest.skip(f"{relative} not present")
        capsys.readouterr()
        assert main(["predict", str(st3d_run), str(path)]) == 0, relative
        result = json.loads(capsys.readouterr().out)
        probabilities = result["patients"][0]["probabilities"]
        assert abs(sum(probabilities.values()) - 1) < 1e-4 and result["patients"][0]["seen_in_training"] is False


def test_st3d_recipes_resolve_with_the_published_settings():
    recipe = load_recipe("st3d")
    assert recipe.train.lr == 1e-5 and recipe.train.weight_decay == 1e-3 and recipe.train.batch_size == 1
    assert recipe.train.class_weights == "complement" and recipe.cv.folds == 3
    assert recipe.data.volumes.spacing == 2.0 and recipe.augment.volume == "light"
    assert {load_recipe(n).model.name for n in ("st3d", "st3d-mc3", "st3d-r2plus1d")} == set(ARCHS)
