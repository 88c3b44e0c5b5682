"""The data path built for a GPU, checked on a CPU: loader settings, batches prepared on the device, persistent
workers with per-sample seeds, the memory-mapped cache of a sample set, torch.compile as an opt-in."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from glioscope import cohort
from glioscope.augment.images import build_batch_affine, build_train_transform
from glioscope.augment.prep import BatchPrep
from glioscope.augment.settings import AugmentSettings
from glioscope.ingest import ingest
from glioscope.models import create_model
from glioscope.samples.slices import SliceSettings, build_slices
from glioscope.samples.volumes import VolumeSettings, build_volumes
from glioscope.recipe import load_recipe
from glioscope.samples import consolidated
from glioscope.samples.datasets import SliceDataset
from glioscope.train import data_path
from glioscope.train.loop import Trainer
from glioscope.train.pairs import TupleDataset
from glioscope.train.settings import TrainSettings
from glioscope.util.schema import SettingError

CUDA = torch.device("cuda")  # a device object only: nothing here runs on a GPU
SETTINGS = dict(
    optimizer="sgd", lr=0.01, batch_size=4, epochs=1, seed=3, precision="fp32", channels_last=False, tensorboard=False
)


def augmented_dataset(n=12, size=24) -> SliceDataset:
    """uint8 slices with per-image (brightness) and per-batch (rotation, flips) randomness."""
    images = (torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    augment = AugmentSettings(rotation=15, hflip=0.5, brightness=(0.7, 1.3))
    prep = BatchPrep(None, 3, build_batch_affine(augment))
    return SliceDataset(images, np.arange(n) % 2, build_train_transform(augment), prep)


def epoch_batches(trainer: Trainer, dataset, epoch: int) -> list[torch.Tensor]:
    torch.manual_seed(7)
    return [images for images, _ in trainer.device_batches(trainer.loader(dataset, epoch, shuffle=True))]


def trainer(tmp_path, **changes) -> Trainer:
    model = create_model("smallcnn", 2)
    made = Trainer(model, {**SETTINGS, **changes}, ["a", "b"], tmp_path, progress=False)
    return made


# --- settings --------------------------------------------------------------------------------


def test_the_new_settings_are_checked_and_default_to_a_cpu_as_before():
    settings = TrainSettings.of({})
    assert (settings.cuda_workers, settings.persistent_workers, settings.batch_on_device, settings.compile) == (
        "auto",
        "auto",
        "auto",
        False,
    )
    assert TrainSettings.of({"cuda_workers": 6, "persistent_workers": False, "prefetch_factor": 2}).cuda_workers == 6
    for bad in ({"cuda_workers": "many"}, {"cuda_workers": -1}, {"prefetch_factor": 0}, {"batch_on_device": "gpu"}):
        with pytest.raises(SettingError, match="train."):
            TrainSettings.of(bad)
    recipe = load_recipe("sdl", ["train.compile=true", "train.cuda_workers=3"])
    assert recipe.train.compile and recipe.train.cuda_workers == 3
    cpu = torch.device("cpu")
    assert data_path.workers_for(settings, cpu) == settings.num_workers == 0
    assert not data_path.on_device_prep(settings, cpu) and not data_path.persistent(settings, cpu, 2)
    assert data_path.on_device_prep(settings, CUDA) and data_path.persistent(settings, CUDA, 2)
    assert not data_path.persistent(settings, CUDA, 0)  # persistence needs workers


def test_cuda_workers_come_from_the_cores(monkeypatch):
    settings = TrainSettings.of({"num_workers": 1})
    monkeypatch.setattr(data_path, "cores", lambda: 16)
    assert data_path.workers_for(settings, CUDA, processes=1) == 14  # the training and pinning threads keep two
    assert data_path.workers_for(settings, CUDA, processes=2) == 6  # two processes share the cores
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert data_path.workers_for(settings, CUDA) == 2
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.setattr(data_path, "cores", lambda: 64)
    assert data_path.workers_for(settings, CUDA) == 16
    monkeypatch.setattr(data_path, "cores", lambda: 2)
    assert data_path.workers_for(settings, CUDA) == 0
    assert data_path.workers_for(TrainSettings.of({"cuda_workers": 5}), CUDA) == 5
    assert data_path.workers_for(settings, torch.device("cpu")) == 1


# --- the loader --------------------------------------------------------------------------------


def test_a_cpu_gets_the_loader_of_earlier_versions(tmp_path):
    """Same batches, bit for bit, as the DataLoader built before the GPU data path existed."""
    dataset = augmented_dataset()
    made = trainer(tmp_path)
    loader = made.loader(dataset, 2, shuffle=True)
    assert not isinstance(loader.dataset, data_path.SeededItems) and not loader.persistent_workers
    assert loader.collate_fn == dataset.collate and not loader.pin_memory
    torch.manual_seed(7)
    earlier = DataLoader(
        dataset,
        batch_size=4,
        shuffle=True,
        generator=torch.Generator().manual_seed(3 * 1000 + 2),
        num_workers=0,
        persistent_workers=False,
        pin_memory=False,
        drop_last=False,
        collate_fn=dataset.collate,
    )
    expected = [images for images, _ in earlier]
    assert all(torch.equal(a, b) for a, b in zip(epoch_batches(made, dataset, 2), expected, strict=True))


def test_batches_prepared_after_the_copy_equal_those_prepared_in_the_collate_step(tmp_path):
    dataset = augmented_dataset()
    in_collate = epoch_batches(trainer(tmp_path / "a"), dataset, 0)
    later = trainer(tmp_path / "b", batch_on_device=True)
    loader = later.loader(dataset, 0, shuffle=True)
    assert isinstance(loader.collate_fn, data_path.RawCollate)
    assert next(iter(loader))[0].dtype == torch.uint8  # what is copied: a quarter of the float bytes
    after_copy = epoch_batches(later, dataset, 0)
    assert after_copy[0].dtype == torch.float32
    assert all(torch.equal(a, b) for a, b in zip(in_collate, after_copy, strict=True))
    pairs = TupleDataset(dataset, np.array([[0, 1], [2, 3], [4, 5]]))
    raw = pairs.raw_collate([pairs[0], pairs[1]])
    assert raw[0].dtype == torch.uint8 and pairs.finish(raw)[0].shape == (2, 2, 3, 24, 24)


def test_persistent_workers_seed_each_sample_and_repeat_an_epoch_after_a_resume(tmp_path):
    """Per-sample seeds: the same batches with one worker or two, and a kept loader's third epoch is a new one's."""
    dataset = augmented_dataset()
    one = trainer(tmp_path / "one", num_workers=1, persistent_workers=True)
    two = trainer(tmp_path / "two", num_workers=2, persistent_workers=True)
    loader = one.loader(dataset, 0, shuffle=True)
    assert loader.persistent_workers and loader.prefetch_factor == 4
    assert isinstance(loader.dataset, data_path.SeededItems)
    first = [epoch_batches(one, dataset, epoch) for epoch in range(3)]
    assert one.loader(dataset, 2, shuffle=True) is loader  # kept: its workers live on
    assert all(torch.equal(a, b) for a, b in zip(first[2], epoch_batches(two, dataset, 2), strict=True))
    assert not torch.equal(first[0][0], first[1][0])  # epochs differ
    assert data_path.sample_seed(0, 1, 2) != data_path.sample_seed(0, 2, 1)


def test_a_training_with_a_kept_loader_learns_and_checkpoints(tmp_path):
    dataset = augmented_dataset(n=16)
    made = trainer(tmp_path, num_workers=1, persistent_workers=True, epochs=2)
    history = made.fit(dataset)
    assert len(history) == 2 and np.isfinite(history["train_loss"]).all()
    assert (tmp_path / "checkpoint_last.pt").is_file()


def test_compile_is_an_opt_in_that_trains(tmp_path, monkeypatch):
    """The model goes through torch.compile; dynamo's graph capture is checked with its eager backend, since
    inductor's kernels take minutes to build on a CPU (the GPU check builds them: gpu_check.sh, --compile)."""
    asked = []
    compile_ = torch.compile
    monkeypatch.setattr(
        torch,
        "compile",
        lambda model, **options: asked.append(model) or compile_(model, **{**options, "backend": "eager"}),
    )
    made = trainer(tmp_path, compile=True, batch_size=8)
    images = (torch.rand(8, 3, 32, 32) * 255).to(torch.uint8)
    made._setup_precision(SliceDataset(images, np.arange(8) % 2))
    assert asked == [made.raw_model] and made.model is not made.raw_model  # the raw one keeps the state dict
    before = {k: v.clone() for k, v in made.raw_model.state_dict().items()}
    out = made.train_step((images.float() / 255, torch.arange(8) % 2))
    assert np.isfinite(out["loss_sum"])
    assert any(not torch.equal(before[k], v) for k, v in made.raw_model.state_dict().items())  # it learnt
    assert not trainer(tmp_path / "plain").settings.compile


# --- the memory-mapped set of a build --------------------------------------------------------


@pytest.fixture(scope="module")
def sagittal(tiny_phantom):
    frame, _ = ingest(
        [tiny_phantom / "dicom"],
        None,
        select={"plane": ["sagittal"], "sequence": ["T1"]},
        workers=1,
        progress=False,
        echo=None,
    )
    return frame


def test_a_second_build_reads_one_memory_mapped_array(sagittal, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = build_slices(sagittal, SliceSettings(size=32), cache, workers=1, progress=False)
    sets = sorted((cache / SliceSettings(size=32).key() / "sets").glob("*.npy"))
    assert len(sets) == 1 and sets[0].with_suffix(".json").is_file()
    mapped = np.load(sets[0], mmap_mode="r")
    assert isinstance(mapped, np.memmap) and mapped.dtype == np.uint8 and mapped.shape[0] == len(first)
    assert mapped.shape[2:] == (32, 32)

    def refuse(*args, **kwargs):
        raise AssertionError("a per-item entry was read although the set was there")

    monkeypatch.setattr("glioscope.samples.slices.cache.load", refuse)
    second = build_slices(sagittal, SliceSettings(size=32), cache, workers=1, progress=False)
    assert np.array_equal(first.images, second.images) and first.table.equals(second.table)
    assert second.notes == first.notes
    # Fewer rows are another set; the per-item entries (the source of truth) answer it.
    monkeypatch.undo()
    fewer = build_slices(sagittal.iloc[:3], SliceSettings(size=32), cache, workers=1, progress=False)
    assert len(list((cache / SliceSettings(size=32).key() / "sets").glob("*.npy"))) == 2
    assert np.array_equal(fewer.images, first.images[: len(fewer)])


def test_a_changed_or_damaged_set_is_not_read(tmp_path):
    keys = ["a", "b", "c"]
    layout = consolidated.Layout(
        split=lambda e: (e["rows"], {"n": len(e["rows"])}), join=lambda rows, values: {"rows": np.array(rows), **values}
    )
    entries = [
        {"rows": np.full((2, 1, 4, 4), 1, np.uint8)},
        cohort.Skip("x.dcm", "broken"),
        {"rows": np.full((1, 3, 4, 4), 9, np.uint8)},
    ]
    assert consolidated.write_set(tmp_path, keys, entries, layout)
    found = consolidated.read_set(tmp_path, keys, layout)
    assert found["b"] == cohort.Skip("x.dcm", "broken")
    assert found["a"]["rows"].shape == (2, 1, 4, 4) and found["c"]["rows"].shape == (1, 3, 4, 4)
    assert found["c"]["rows"].max() == 9 and found["a"]["n"] == 2
    assert consolidated.read_set(tmp_path, ["a", "b"], layout) is None  # other rows: another set
    array, index = consolidated.paths(tmp_path, keys)
    np.save(array, np.zeros((2, 3, 4, 4), np.uint8))  # not the array its index describes
    assert consolidated.read_set(tmp_path, keys, layout) is None
    index.write_text("{", encoding="utf-8")
    assert consolidated.read_set(tmp_path, keys, layout) is None
    assert not consolidated.write_set(
        tmp_path, keys, [*entries[:2], {**entries[2], "cache_error": "disk full"}], layout
    )


def test_volumes_are_one_float16_memory_mapped_array(tiny_phantom, tmp_path, monkeypatch):
    frame, _ = ingest([tiny_phantom / "brats"], None, workers=1, progress=False, echo=None)
    settings = VolumeSettings(spacing=8.0, shape=(20, 28, 24), skull_strip="none")
    first = build_volumes(frame.iloc[:4], settings, tmp_path, workers=1, progress=False)
    (array,) = (tmp_path / settings.key() / "sets").glob("*.npy")
    mapped = np.load(array, mmap_mode="r")
    assert mapped.dtype == np.float16 and mapped.shape == (len(first), 1, 20, 28, 24)
    monkeypatch.setattr("glioscope.samples.volumes.cache.load", lambda path: pytest.fail("per-item entry read"))
    again = build_volumes(frame.iloc[:4], settings, tmp_path, workers=1, progress=False)
    np.testing.assert_array_equal(again.volumes, first.volumes)
    assert again.table.equals(first.table)


def test_an_edited_item_gets_a_new_set(tiny_phantom, tmp_path):
    folder = Path(shutil.copytree(tiny_phantom / "imagefolder", tmp_path / "images"))
    frame, _ = ingest([folder], None, workers=1, progress=False, echo=None)
    build_slices(frame, SliceSettings(size=32), tmp_path / "cache", workers=1, progress=False)
    changed = Path(frame["path"].iloc[0])
    from PIL import Image

    Image.fromarray(np.full((40, 40), 77, np.uint8)).save(changed)
    result = build_slices(frame, SliceSettings(size=32), tmp_path / "cache", workers=1, progress=False)
    assert result.images[0].min() == result.images[0].max()  # the new picture, not the set's old one
    assert len(list((tmp_path / "cache" / SliceSettings(size=32).key() / "sets").glob("*.npy"))) == 2
