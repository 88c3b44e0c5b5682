"""Training throughput through the full data pipeline vs the model alone on in-memory tensors.

2D (default): AlexNet and SDL (an AlexNet pair) with the `sdl` recipe's data: the
demo phantom's sagittal T1 slices, decoded once into the slice cache, 128 px,
rotation +-10 degrees, ImageNet normalisation, DataLoader, batch 8.
3D (--3d): r3d_18, mc3_18 and r2plus1d_18 with `st3d --quick`: the demo phantom's
BraTS and IXI volumes, preprocessed once into the volume cache (4 mm, 40x56x48),
TorchIO's light augmentation in the DataLoader, batch 2.

    python benchmarks/train_throughput.py [--cohort COHORT]
    python benchmarks/train_throughput.py --3d [--cohort COHORT] [--workers 0 1 2]

It prints samples per second of both, and their ratio, measured in the same run with
the two alternating, so that the machine's other load affects both alike. The goal is
a ratio of at least 0.90: the data pipeline must not be the bottleneck.
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

from glioscope import plan
from glioscope.ingest import ingest
from glioscope.models import model_entry
from glioscope.models.build import build_model, input_normalisation, reported_names
from glioscope.recipe import Recipe, load_recipe
from glioscope.samples import build_samples
from glioscope.train import trainer_class


def _cohort(scratch: Path, given: Path | None, three_d: bool) -> Path:
    if given is not None:
        return given
    from glioscope.synth import synthesize

    layouts = ["brats", "ixi"] if three_d else ["dicom"]
    print(f"synthesising the demo phantom ({', '.join(layouts)}) ...", file=sys.stderr)
    synthesize(scratch / "phantom", preset="demo", seed=0, layouts=layouts)
    if three_d:
        sources, select = [scratch / "phantom" / "brats", scratch / "phantom" / "ixi"], None
    else:
        sources, select = [scratch / "phantom" / "dicom"], {"plane": ["sagittal"], "sequence": ["T1"]}
    ingest(sources, scratch / "cohort", select=select, progress=False, echo=None)
    return scratch / "cohort"


def _rate(step, batches, samples_per_batch: int) -> float:
    start = time.perf_counter()
    count = 0
    for batch in batches:
        step(batch)
        count += samples_per_batch
    return count / (time.perf_counter() - start)


def measure(recipe: Recipe, samples, targets, names, steps: int, rounds: int) -> tuple[float, float, object]:
    """(pipeline samples/s, model-only samples/s, chosen precision), medians over alternating rounds."""
    everything = np.ones(len(targets), dtype=bool)
    dataset = samples.dataset(everything, targets, recipe.augment, input_normalisation(recipe.model, recipe.data.normalize))
    torch.manual_seed(0)
    model = build_model(recipe.model, len(names), samples.channels).model
    variant = trainer_class(model_entry(recipe.model.name).variant)
    trainer = variant(model, recipe.train, names, Path(tempfile.mkdtemp()), name=recipe.name,
                      reported=reported_names(recipe.model, recipe.name), progress=False)
    trainer._setup_precision(dataset)
    trainer.model.train()
    batch_size = recipe.train.batch_size
    members = getattr(trainer.raw_model, "n_members", 1)

    def pipeline_batches():
        loader = iter(trainer.train_batches(dataset, 0))
        return (next(loader) for _ in range(steps))

    # Model only: the same step on tensors already in memory (normalised, augmented or not: no matter).
    item = dataset.inputs([0])[0].shape
    shape = (batch_size, members, *item) if members > 1 else (batch_size, *item)
    fixed = (torch.randn(shape), torch.randint(0, len(names), shape[:2] if members > 1 else shape[:1]))
    _rate(trainer.train_step, [fixed] * 2, batch_size * members)  # warm-up
    pipeline, model_only = [], []
    for _ in range(rounds):
        pipeline.append(_rate(trainer.train_step, pipeline_batches(), batch_size * members))
        model_only.append(_rate(trainer.train_step, [fixed] * steps, batch_size * members))
    return statistics.median(pipeline), statistics.median(model_only), trainer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cohort", type=Path, default=None)
    parser.add_argument("--3d", dest="three_d", action="store_true", help="the 3D video ResNets (st3d --quick)")
    parser.add_argument("--steps", type=int, default=None, help="batches per measurement (default 25 in 2D, 8 in 3D)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements of each; medians count")
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="DataLoader workers to try (default 0 1)")
    args = parser.parse_args(argv)
    steps = args.steps or (8 if args.three_d else 25)
    if args.three_d:
        base, variants = "st3d", [("r3d_18", "st3d"), ("mc3_18", "st3d-mc3"), ("r2plus1d_18", "st3d-r2plus1d")]
    else:
        base, variants = "sdl", [("alexnet", "alexnet"), ("sdl", "sdl")]
    with tempfile.TemporaryDirectory(prefix="glioscope-bench-") as scratch:
        cohort_dir = _cohort(Path(scratch), args.cohort, args.three_d)
        cache = Path(scratch) / "cache"
        recipe = load_recipe(base, ["model.weights=none"], quick=args.three_d)
        frame, _ = plan.load_cohort(cohort_dir, recipe.task, recipe.data)
        names = plan.class_names(recipe.task, frame)
        samples = build_samples(frame, recipe.data, cache, progress=False)
        start = time.perf_counter()
        samples = build_samples(frame, recipe.data, cache, progress=False)
        print(f"{len(samples.table)} samples of {frame['patient_id'].nunique()} patients; "
              f"loading them again from the cache took {time.perf_counter() - start:.2f} s")
        targets = samples.targets(names)
        rows = []
        for label, name in variants:
            for workers in args.workers or [0, 1]:
                model_recipe = load_recipe(name, ["model.weights=none", f"train.num_workers={workers}",
                                                  "train.tensorboard=false"], quick=args.three_d)
                pipeline, model_only, trainer = measure(model_recipe, samples, targets, names, steps, args.rounds)
                print(f"{label}: precision {trainer.precision} ({trainer.precision_record['chosen_by']})")
                rows.append((label, workers, pipeline, model_only))
        print(f"\n{'model':<12} {'workers':>7} {'pipeline /s':>12} {'model-only /s':>14} {'ratio':>6}")
        for label, workers, pipeline, model_only in rows:
            print(f"{label:<12} {workers:>7} {pipeline:>12.2f} {model_only:>14.2f} {pipeline / model_only:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
