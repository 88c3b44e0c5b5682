"""Training throughput through the full data pipeline vs the model alone on in-memory tensors.

For AlexNet and for SDL (an AlexNet pair), with the `sdl` recipe's data: sagittal T1
slices of the demo phantom's DICOM tree, decoded once into the slice cache, 128 px,
random rotation +-10 degrees, ImageNet normalisation, DataLoader, batch 8.

    python benchmarks/train_throughput.py                   # synthesises the demo phantom
    python benchmarks/train_throughput.py --cohort COHORT   # a cohort folder (sagittal T1 rows are used)

It prints images per second of both, and their ratio, measured in the same run with
the two alternating, so that the machine's other load affects both alike.
The goal is a ratio of at least 0.90: the data pipeline must not be the bottleneck.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from glioscope import cohort
from glioscope.config import load_recipe
from glioscope.ingest import ingest
from glioscope.runner import build_model, make_dataset, slice_settings
from glioscope.preprocess import build_slices
from glioscope.train.loop import Trainer
from glioscope.train.sdl import SDLTrainer


def _cohort(scratch: Path, given: Path | None) -> Path:
    if given is not None:
        return given
    from glioscope.synth import synthesize

    print("synthesising the demo phantom (DICOM layout only) ...", file=sys.stderr)
    synthesize(scratch / "phantom", preset="demo", seed=0, layouts=["dicom"])
    ingest([scratch / "phantom" / "dicom"], scratch / "cohort", select={"plane": ["sagittal"], "sequence": ["T1"]},
           progress=False, echo=None)
    return scratch / "cohort"


def _rate(step, batches, images_per_batch: int) -> float:
    start = time.perf_counter()
    count = 0
    for batch in batches:
        step(batch)
        count += images_per_batch
    return count / (time.perf_counter() - start)


def measure(name: str, recipe: dict, slices, targets, steps: int, rounds: int, workers: int) -> tuple[float, float]:
    """(pipeline images/s, model-only images/s), medians over alternating rounds."""
    recipe = {**recipe, "train": {**recipe["train"], "num_workers": workers, "tensorboard": False}}
    mask = np.ones(len(targets), dtype=bool)
    dataset = make_dataset(recipe, slices, targets, mask, train=True)
    torch.manual_seed(0)
    model = build_model(recipe, 3, slices.images.shape[1], [])
    cls = SDLTrainer if recipe["model"]["name"] == "sdl" else Trainer
    trainer = cls(model, recipe["train"], ["II", "III", "IV"], Path(tempfile.mkdtemp()), name=name, progress=False)
    trainer._setup_precision(dataset)
    trainer.model.train()
    if trainer.timings:
        timings = ", ".join(f"{k} {v:.3f}" for k, v in trainer.timings.items())
        print(f"{name}: seconds per batch of {recipe['train']['batch_size']}: {timings} -> {trainer.precision}")
    batch_size = int(recipe["train"]["batch_size"])
    members = getattr(trainer.raw_model, "n_members", 1)
    images_per_batch = batch_size * members

    def pipeline_batches():
        loader = iter(trainer.train_batches(dataset, 0))
        return (next(loader) for _ in range(steps))

    # Model only: the same step on tensors already in memory, already normalised.
    item = dataset.inputs([0])[0].shape
    shape = (batch_size, members, *item) if members > 1 else (batch_size, *item)
    fixed = (torch.randn(shape), torch.randint(0, 3, shape[:2] if members > 1 else shape[:1]))
    _rate(trainer.train_step, [fixed] * 3, images_per_batch)  # warm-up
    pipeline, model_only = [], []
    for _ in range(rounds):
        pipeline.append(_rate(trainer.train_step, pipeline_batches(), images_per_batch))
        model_only.append(_rate(trainer.train_step, [fixed] * steps, images_per_batch))
    return statistics.median(pipeline), statistics.median(model_only)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cohort", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=25, help="batches per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements of each; medians count")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1], help="DataLoader workers to try")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="glioscope-bench-") as scratch:
        cohort_dir = _cohort(Path(scratch), args.cohort)
        recipe = load_recipe("sdl", ["model.weights=none"])
        frame = cohort.select(cohort.load(cohort_dir), {"plane": ["sagittal"], "sequence": ["T1"]})
        slices = build_slices(frame, slice_settings(recipe), Path(scratch) / "cache", progress=False)
        start = time.perf_counter()
        build_slices(frame, slice_settings(recipe), Path(scratch) / "cache", progress=False)
        cached = time.perf_counter() - start
        names = {"II": 0, "III": 1, "IV": 2}
        targets = slices.table["label"].map(names).to_numpy()
        print(f"{len(slices.table)} slices of {frame['patient_id'].nunique()} patients; "
              f"reloading them from the slice cache took {cached:.2f} s")
        print(f"{'model':<8} {'workers':>7} {'pipeline img/s':>15} {'model-only img/s':>17} {'ratio':>6}")
        for name, overrides in (("alexnet", ["model.name=alexnet", "model.backbone=null"]), ("sdl", [])):
            model_recipe = load_recipe("sdl", ["model.weights=none", *overrides])
            for workers in args.workers:
                pipeline, model_only = measure(name, model_recipe, slices, targets, args.steps, args.rounds, workers)
                print(f"{name:<8} {workers:>7} {pipeline:>15.1f} {model_only:>17.1f} {pipeline / model_only:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
