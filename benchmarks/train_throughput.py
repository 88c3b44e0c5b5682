"""Training throughput through the full data pipeline vs the model alone on tensors already on the device.

Recipes at their own sizes, on the demo phantom (synthesised here unless --cohort2d / --cohort3d):

    alexnet  the SDL paper's baseline: sagittal T1 slices, 128 px, rotation +-10, batch 8
    sdl      the SDL paper's AlexNet pair, as alexnet
    r18      the ResNet18 paper: 224 px, horizontal flips, batch 32
    eff      the MGMT paper: 300 px, zoom, rotation, shift, flips, brightness, batch 32, its first phase
             (the backbone frozen), a 3-way head instead of its sigmoid (the phantom's grades)
    r3d_18   the spatio-spatial paper (st3d): BraTS + IXI volumes at 2 mm (80 x 112 x 96), TorchIO light, batch 1
             (also mc3_18 and r2plus1d_18 when named; --3d names the three)

--small: 112 px for r18, 128 px for eff, 4 mm volumes (st3d --quick: 40 x 56 x 48, batch 2), for a CPU.

    python benchmarks/train_throughput.py --small                          # CPU, fp32
    python benchmarks/train_throughput.py --device cuda --out figures/     # the GPU, fp32/bf16 x layouts
    python benchmarks/train_throughput.py --models r18 --compile --precision bf16

For each model and setting (precision, channels_last, torch.compile) it prints samples per second
through the full pipeline (cached samples, per-image transforms, DataLoader workers, collation,
pinned non-blocking copies, batch augmentation where the trainer puts it, the training step) and
of the same step on a batch already on the device, and their ratio: the two alternate within one
run, medians of --rounds, so the machine's other load hits both alike. The goal is a ratio of at
least 0.90. "vs fp32" is the model-only speed against the model's fp32 row in the standard layout;
"data-only" is the pipeline without the training step (batches made, copied and prepared), its ceiling.
It also times rebuilding the sample sets from the cache: one file per item against the one
memory-mapped array of the set (glioscope.samples.consolidated). --out DIR writes the table as
throughput.csv and throughput.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import torch

from glioscope import plan
from glioscope.models import model_entry
from glioscope.models.build import build_model, input_normalisation, loss_kind, reported_names
from glioscope.recipe import load_recipe
from glioscope.samples import build_samples, consolidated
from glioscope.train import trainer_class
from glioscope.train.data_path import workers_for
from glioscope.util import atomic

# (recipe, extra overrides, overrides with --small)
MODELS = {
    "alexnet": ("alexnet", [], []),
    "sdl": ("sdl", [], []),
    "r18": ("r18", [], ["data.slices.size=112"]),
    "eff": ("eff", ["model.sigmoid=false"], ["data.slices.size=128"]),
    "r3d_18": ("st3d", [], None),
    "mc3_18": ("st3d-mc3", [], None),
    "r2plus1d_18": ("st3d-r2plus1d", [], None),
}
COMMON = [
    "model.weights=none",
    "train.tensorboard=false",
    "data.select={}",
    "task.classes=null",
    "train.validation=none",
]


def main(argv=None) -> int:
    args = _arguments(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device here", file=sys.stderr)
        return 2
    # On CUDA the trainer's default (bf16, channels_last) first: a run cut short by a time limit has it.
    precisions = args.precision or (["bf16", "fp32"] if device.type == "cuda" else ["fp32"])
    layouts = args.channels_last or (["on", "off"] if device.type == "cuda" else ["off"])
    steps = args.steps or (30 if device.type == "cuda" else 10)
    rows, rebuilds = [], []
    print(_heading(), file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="glioscope-bench-") as scratch:
        scratch = Path(scratch)
        for name in args.models:
            recipe_name, extra, small = MODELS[name]
            three_d = small is None
            cohort = _cohort(scratch, args, three_d)
            sized = (small or []) if args.small else []
            overrides = [*COMMON, *extra, *sized, f"train.device={args.device}"]
            base = load_recipe(recipe_name, overrides, quick=three_d and args.small)
            frame, _ = plan.load_cohort(cohort, base.task, base.data)
            names = plan.class_names(base.task, frame)
            samples = build_samples(frame, base.data, scratch / "cache", progress=False)
            made = base.data.volumes.key() if three_d else base.data.slices.key()
            if made not in {r["settings"] for r in rebuilds}:  # once per cache setting
                rebuilds.append(
                    {**_rebuild(frame, base, scratch / "cache", samples.kind, args.rounds), "settings": made}
                )
            for precision in precisions:
                for layout in layouts:
                    for compiled in [False, True] if args.compile else [False]:
                        rows.append(
                            _row(name, base, samples, names, args, device, steps, precision, layout == "on", compiled)
                        )
                        _print_row(rows[-1], rows)
                        if args.out:  # as it goes: a run cut short keeps what it measured
                            _write(args, device, rows, rebuilds)
    print(f"\n{_heading()}")
    for row in rows:
        _print_row(row, rows, quiet=False)
    print()
    for rebuild in rebuilds:
        print(
            f"rebuilding the {rebuild['samples']} ({rebuild['count']} samples, {rebuild['size']}) from the cache: "
            f"one file per item {rebuild['per_item_s']:.3f} s, one memory-mapped set {rebuild['mmap_s']:.3f} s "
            f"({rebuild['per_item_s'] / max(rebuild['mmap_s'], 1e-9):.1f}x)"
        )
    print(f"\n{_machine(device)}")
    if args.out:
        _write(args, device, rows, rebuilds)
        print(f"written: {args.out / 'throughput.csv'}, {args.out / 'throughput.json'}")
    return 0


def _write(args, device, rows: list[dict], rebuilds: list[dict]) -> None:
    rows = [{**row, "model_only_vs_fp32": _versus_fp32(row, rows)} for row in rows]
    atomic.write_csv(args.out / "throughput.csv", pd.DataFrame(rows))
    arguments = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    atomic.write_json(
        args.out / "throughput.json",
        {"machine": _machine(device), "arguments": arguments, "rows": rows, "cache_rebuild": rebuilds},
    )


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--models", nargs="+", choices=sorted(MODELS), default=None, help="default: alexnet sdl r18 eff r3d_18"
    )
    parser.add_argument("--3d", dest="three_d", action="store_true", help="r3d_18, mc3_18 and r2plus1d_18")
    parser.add_argument("--small", action="store_true", help="smaller images and 4 mm volumes (a CPU)")
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=["fp32", "bf16", "fp16"],
        default=None,
        help="default: fp32 on a CPU, bf16 and fp32 on CUDA",
    )
    parser.add_argument(
        "--channels-last",
        nargs="+",
        choices=["off", "on"],
        default=None,
        help="default: off on a CPU, on and off on CUDA",
    )
    parser.add_argument("--compile", action="store_true", help="also each setting with torch.compile")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: the trainer's)")
    parser.add_argument("--steps", type=int, default=None, help="batches per measurement (default 10 CPU, 30 CUDA)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements of each; medians count")
    parser.add_argument("--preset", default="demo", help="phantom preset to synthesise (default demo)")
    parser.add_argument("--cohort2d", type=Path, default=None, help="a cohort of sagittal T1 series (2D models)")
    parser.add_argument("--cohort3d", type=Path, default=None, help="a cohort of BraTS + IXI volumes (3D models)")
    parser.add_argument("--out", type=Path, default=None, help="folder for throughput.csv and throughput.json")
    args = parser.parse_args(argv)
    if args.models is None:
        args.models = (
            ["r3d_18", "mc3_18", "r2plus1d_18"] if args.three_d else ["alexnet", "sdl", "r18", "eff", "r3d_18"]
        )
    return args


def _cohort(scratch: Path, args, three_d: bool) -> Path:
    """The given cohort, else the phantom's (synthesised once, in the layouts every model asked for needs)."""
    given = args.cohort3d if three_d else args.cohort2d
    if given is not None:
        return given
    target = scratch / ("cohort3d" if three_d else "cohort2d")
    if target.is_dir():
        return target
    from glioscope.ingest import ingest
    from glioscope.synth import synthesize

    root = scratch / "phantom"
    if not root.is_dir():
        kinds = {MODELS[name][2] is None for name in args.models}
        layouts = [*(["dicom"] if False in kinds else []), *(["brats", "ixi"] if True in kinds else [])]
        print(f"synthesising the {args.preset} phantom ({', '.join(layouts)}) ...", file=sys.stderr, flush=True)
        synthesize(root, preset=args.preset, seed=0, layouts=layouts, progress=False)
    if three_d:
        sources, select = [root / "brats", root / "ixi"], None
    else:
        sources, select = [root / "dicom"], {"plane": ["sagittal"], "sequence": ["T1"]}
    ingest(sources, target, select=select, progress=False, echo=None)
    return target


def _size(recipe) -> str:
    if recipe.data.kind == "volumes":
        return f"{recipe.data.volumes.spacing:g} mm"
    return f"{recipe.data.slices.size} px"


def _rebuild(frame, recipe, cache: Path, kind: str, rounds: int) -> dict:
    """Seconds to rebuild the sample set from a warm cache: per-item files vs the memory-mapped set (medians)."""
    per_item, mapped, count = [], [], 0
    for _ in range(rounds):
        with (
            mock.patch.object(consolidated, "read_set", return_value=None),
            mock.patch.object(consolidated, "write_set", return_value=False),
        ):
            start = time.perf_counter()
            count = len(build_samples(frame, recipe.data, cache, progress=False))
            per_item.append(time.perf_counter() - start)
        start = time.perf_counter()
        build_samples(frame, recipe.data, cache, progress=False)
        mapped.append(time.perf_counter() - start)
    return {
        "samples": kind,
        "size": _size(recipe),
        "count": count,
        "per_item_s": statistics.median(per_item),
        "mmap_s": statistics.median(mapped),
    }


def _row(name, recipe, samples, names, args, device, steps, precision, channels_last, compiled) -> dict:
    settings = recipe.train
    changes = dict(precision=precision, channels_last=channels_last, compile=compiled, device=device.type)
    if args.workers is not None:
        changes.update(num_workers=args.workers, cuda_workers=args.workers)
    settings = dataclasses.replace(settings, **changes)
    pipeline, model_only, data_only, trainer = measure(recipe, settings, samples, names, steps, args.rounds)
    return {
        "model": name,
        "recipe": recipe.name,
        "size": _size(recipe),
        "batch": settings.batch_size,
        "workers": workers_for(settings, trainer.device),
        "precision": precision,
        "channels_last": channels_last,
        "compile": compiled,
        "pipeline_per_s": round(pipeline, 2),
        "model_only_per_s": round(model_only, 2),
        "ratio": round(pipeline / model_only, 3),
        "data_only_per_s": round(data_only, 1),
        "device": device.type,
    }


def measure(recipe, settings, samples, names, steps: int, rounds: int):
    """(pipeline, model-only and data-only samples/s, trainer), medians over alternating rounds."""
    everything = np.ones(len(samples), dtype=bool)
    targets = samples.targets(names)
    dataset = samples.dataset(
        everything, targets, recipe.augment, input_normalisation(recipe.model, recipe.data.normalize)
    )
    torch.manual_seed(0)
    model = build_model(recipe.model, len(names), samples.channels).model
    variant = trainer_class(model_entry(recipe.model.name).variant)
    trainer = variant(
        model,
        settings,
        names,
        Path(tempfile.mkdtemp()),
        name=recipe.name,
        reported=reported_names(recipe.model, recipe.name),
        progress=False,
        loss=loss_kind(recipe.model, len(names)),
    )
    trainer._setup_precision(dataset)
    trainer.model.train()
    for module in trainer.frozen:  # as an epoch does: frozen parts in inference mode
        module.eval()
    members = getattr(trainer.raw_model, "n_members", 1)
    per_batch = settings.batch_size * members

    def pipeline(count: int):
        """`count` batches through the whole pipeline, a new epoch when one ends (as training does)."""
        produced, epoch = 0, 0
        while True:
            for batch in trainer.device_batches(trainer.train_batches(dataset, epoch)):
                yield batch
                produced += 1
                if produced == count:
                    return
            epoch += 1

    fixed = next(pipeline(1))  # a real batch, already on the device and prepared: the model alone
    if len(fixed[1]) != settings.batch_size:
        raise SystemExit(f"{recipe.name}: fewer samples than one batch")
    for _ in range(2 if trainer.device.type == "cuda" else 1):  # warm-up: workers start, kernels are chosen, compiling
        _rate(trainer.train_step, pipeline(min(steps, 5)), per_batch, trainer.device)
        _rate(trainer.train_step, [fixed] * 3, per_batch, trainer.device)
    through, alone, data = [], [], []
    for _ in range(rounds):
        through.append(_rate(trainer.train_step, pipeline(steps), per_batch, trainer.device))
        alone.append(_rate(trainer.train_step, [fixed] * steps, per_batch, trainer.device))
        data.append(_rate(lambda batch: None, pipeline(steps), per_batch, trainer.device))  # no step: the data alone
    return statistics.median(through), statistics.median(alone), statistics.median(data), trainer


def _rate(step, batches, samples_per_batch: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    count = 0
    for batch in batches:
        step(batch)
        count += samples_per_batch
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def _heading() -> str:
    return (
        f"{'model':<12} {'size':>7} {'batch':>5} {'workers':>7} {'precision':>9} {'layout':>13} {'compile':>7} "
        f"{'pipeline /s':>11} {'model-only /s':>13} {'ratio':>6} {'vs fp32':>7} {'data-only /s':>12}"
    )


def _versus_fp32(row: dict, rows: list[dict]) -> float | None:
    """Model-only speed against the same model's fp32 row in the standard layout, uncompiled (None: not measured)."""
    reference = next(
        (
            r
            for r in rows
            if r["model"] == row["model"] and r["precision"] == "fp32" and not r["channels_last"] and not r["compile"]
        ),
        None,
    )
    return round(row["model_only_per_s"] / reference["model_only_per_s"], 3) if reference else None


def _print_row(row: dict, rows: list[dict], quiet: bool = True) -> None:
    versus = _versus_fp32(row, rows)
    versus = "-" if versus is None else f"{versus:.2f}"
    line = (
        f"{row['model']:<12} {row['size']:>7} {row['batch']:>5} {row['workers']:>7} {row['precision']:>9} "
        f"{'channels_last' if row['channels_last'] else 'standard':>13} {'yes' if row['compile'] else 'no':>7} "
        f"{row['pipeline_per_s']:>11.2f} {row['model_only_per_s']:>13.2f} {row['ratio']:>6.2f} {versus:>7} "
        f"{row['data_only_per_s']:>12.1f}"
    )
    print(line, file=sys.stderr if quiet else sys.stdout, flush=True)


def _machine(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    return (
        f"{device.type}: {name}; {os.cpu_count()} CPU cores{load}; torch {torch.__version__}; "
        f"{torch.get_num_threads()} threads"
    )


if __name__ == "__main__":
    raise SystemExit(main())
