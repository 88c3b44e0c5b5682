"""Draw the skull strips of `glioscope.samples.volumes` on real volumes: one row per volume, one column per tool.

    python docs/make_skull_strip_figure.py [DATA] [--tools mni hdbet deepbet] -o docs/skull_strip.png

The volumes and the measurement are those of benchmarks/skull_strip.py (DATA: the shared data
folder, holding nifti/): each volume resampled to `--spacing` mm and stripped by each installed
tool. Each panel shows the axial slice through the centre of the tools' brain masks, as a
radiologist sees it (anterior up, the patient's right on the left), with the tool's mask outlined
in red (and the reference mask of a stripped volume in cyan); its title gives the seconds the strip
took and its Dice with the other tools (and with the reference).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

_BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "skull_strip.py"


def benchmark():
    """benchmarks/skull_strip.py as a module (a script folder, not a package)."""
    spec = importlib.util.spec_from_file_location("skull_strip_benchmark", _BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def display(array: np.ndarray) -> np.ndarray:
    """A canonical (RAS) x, y, z array as D, H, W: axial slices with anterior up and the patient's right on the left."""
    return np.ascontiguousarray(array[::-1, ::-1, :].transpose(2, 1, 0))


def draw(cases, dice, out: Path) -> None:
    tools = list(cases[0].masks)
    fig, axes = plt.subplots(len(cases), len(tools), figsize=(2.6 * len(tools), 2.9 * len(cases)), squeeze=False)
    for row, case in enumerate(cases):
        union = np.any([display(mask) for mask in case.masks.values()], axis=0)
        depth = int(np.argwhere(union)[:, 0].mean())
        volume = display(case.data)
        low, high = np.percentile(volume[union], [0.5, 99.5])
        section = np.clip((volume[depth] - low) / (high - low), 0, 1)
        for column, tool in enumerate(tools):
            axis = axes[row, column]
            axis.imshow(section, cmap="gray", vmin=0, vmax=1)
            if case.reference is not None:
                axis.contour(display(case.reference)[depth], levels=[0.5], colors="cyan", linewidths=0.6)
            axis.contour(display(case.masks[tool])[depth], levels=[0.5], colors="red", linewidths=0.6)
            others = [f"{other} {dice(case.masks[tool], case.masks[other]):.2f}" for other in tools if other != tool]
            if case.reference is not None:
                others.append(f"ref {dice(case.masks[tool], case.reference):.2f}")
            axis.set_title(f"{tool}, {case.seconds[tool][0]:.0f} s\nDice {', '.join(others)}", fontsize=7)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row, 0].set_ylabel(case.title, fontsize=7)
    fig.suptitle("Skull strips at 2 mm (red; cyan: BraTS's own mask), seconds on 2 shared cores", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    bench = benchmark()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--tools", nargs="+", default=list(bench.TOOLS))
    parser.add_argument("--spacing", type=float, default=2.0, help="resampling in mm (default 2, as st3d)")
    parser.add_argument("-o", "--out", type=Path, default=Path(__file__).with_name("skull_strip.png"))
    args = parser.parse_args(argv)
    cases = bench.measure(args.data, args.tools, args.spacing)
    if not cases:
        parser.error(f"no volume found under {args.data}")
    draw(cases, bench.dice, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
