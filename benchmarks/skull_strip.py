"""Skull strips side by side on real volumes: seconds per volume and agreement (Dice) of mni, HD-BET and deepbet.

python benchmarks/skull_strip.py                 # ../shared/data (or $GLIOSCOPE_SHARED_DATA)
python benchmarks/skull_strip.py DATA --spacing 2 --tools mni hdbet deepbet hdbet-accurate

Volumes (under DATA/nifti, those present): the raw TCGA-FG-6692 T1 (native space, 26 axial
slices of 5.5 mm, with skull), a healthy T1 with skull (healthy/chris_t1, 1 mm), and the BraTS 2021
case 00006's T1 (already stripped: its nonzero voxels are the reference brain mask). Each is
reoriented to RAS and resampled to `--spacing` mm as a 3D recipe does (st3d: 2 mm), then stripped by
each tool as the skull_strip choice of that name does (mni registers the brain-only template to the
stripped BraTS volume). Seconds are the strip alone, in this process, with torch's thread count as
glioscope leaves it; the machine's load average is printed with each volume; the fastest tool is
timed twice. A tool whose package is missing is left out with the reason.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchio as tio

from glioscope.samples.volumes import brain_nets
from glioscope.samples.volumes.volume import ChannelSource, load_channel, resample

VOLUMES = (
    (
        "TCGA-FG-6692 T1 (raw head)",
        "nifti/tcga-brainles/OtherEXampleFromTCIA/T1_AX_OtherEXampleTCIA_TCGA-FG-6692_Si_TCGA-FG-6692_T1_AX_SE_10_se2d1_t1.nii.gz",
        False,
    ),
    ("healthy T1 (chris_t1, head)", "nifti/healthy/chris_t1.nii.gz", False),
    ("BraTS2021_00006 T1 (stripped)", "nifti/BraTS2021_00006/BraTS2021_00006_t1.nii.gz", True),
)
TOOLS = ("mni", "hdbet", "deepbet")


@dataclass
class Case:
    """One volume: its data on the recipe's grid, each tool's mask and seconds, the reference mask if it has one."""

    title: str
    data: np.ndarray
    spacing: float
    reference: np.ndarray | None
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    load: str = ""


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


def _load() -> str:
    return "load %.1f %.1f %.1f" % os.getloadavg()


def measure(data_dir: Path, tools=TOOLS, spacing: float = 2.0) -> list[Case]:
    """Strip each volume present under data_dir with each installed tool."""
    available = []
    for tool in tools:
        if brain_nets.version(tool) is None:
            print(f"{tool}: left out ({brain_nets.PACKAGES[tool].distribution} is not installed)")
        else:
            available.append(tool)
    cases = []
    for title, relative, stripped in VOLUMES:
        path = data_dir / relative
        if not path.is_file():
            print(f"{title}: left out ({path} not found)")
            continue
        channel = load_channel(ChannelSource("volume", str(path)))
        image = resample([channel], spacing)["c0"]
        data = image.data[0].numpy()
        reference = None
        if stripped:  # the source's nonzero voxels, carried onto the grid by nearest neighbour (no ringing)
            source = tio.LabelMap(tensor=(channel.data != 0).to(torch.uint8), affine=channel.affine)
            reference = tio.Resample((image.spatial_shape, image.affine))(source).data[0].numpy() > 0
        case = Case(title, data, spacing, reference, load=_load())
        for tool in available:
            start = time.perf_counter()
            case.masks[tool] = brain_nets.brain_mask(tool, image, has_skull=not stripped, sequence="T1")
            case.seconds[tool] = [time.perf_counter() - start]
        fastest = min(available, key=lambda tool: case.seconds[tool][0])
        start = time.perf_counter()
        again = brain_nets.brain_mask(fastest, image, has_skull=not stripped, sequence="T1")
        case.seconds[fastest].append(time.perf_counter() - start)
        assert np.array_equal(again, case.masks[fastest]), f"{fastest} gave another mask the second time"
        cases.append(case)
        print(report([case]), flush=True)
    return cases


def report(cases: list[Case]) -> str:
    lines = []
    for case in cases:
        lines.append(f"\n{case.title}: grid {case.data.shape} at {case.spacing:g} mm, {case.load}")
        tools = list(case.masks)
        for tool in tools:
            mask = case.masks[tool]
            ml = mask.sum() * case.spacing**3 / 1000
            seconds = " then ".join(f"{s:.1f}" for s in case.seconds[tool])
            agreement = ", ".join(f"{other} {dice(mask, case.masks[other]):.3f}" for other in tools if other != tool)
            reference = f", reference {dice(mask, case.reference):.3f}" if case.reference is not None else ""
            lines.append(f"  {tool:15s} {ml:6.0f} ml  {seconds:>12s} s   Dice: {agreement}{reference}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("GLIOSCOPE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("data", nargs="?", type=Path, default=default, help="the shared data folder (holds nifti/)")
    parser.add_argument("--spacing", type=float, default=2.0, help="resampling in mm, as the recipe's (default 2)")
    parser.add_argument(
        "--tools", nargs="+", default=list(TOOLS), choices=[t for t in brain_nets.CHOICES if t not in ("auto", "none")]
    )
    args = parser.parse_args(argv)
    print(f"torch threads {torch.get_num_threads()}, cores {os.cpu_count()}, {_load()}")
    measure(args.data, args.tools, args.spacing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
