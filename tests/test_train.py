"""The training loop, SDL, resume, weights loading and DDP, on tiny tensors made here."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from glioscope.errors import GlioscopeError, InputError
from glioscope.models import create_model
from glioscope.models.build import build_model
from glioscope.models.spec import ModelSpec
from glioscope.models.weights import WeightsUnavailable
from glioscope.train.checkpoint import load_checkpoint
from glioscope.augment.prep import BatchPrep
from glioscope.samples.datasets import SliceDataset
from glioscope.train.pairs import TupleDataset, make_pairs, make_tuples
from glioscope.train.loop import Trainer
from glioscope.train.sdl import SDLTrainer

SETTINGS = dict(
    optimizer="sgd",
    lr=0.01,
    momentum=0.9,
    schedule="inverse_decay",
    decay=1e-4,
    batch_size=8,
    epochs=2,
    seed=0,
    precision="fp32",
    channels_last=False,
    synergic_lambda=3.0,
    tensorboard=False,
)


def toy_images(n=48, size=32, seed=0):
    """Three classes told apart by a bright, a dark or no square."""
    g = torch.Generator().manual_seed(seed)
    targets = np.arange(n) % 3
    images = (torch.rand(n, 3, size, size, generator=g) * 120 + 60).to(torch.uint8)
    images[targets == 1, :, 8:24, 8:24] = 250
    images[targets == 2, :, 8:24, 8:24] = 5
    return images, targets


def small_net(num_classes=3, **kwargs):
    return create_model("resnet18", num_classes, head="hidden", hidden=32, **kwargs)


# --- SDL -------------------------------------------------------------------------------


def test_pairs_follow_the_published_rule():
    targets = np.array([0] * 10 + [1] * 7 + [2] * 5)
    pairs, leftovers = make_pairs(targets, np.random.default_rng(0))
    same = pairs[pairs[:, 2] == 1]
    different = pairs[pairs[:, 2] == 0]
    assert (targets[same[:, 0]] == targets[same[:, 1]]).all()
    assert (targets[different[:, 0]] != targets[different[:, 1]]).all()
    # Half of each class is paired within it: 10 -> 5 images (2 pairs + 1 odd), 7 -> 3 (1 pair + 1), 5 -> 2 (1 pair).
    assert len(same) == 2 + 1 + 1
    used = np.concatenate([pairs[:, 0], pairs[:, 1]])
    assert len(set(used)) == len(used)  # no image twice
    assert sorted(set(used) | set(leftovers)) == list(range(len(targets)))
    assert len(leftovers) == len(targets) - len(used)


def test_tuples_for_three_members_have_consistent_labels():
    targets = np.repeat([0, 1, 2], 12)
    tuples, _ = make_tuples(targets, 3, np.random.default_rng(1))
    assert tuples.shape[1] == 3
    third_same = (targets[tuples[:, 2]] == targets[tuples[:, 0]]).mean()
    assert 0.2 < third_same < 0.8  # same class as the anchor about half of the time


def test_sdl_step_lowers_the_synergic_loss():
    torch.manual_seed(0)
    images, targets = toy_images(24)
    dataset = SliceDataset(images, targets)
    model = create_model("sdl", 3, backbone="resnet18", head="hidden", hidden=32)
    trainer = SDLTrainer(model, {**SETTINGS, "lr": 0.005}, ["a", "b", "c"], Path("unused"), name="sdl", progress=False)
    trainer._setup_precision(dataset)
    tuples, _ = make_tuples(targets, 2, np.random.default_rng(0))
    pairs = TupleDataset(dataset, tuples)
    batch = next(iter(torch.utils.data.DataLoader(pairs, batch_size=len(tuples), collate_fn=pairs.collate)))
    first = None
    for _ in range(15):
        out = trainer.train_step(batch)
        first = first if first is not None else out["bce_sum"] / out["count"]
    last = out["bce_sum"] / out["count"]
    assert last < 0.5 * first


def test_synergic_layer_learns_from_bce_only():
    model = create_model("sdl", 3, backbone="resnet18", head="hidden", hidden=16)
    x = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
    logits, synergic = model(x)
    ce = sum(F.cross_entropy(l, torch.zeros(4, dtype=torch.long)) for l in logits)
    ce.backward(retain_graph=True)
    assert all(p.grad is None for p in model.synergic.parameters())
    model.zero_grad()
    bce = F.binary_cross_entropy_with_logits(synergic[0], torch.ones(4))
    bce.backward()
    assert model.synergic[0].weight.grad.abs().sum() > 0
    assert model.members[0].fc.weight.grad is None  # the output layers see only their own CE
    assert model.members[0].neck[1].weight.grad.abs().sum() > 0  # but the synergic error reaches the nets


# --- the loop ------------------------------------------------------------------------


def fit(out: Path, epochs: int, resume=False, cls=Trainer, model_name="resnet18", n=24):
    torch.manual_seed(0)
    images, targets = toy_images(n)
    from glioscope.augment.images import build_batch_affine

    dataset = SliceDataset(images, targets, prep=BatchPrep(affine=build_batch_affine({"rotation": 10})))
    model = (
        small_net()
        if model_name == "resnet18"
        else create_model("sdl", 3, backbone="resnet18", head="hidden", hidden=16)
    )
    trainer = cls(model, {**SETTINGS, "epochs": epochs}, ["a", "b", "c"], out, name="m", progress=False)
    history = trainer.fit(dataset, SliceDataset(images, targets), resume=resume)
    return trainer, history


@pytest.mark.parametrize("cls,model_name", [(Trainer, "resnet18"), (SDLTrainer, "sdl")])
def test_resume_reaches_the_same_state_as_an_uninterrupted_run(tmp_path, cls, model_name):
    straight, _ = fit(tmp_path / "straight", 3, cls=cls, model_name=model_name)
    fit(tmp_path / "killed", 2, cls=cls, model_name=model_name)  # stopped after epoch 2 ...
    resumed, history = fit(tmp_path / "killed", 3, resume=True, cls=cls, model_name=model_name)  # ... and resumed
    assert list(history["epoch"]) == [1, 2, 3]
    for (name, a), b in zip(straight.raw_model.state_dict().items(), resumed.raw_model.state_dict().values()):
        assert torch.equal(a, b), name


def test_training_learns_and_checkpoints_every_epoch(tmp_path):
    trainer, history = fit(tmp_path, 4, n=48)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    state = load_checkpoint(tmp_path / "checkpoint_last.pt")
    assert state["epoch"] == 4 and len(state["history"]) == 4
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 5
    assert not list(tmp_path.glob("*.partial"))


def test_early_stopping_stops(tmp_path):
    images, targets = toy_images(24, size=64)
    dataset = SliceDataset(images, targets)
    settings = {**SETTINGS, "epochs": 30, "lr": 0.0, "early_stopping": 2, "monitor": "val_loss"}
    # AlexNet has no BatchNorm: with lr 0 its validation loss cannot change, so it never improves.
    model = create_model("alexnet", 3, head="hidden", hidden=16)
    trainer = Trainer(model, settings, ["a", "b", "c"], tmp_path, progress=False)
    history = trainer.fit(dataset, dataset)
    assert len(history) == 3  # best at epoch 1, then two epochs without improvement


class Renamed(torch.nn.Module):
    """A network whose output layer is not `model.fc` (as a registered model's may not be)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.body = net

    def forward(self, x):
        return self.body(x)


def test_the_recipe_spec_not_the_network_chooses_the_loss(tmp_path):
    from glioscope.models.build import build_model, loss_kind, output_units
    from glioscope.models.spec import ModelSpec

    for classes, sigmoid, units, kind in ((2, True, 1, "bce"), (2, False, 2, "ce"), (3, True, 3, "ce")):
        asked = ModelSpec(name="smallcnn", sigmoid=sigmoid, weights=None, options={"width": 4})
        assert (output_units(asked, classes), loss_kind(asked, classes)) == (units, kind)
        assert build_model(asked, classes, 3).model.fc.out_features == units  # one rule for the network and the loss
    spec = ModelSpec(name="smallcnn", sigmoid=True, weights=None, options={"width": 4})
    torch.manual_seed(0)
    model = Renamed(build_model(spec, 2, 3).model)
    assert not hasattr(model, "fc")
    images, targets = toy_images(24)
    targets = (targets > 0).astype(np.int64)
    trainer = Trainer(
        model,
        SETTINGS,
        ["a", "b"],
        tmp_path,
        progress=False,
        class_weights=torch.tensor([1.0, 3.0]),
        loss=loss_kind(spec, 2),
    )
    history = trainer.fit(SliceDataset(images, targets), SliceDataset(images, targets))
    assert np.isfinite(history["train_loss"]).all() and len(history) == 2
    logits, labels = torch.tensor([[0.5], [-1.0], [2.0]]), torch.tensor([1, 0, 0])
    expected = F.binary_cross_entropy_with_logits(logits[:, 0], labels.float(), pos_weight=torch.tensor([3.0]))
    assert torch.equal(trainer.loss(logits, labels), expected)
    assert trainer.predicted_class(logits).tolist() == [1, 0, 1]
    with pytest.raises(GlioscopeError, match="expected one of ce, bce"):
        Trainer(small_net(), SETTINGS, ["a", "b", "c"], tmp_path, progress=False, loss="mse")


def test_the_runner_gives_every_phase_the_loss_of_the_recipe_spec(tmp_path, monkeypatch):
    import types

    import pandas as pd

    from glioscope import runner
    from glioscope.recipe import load_recipe

    class Recording:
        def __init__(self, model, settings, names, out, **kwargs):
            seen.append(kwargs.get("loss", "ce"))
            self.raw_model = model

        def fit(self, *args, **kwargs):
            return pd.DataFrame({"epoch": [1]})

    monkeypatch.setattr(runner, "trainer_class", lambda variant: Recording)
    not_main = types.SimpleNamespace(is_main=False)
    cases = ((True, ["0", "1"], "bce"), (False, ["0", "1"], "ce"), (True, ["a", "b", "c"], "ce"))
    for sigmoid, names, expected in cases:
        seen = []
        recipe = load_recipe("eff", [f"model.sigmoid={str(sigmoid).lower()}"])  # two phases: head, then fine-tuning
        runner._train_phases(recipe, recipe.train, None, names, tmp_path, None, False, not_main, None, None, False)
        assert seen == [expected, expected], (sigmoid, names)


def test_a_variant_overrides_how_the_loss_optimiser_and_schedule_are_built(tmp_path):
    class Constant(Trainer):
        def build_loss(self):
            return lambda logits, targets: logits.sum() * 0 + 7.0

    class Still(Trainer):
        def build_optimizer(self):
            return torch.optim.SGD(self.raw_model.parameters(), lr=0.0)

        def build_schedule(self, optimizer):
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)

    images, targets = toy_images(24)
    torch.manual_seed(0)
    history = Constant(small_net(), SETTINGS, ["a", "b", "c"], tmp_path / "loss", progress=False).fit(
        SliceDataset(images, targets)
    )
    assert list(history["train_loss"]) == [7.0, 7.0]
    torch.manual_seed(0)
    model = small_net()
    before = {k: v.clone() for k, v in model.named_parameters()}
    trainer = Still(model, SETTINGS, ["a", "b", "c"], tmp_path / "optimizer", progress=False)
    trainer.fit(SliceDataset(images, targets))
    assert all(torch.equal(before[k], v) for k, v in trainer.raw_model.named_parameters())  # lr 0: nothing moved
    assert trainer.optimizer.param_groups[0]["lr"] == 0.0
    assert isinstance(trainer.schedule, torch.optim.lr_scheduler.StepLR)


def test_sdl_members_learn_with_the_class_weights_and_refuse_a_sigmoid_unit():
    from glioscope.util.schema import SettingError

    torch.manual_seed(0)
    model = create_model("sdl", 3, backbone="resnet18", head="hidden", hidden=16)
    weights = torch.tensor([1.0, 0.2, 4.0])
    trainer = SDLTrainer(model, SETTINGS, ["a", "b", "c"], Path("unused"), progress=False, class_weights=weights)
    trainer._setup_precision(SliceDataset(*toy_images(8)))
    images, targets = torch.rand(4, 2, 3, 32, 32), torch.tensor([[0, 2], [1, 1], [2, 0], [0, 1]])
    _, ce, _, logits, _, _ = trainer.losses(trainer.model, images, targets, trainer.precision)
    for m in range(2):
        assert torch.equal(ce[m], F.cross_entropy(logits[m].float(), targets[:, m], weight=weights))
    with pytest.raises(SettingError, match="model.sigmoid"):
        SDLTrainer(model, SETTINGS, ["a", "b"], Path("unused"), progress=False, loss="bce")


# --- weights ---------------------------------------------------------------------------


def test_weights_from_a_file_and_from_the_torch_cache(tmp_path, monkeypatch):
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": reference.state_dict()}, path)
    model = create_model("resnet18", 3, weights=str(path))
    assert torch.equal(model.backbone.conv1.weight, reference.conv1.weight)
    assert model.fc.out_features == 3

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.hub.set_dir(str(tmp_path / "torch" / "hub"))
    with pytest.raises(WeightsUnavailable, match="never downloads"):
        create_model("resnet18", 3, weights="imagenet")
    cache = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cache.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cache)
    model = create_model("resnet18", 3, weights="imagenet", in_chans=1)
    assert torch.allclose(model.backbone.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))


def test_a_weights_file_that_does_not_load_is_an_error_never_a_reason_to_train_from_scratch(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"encoder.0.weight": torch.zeros(3, 3)}, unrelated)
    spec = ModelSpec(name="alexnet", weights_fallback="scratch")
    for path, message in (
        (bad, "cannot be read as PyTorch weights"),
        (tmp_path / "missing.pth", "not found"),
        (unrelated, "none of its 1 tensors fits alexnet"),
    ):
        with pytest.raises(InputError, match=message) as caught:
            build_model(replace(spec, weights=str(path)), 3, 3)  # weights_fallback does not apply to a file
        assert str(path) in str(caught.value) and not isinstance(caught.value, WeightsUnavailable)


# --- DDP -------------------------------------------------------------------------------

DDP_SCRIPT = """
import sys, numpy as np, torch
from pathlib import Path
from glioscope.models import create_model
from glioscope.samples.datasets import SliceDataset
from glioscope.train.loop import Trainer
torch.manual_seed(0)
g = torch.Generator().manual_seed(0)
targets = np.arange(32) % 2
images = (torch.rand(32, 3, 32, 32, generator=g) * 255).to(torch.uint8)
model = create_model("resnet18", 2, head="hidden", hidden=16)
settings = dict(optimizer="sgd", lr=0.01, momentum=0.9, batch_size=4, epochs=1, seed=0, precision="fp32",
                channels_last=False, tensorboard=False)
trainer = Trainer(model, settings, ["a", "b"], Path(sys.argv[1]), progress=False)
trainer.fit(SliceDataset(images, targets))
torch.save(trainer.raw_model.state_dict(), Path(sys.argv[1]) / f"rank{trainer.context.rank}.pt")
print("world", trainer.context.world_size, "batches", trainer.history[0]["train_loss"])
"""


def test_ddp_two_cpu_processes_train_one_epoch(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            str(script),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "world 2" in result.stdout
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    # Gradients were averaged across the processes: both hold identical weights after the epoch
    # (BatchNorm running statistics are each process's own until DDP broadcasts them at the next forward).
    weights = [k for k in rank0 if "running_" not in k and "num_batches" not in k]
    assert all(torch.equal(rank0[k], rank1[k]) for k in weights)
    assert (tmp_path / "checkpoint_last.pt").is_file()


def test_gradient_accumulation_matches_a_larger_batch(tmp_path):
    """Batch 4 accumulated over 2 steps gives the same weights as batch 8 (no BatchNorm, no dropout)."""
    images, targets = toy_images(16, size=64)
    results = []
    for batch_size, accumulate in ((8, 1), (4, 2)):
        torch.manual_seed(0)
        model = create_model("alexnet", 3, head="hidden", hidden=16, dropout=0.0)
        settings = {
            **SETTINGS,
            "optimizer": "sgd",
            "momentum": 0.0,
            "schedule": "none",
            "epochs": 1,
            "batch_size": batch_size,
            "accumulate": accumulate,
        }
        trainer = Trainer(model, settings, ["a", "b", "c"], tmp_path / f"b{batch_size}", progress=False)
        trainer.fit(SliceDataset(images, targets))
        results.append(trainer.raw_model.state_dict())
    for key in results[0]:
        assert torch.allclose(results[0][key], results[1][key], atol=1e-5), key


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_a_fused_optimizer_follows_the_per_tensor_one_and_repeats_itself(tmp_path, name):
    def train(fused: bool, out: Path):
        torch.manual_seed(0)
        images, targets = toy_images(24)
        settings = {**SETTINGS, "optimizer": name, "lr": 1e-3, "epochs": 2, "fused_optimizer": fused}
        trainer = Trainer(small_net(), settings, ["a", "b", "c"], out, name="m", progress=False)
        assert trainer.optimizer.defaults.get("fused") is (True if fused else None)
        trainer.fit(SliceDataset(images, targets), SliceDataset(images, targets))
        return trainer.raw_model.state_dict()

    per_tensor, fused, again = train(False, tmp_path / "a"), train(True, tmp_path / "b"), train(True, tmp_path / "c")
    for key, value in per_tensor.items():
        assert torch.equal(fused[key], again[key]), key  # the same seed, the same result
        if value.is_floating_point():
            assert torch.allclose(fused[key], value, atol=1e-3, rtol=1e-3), key  # the same update, other rounding


def test_the_tumour_recipes_use_the_fused_optimizer_and_the_others_do_not():
    from glioscope.recipe import load_recipe

    assert load_recipe("alexnet-tumour").train.fused_optimizer and load_recipe("r18-tumour").train.fused_optimizer
    assert not load_recipe("st3d").train.fused_optimizer and not load_recipe("eff").train.fused_optimizer
