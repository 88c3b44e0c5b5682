"""The CUDA paths: each recipe family trains on a GPU as on a CPU (fp32 within a tolerance; bf16 finite), fp16 with
its GradScaler, and torchrun with NCCL. Skipped where there is no GPU; benchmarks/gpu_check.sh runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from glioscope.augment.images import build_batch_affine
from glioscope.augment.prep import BatchPrep
from glioscope.augment.settings import AugmentSettings
from glioscope.augment.volumes import augmentation
from glioscope.models import create_model
from glioscope.samples.datasets import SliceDataset, VolumeDataset
from glioscope.train.loop import Trainer
from glioscope.train.sdl import SDLTrainer

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device: the GPU paths are unmeasured here (benchmarks/gpu_check.sh runs these)",
)

BASE = dict(
    optimizer="sgd", lr=0.01, momentum=0.9, batch_size=8, epochs=2, seed=0, tensorboard=False, channels_last=False
)
# The CPU's data path on the GPU (a new loader each epoch, no workers), so that both see the same batches and the
# same augmentation draws; the default CUDA path (workers, persistent, seeded per sample) is trained further below.
SAME_BATCHES = dict(cuda_workers=0, persistent_workers=False)


def slices(n=32, size=64, seed=0) -> SliceDataset:
    """Three classes told apart by a bright, a dark or no square; rotation and flips drawn per image."""
    g = torch.Generator().manual_seed(seed)
    targets = np.arange(n) % 3
    images = (torch.rand(n, 1, size, size, generator=g) * 120 + 60).to(torch.uint8)
    images[targets == 1, :, 16:48, 16:48] = 250
    images[targets == 2, :, 16:48, 16:48] = 5
    augment = AugmentSettings(rotation=10, hflip=0.5)
    return SliceDataset(images, targets, None, BatchPrep(None, 3, build_batch_affine(augment)))


def plain(dataset: SliceDataset) -> SliceDataset:
    return SliceDataset(dataset.images, dataset.targets.numpy(), None, dataset.prep.without_augmentation())


def volumes(n=8, shape=(16, 24, 24), augment: str = "none") -> VolumeDataset:
    g = torch.Generator().manual_seed(0)
    targets = np.arange(n) % 2
    data = torch.rand(n, 1, *shape, generator=g) * 0.5
    data[targets == 1, :, 4:12, 8:16, 8:16] = 1.0
    return VolumeDataset(data.half(), targets, augmentation(augment, spacing=4.0))


def train(family: str, device: str, tmp_path: Path, **settings):
    """(history, probabilities of the first reported model on the unaugmented data, trainer)."""
    torch.manual_seed(0)
    # No dropout: its masks come from the CPU's generator on a CPU and from the GPU's on a GPU.
    if family == "3d":
        model, cls, data = create_model("r3d_18", 2, in_chans=1, dropout=0.0), Trainer, volumes()
        settings = {**settings, "batch_size": 2}
        evaluation = data
    else:
        cls = SDLTrainer if family == "sdl" else Trainer
        name = "sdl" if family == "sdl" else "alexnet"
        options = dict(backbone="alexnet", members=2) if family == "sdl" else {}
        model = create_model(name, 3, head="hidden", hidden=32, dropout=0.0, **options)
        data = slices()
        evaluation = plain(data)
    names = ["a", "b"] if family == "3d" else ["a", "b", "c"]
    trainer = cls(model, {**BASE, **settings, "device": device}, names, tmp_path / f"{family}-{device}", progress=False)
    history = trainer.fit(data)
    return history, next(iter(trainer.predict(evaluation).values())), trainer


@pytest.mark.parametrize("family", ["2d", "sdl", "3d"])
def test_a_short_cuda_training_matches_the_cpu(family, tmp_path):
    cpu_history, cpu_probs, _ = train(family, "cpu", tmp_path, precision="fp32")
    gpu_history, gpu_probs, trainer = train(family, "cuda", tmp_path, precision="fp32", **SAME_BATCHES)
    assert trainer.device.type == "cuda"
    assert np.isfinite(gpu_history["train_loss"]).all()
    # TF32 convolutions and cuDNN's own algorithms: close, not equal.
    np.testing.assert_allclose(gpu_history["train_loss"], cpu_history["train_loss"], rtol=0.05, atol=0.02)
    np.testing.assert_allclose(gpu_probs, cpu_probs, atol=0.05)


@pytest.mark.parametrize("family", ["2d", "sdl", "3d"])
def test_the_default_cuda_path_trains_in_bf16_with_workers(family, tmp_path):
    """precision auto (bf16 autocast, channels_last), workers from the cores, persistent, batches prepared on the GPU."""
    _, cpu_probs, _ = train(family, "cpu", tmp_path, precision="fp32")
    history, probs, trainer = train(family, "cuda", tmp_path, precision="auto", channels_last="auto")
    assert trainer.precision.dtype in ("bf16", "fp16") and trainer.precision.channels_last
    assert np.isfinite(history["train_loss"]).all() and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    assert np.abs(probs - cpu_probs).max() < 0.25  # another batch order and bf16: near, not close


def test_fp16_trains_with_a_grad_scaler_and_keeps_it_in_the_checkpoint(tmp_path):
    history, probs, trainer = train("2d", "cuda", tmp_path, precision="fp16")
    assert trainer._uses_scaler and trainer.scaler.get_scale() > 0
    assert np.isfinite(history["train_loss"]).all() and np.isfinite(probs).all()
    from glioscope.train.checkpoint import load_checkpoint

    assert load_checkpoint(trainer.out_dir / "checkpoint_last.pt")["scaler"]["scale"] > 0


def test_3d_light_augmentation_runs_in_the_workers_on_cuda(tmp_path):
    torch.manual_seed(0)
    trainer = Trainer(
        create_model("r3d_18", 2, in_chans=1),
        {**BASE, "batch_size": 2, "epochs": 1, "device": "cuda"},
        ["a", "b"],
        tmp_path,
        progress=False,
    )
    history = trainer.fit(volumes(augment="light"))
    loader = trainer.loader(volumes(augment="light"), 0, shuffle=True)
    assert loader.num_workers > 0 or os.cpu_count() < 3
    assert np.isfinite(history["train_loss"]).all()


TORCHRUN_SCRIPT = r"""
import sys
from pathlib import Path
import numpy as np
import torch
import torch.distributed as dist
from glioscope.models import create_model
from glioscope.samples.datasets import SliceDataset
from glioscope.train import ddp
from glioscope.train.loop import Trainer


class OneRankDDP(ddp.DistContext):
    @property
    def distributed(self):  # one GPU: DDP over a process group of one, so that NCCL carries every collective
        return True


dist.init_process_group("nccl")
torch.cuda.set_device(0)
context = OneRankDDP(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=0, device=torch.device("cuda", 0))
torch.manual_seed(0)
g = torch.Generator().manual_seed(0)
images = (torch.rand(32, 3, 64, 64, generator=g) * 255).to(torch.uint8)
trainer = Trainer(create_model("alexnet", 2, head="hidden", hidden=16), dict(batch_size=8, epochs=1, seed=0,
                  tensorboard=False), ["a", "b"], Path(sys.argv[1]), progress=False, context=context)
history = trainer.fit(SliceDataset(images, np.arange(32) % 2))
assert dist.get_backend() == "nccl" and isinstance(trainer.model, torch.nn.parallel.DistributedDataParallel)
print("backend", dist.get_backend(), "world", dist.get_world_size(), "loss", float(history["train_loss"].iloc[0]))
dist.destroy_process_group()
"""


def test_torchrun_with_nccl_trains_one_epoch(tmp_path):
    script = tmp_path / "nccl_train.py"
    script.write_text(TORCHRUN_SCRIPT)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "1",
            "--master_port",
            "29531",
            str(script),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backend nccl world 1" in result.stdout
    loss = float(result.stdout.split("loss")[-1])
    assert np.isfinite(loss)
    assert (tmp_path / "checkpoint_last.pt").is_file()
