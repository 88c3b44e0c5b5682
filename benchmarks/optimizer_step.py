"""One optimiser step on AlexNet's 57 M parameters: per-tensor against fused (train.fused_optimizer).

    python benchmarks/optimizer_step.py [--steps 5] [--rounds 3]

Prints milliseconds a step of Adam, AdamW and SGD with momentum, each per tensor and fused, and
their ratio, measured in one run with the two alternating (medians of --rounds). The fused kernel
rounds differently, which is why it is a recipe setting rather than a choice made from timings.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

from glioscope.train.optim import build_optimizer


def _ms_per_step(optimizer, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - start) / steps * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = torchvision.models.alexnet(num_classes=3)
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter)
    print(f"{'optimizer':<10} {'per tensor ms':>13} {'fused ms':>9} {'ratio':>6}")
    for name in ("adam", "adamw", "sgd"):
        made = {
            fused: build_optimizer(model.parameters(), name, 1e-4, 0.9, 0.0, fused=fused) for fused in (False, True)
        }
        for optimizer in made.values():
            optimizer.step()  # the state is created in the first step
        times = {False: [], True: []}
        for _ in range(args.rounds):
            for fused, optimizer in made.items():
                times[fused].append(_ms_per_step(optimizer, args.steps))
        plain, fused = statistics.median(times[False]), statistics.median(times[True])
        print(f"{name:<10} {plain:>13.1f} {fused:>9.1f} {plain / fused:>6.2f}")
    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
