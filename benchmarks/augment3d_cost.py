"""What 3D volumes cost per volume: preprocessing (once), reading the cache, the light and heavy augmentation.

python benchmarks/augment3d_cost.py                       # the tiny phantom (BraTS + IXI layouts), 4 mm and 2 mm
python benchmarks/augment3d_cost.py --volume T1.nii.gz    # also time preprocessing one real volume
python benchmarks/augment3d_cost.py --no-model            # skip the r3d_18 training step used for the ratios

Augmentation runs in the DataLoader's workers (one thread each, as timed here), in parallel
with the model's step: it stays out of the way while its cost per volume, divided by the
workers, is below the step's time. The ratio printed is augmentation time / r3d_18 training
step (batch 1, forward and backward, all CPU threads) measured in the same run; on a GPU the
step is far shorter, so divide the augmentation time by the GPU's step time instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from glioscope.augment.volumes import augmentation
from glioscope.samples.volumes import VolumeSettings, build_volumes, cache, volume_from_file

SETTINGS = {"quick (4 mm)": VolumeSettings(spacing=4.0, shape=(48, 56, 48)), "default (2 mm)": VolumeSettings()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volume", type=Path, help="a NIfTI volume to time preprocessing on (with and without strip)")
    parser.add_argument("--repeats", type=int, default=10, help="augmented volumes per preset and shape")
    parser.add_argument("--no-model", action="store_true", help="do not time an r3d_18 step for the ratios")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as in one DataLoader worker
    with tempfile.TemporaryDirectory(prefix="glioscope-bench3d-") as scratch:
        frame = _phantom(Path(scratch))
        print(f"\n{'settings':<16} {'step':<34} {'ms/volume':>10}")
        for name, settings in SETTINGS.items():
            cache_dir = Path(scratch) / "cache"
            volumes = _preprocess(name, frame, settings, cache_dir)
            _cache_read(name, settings, cache_dir)
            step = None if args.no_model else _model_step(settings)
            if step is not None:
                print(f"{name:<16} {'r3d_18 training step, batch 1':<34} {step * 1000:>10.0f}")
            for preset in ("light", "heavy"):
                seconds = _augment(preset, settings, volumes.volumes, args.repeats)
                ratio = f"  {100 * seconds / step:.1f}% of a step" if step else ""
                print(f"{name:<16} {f'augmentation {preset}':<34} {seconds * 1000:>10.1f}{ratio}")
        if args.volume:
            _time_volume(args.volume)
    if hasattr(os, "getloadavg"):
        # Other processes on the machine take cores: read the numbers with this in mind.
        print(f"\nload average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPU cores")
    return 0


def _phantom(scratch: Path):
    from glioscope.ingest import ingest
    from glioscope.synth import synthesize

    print("synthesising the tiny phantom (BraTS and IXI layouts) ...", file=sys.stderr)
    synthesize(scratch / "phantom", preset="tiny", seed=0, layouts=["brats", "ixi"], progress=False)
    frame, _ = ingest([scratch / "phantom" / "brats", scratch / "phantom" / "ixi"], None, progress=False, echo=None)
    return frame


def _preprocess(name: str, frame, settings: VolumeSettings, cache_dir: Path):
    start = time.perf_counter()
    volumes = build_volumes(frame, settings, cache_dir, workers=1, progress=False)
    seconds = time.perf_counter() - start
    stripped = int((volumes.table["skull_strip"] == "mni").sum())
    print(
        f"{name:<16} {f'preprocess, cold ({stripped} of {len(volumes)} stripped)':<34} {seconds / len(volumes) * 1000:>10.0f}"
    )
    return volumes


def _cache_read(name: str, settings: VolumeSettings, cache_dir: Path) -> None:
    entries = sorted((cache_dir / settings.key()).glob("*.npz"))
    start = time.perf_counter()
    for entry in entries:
        cache.load(entry)
    seconds = (time.perf_counter() - start) / len(entries)
    print(f"{name:<16} {'read one cached volume':<34} {seconds * 1000:>10.1f}")


def _augment(preset: str, settings: VolumeSettings, volumes, repeats: int) -> float:
    transform = augmentation(preset, spacing=settings.spacing)
    torch.manual_seed(0)
    times = []
    for index in range(repeats + 1):
        volume = torch.from_numpy(volumes[index % len(volumes)])
        start = time.perf_counter()
        transform(volume.float())
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # the first call pays for imports and caches


def _model_step(settings: VolumeSettings) -> float | None:
    try:
        from torchvision.models.video import r3d_18
    except ImportError:
        return None
    model = r3d_18(num_classes=3)
    model.stem[0] = torch.nn.Conv3d(1, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-5)
    batch, target = torch.rand(1, 1, *settings.shape), torch.tensor([1])
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # the training process uses every core
    times = []
    for _ in range(3):
        start = time.perf_counter()
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(batch), target).backward()
        optimiser.step()
        times.append(time.perf_counter() - start)
    torch.set_num_threads(threads)
    return statistics.median(times[1:])


def _time_volume(path: Path) -> None:
    print(f"\npreprocessing {path.name} (no cache):")
    for name, settings in SETTINGS.items():
        for strip in ("none", "mni"):
            chosen = VolumeSettings(**{**settings.__dict__, "skull_strip": strip})
            start = time.perf_counter()
            volume_from_file(path, chosen)
            print(f"{name:<16} {f'skull strip {strip}':<34} {(time.perf_counter() - start) * 1000:>10.0f}")


if __name__ == "__main__":
    sys.exit(main())
