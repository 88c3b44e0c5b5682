"""The training loop's data path: DataLoader settings from the device and the cores, batches onto the device.

On a CPU the loader is what it has always been (`num_workers`, a new loader each epoch, the
batch prepared in the collate step), so that results stay those of earlier versions. On CUDA:

- workers from the core count (`cuda_workers: auto`), `prefetch_factor` batches ahead each, pinned
  memory, and copies that do not block;
- persistent workers (`persistent_workers: auto`): the loader is kept from one epoch to the next.
  Each sample's random augmentation is then seeded by (seed, epoch, sample) inside the worker, so
  that it depends neither on the number of workers nor on which worker drew it, and a resumed run
  repeats it;
- batch preparation on the device (`batch_on_device: auto`): uint8 batches are copied (a quarter
  of the bytes of float ones), then scaled, augmented (one grid_sample per batch) and normalised
  where the model runs. Datasets opt in with `raw_collate` (collate without preparing) and
  `finish` (prepare a collated batch wherever it is).
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler, SequentialSampler

# A worker's stream for one sample: 64-bit mixing of (seed, epoch, index), never 0.
_MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one sample's augmentation in one epoch (persistent workers)."""
    value = (seed * _MIX[0] + epoch * _MIX[1] + index * _MIX[2]) & (2**63 - 1)
    return value or 1


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workers_for(settings, device: torch.device, processes: int | None = None) -> int:
    """DataLoader workers: num_workers on a CPU; on CUDA cuda_workers, `auto` from the cores.

    auto: the cores of each process (the `processes` of one machine share them; default torchrun's
    LOCAL_WORLD_SIZE) less two, for the training thread and the pinning thread, at most 16; none
    below three cores.
    """
    if device.type != "cuda":
        return settings.num_workers
    if settings.cuda_workers != "auto":
        return int(settings.cuda_workers)
    processes = processes or int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    share = cores() // max(processes, 1)
    return min(16, share - 2) if share >= 3 else 0


def on_device_prep(settings, device: torch.device) -> bool:
    """Whether batches are prepared (scaled, augmented, normalised) on the device rather than in the collate step."""
    return device.type == "cuda" if settings.batch_on_device == "auto" else bool(settings.batch_on_device)


def persistent(settings, device: torch.device, workers: int) -> bool:
    """Whether workers outlive an epoch (and samples are seeded one by one): only with workers."""
    wanted = device.type == "cuda" if settings.persistent_workers == "auto" else bool(settings.persistent_workers)
    return wanted and workers > 0


class RawCollate:
    """A collate step that leaves preparation to `finish`, run after the batch reaches the device."""

    def __init__(self, dataset):
        self.collate = dataset.raw_collate
        self.finish = dataset.finish

    def __call__(self, batch):
        return self.collate(batch)


class EpochSampler(Sampler):
    """Indices tagged with the epoch, (epoch, index), for SeededItems; `set_epoch` reseeds the shuffle."""

    def __init__(self, inner: Sampler, generator: torch.Generator | None, seed: int):
        self.inner, self.generator, self.seed, self.epoch = inner, generator, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.generator is not None:
            self.generator.manual_seed(self.seed * 1000 + epoch)  # the order of a new loader of that epoch
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __iter__(self):
        epoch = self.epoch
        return ((epoch, index) for index in self.inner)

    def __len__(self) -> int:
        return len(self.inner)


class SeededItems(torch.utils.data.Dataset):
    """A dataset whose item (epoch, index) is drawn with torch's generator seeded for that sample and epoch."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, tagged):
        epoch, index = tagged
        torch.manual_seed(sample_seed(self.seed, epoch, int(index)))  # a worker's own generator
        return self.dataset[index]


def build_loader(
    dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    epoch: int,
    workers: int,
    device: torch.device,
    distributed: bool,
    prefetch_factor: int,
    keep: bool,
    prepare_on_device: bool,
) -> DataLoader:
    """The DataLoader of one epoch (or, with `keep`, of every epoch: call `start_epoch` on it)."""
    collate = getattr(dataset, "collate", None)
    if prepare_on_device and hasattr(dataset, "raw_collate") and hasattr(dataset, "finish"):
        collate = RawCollate(dataset)
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = None
    options = dict(
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=False,
        collate_fn=collate,
        generator=generator,
    )
    if workers > 0:
        options.update(prefetch_factor=prefetch_factor, persistent_workers=keep)
    if distributed and shuffle:
        sampler = DistributedSampler(dataset, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
    elif keep:  # its own generator: the loader's draws a base seed only when its workers start
        order = torch.Generator()
        sampler = RandomSampler(dataset, generator=order) if shuffle else SequentialSampler(dataset)
    else:  # exactly the loader of earlier versions
        return DataLoader(dataset, shuffle=shuffle, **options)
    if not keep:
        return DataLoader(dataset, sampler=sampler, **options)
    tagged = EpochSampler(sampler, order, seed)
    tagged.set_epoch(epoch)
    return DataLoader(SeededItems(dataset, seed), sampler=tagged, **options)


def start_epoch(loader: DataLoader, epoch: int) -> DataLoader:
    """A kept loader, set for `epoch`."""
    if isinstance(loader.sampler, EpochSampler):
        loader.sampler.set_epoch(epoch)
    return loader


def to_device(batch, device: torch.device):
    """Tensors of a batch (a tensor, or a tuple or list of them) on `device`, without blocking when pinned."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(part, device) for part in batch)
    return batch


def device_batches(batches, device: torch.device):
    """The batches of a loader on `device`, prepared there when its collate step left that to `finish`.

    On a CPU with a preparing collate (the default there), the batches are passed on untouched.
    """
    finish = getattr(getattr(batches, "collate_fn", None), "finish", None)
    if device.type == "cpu" and finish is None:
        yield from batches
        return
    for batch in batches:
        batch = to_device(batch, device)
        yield finish(batch) if finish is not None else batch


class Loaders:
    """The DataLoaders of a training: new ones each epoch, or with persistent workers one kept per role.

    A role is (shuffle, batch size): training, validation, a timing batch. A kept loader serves its
    dataset in every epoch; a new dataset in the same role replaces it (and stops its workers).
    """

    def __init__(self):
        self.kept: dict = {}

    def get(
        self, dataset, epoch: int, shuffle: bool, batch_size: int, settings, device: torch.device, distributed: bool
    ) -> DataLoader:
        workers = workers_for(settings, device)
        keep = persistent(settings, device, workers)
        role = (shuffle, batch_size)
        if keep and role in self.kept and self.kept[role][0] is dataset:
            return start_epoch(self.kept[role][1], epoch)
        loader = build_loader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=settings.seed,
            epoch=epoch,
            workers=workers,
            device=device,
            distributed=distributed,
            prefetch_factor=settings.prefetch_factor,
            keep=keep,
            prepare_on_device=on_device_prep(settings, device),
        )
        if keep:
            self.kept[role] = (dataset, loader)
        return loader
