"""Draw the skull strip of `glioscope.samples.volumes` on volumes with a skull: before (with the mask's outline) and after.

    python docs/make_skull_strip_figure.py T1_WITH_SKULL.nii.gz [MORE.nii.gz ...] [--phantom] [--titles ...] -o docs/skull_strip.png

Each volume gets two rows, three orthogonal slices through the centre of its brain mask:
the volume as resampled (canonical, `--spacing` mm) with the registered mask's outline in
red, then the volume multiplied by the mask. `--phantom` adds the T1 of a healthy IXI-style
subject of the built-in phantom (synthesised into a temporary folder, seconds). Slices are
shown as a radiologist does: axial with anterior up and the patient's right on the left,
coronal and sagittal with superior up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from glioscope.samples.volumes import skullstrip
from glioscope.samples.volumes.volume import ChannelSource, load_channel, resample


def strip(path: Path, spacing: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(volume, brain mask) as (D, H, W) arrays in display order, and the seconds the strip took."""
    image = resample([load_channel(ChannelSource("volume", str(path)))], spacing)["c0"]
    start = time.perf_counter()
    mask = skullstrip.brain_mask(image)
    seconds = time.perf_counter() - start
    data = image.data[0].numpy()
    low, high = np.percentile(data[mask], [0.5, 99.5])
    data = np.clip((data - low) / (high - low), 0, 1)
    display = [np.ascontiguousarray(a[::-1, ::-1, :].transpose(2, 1, 0)) for a in (data, mask)]
    return display[0], display[1], seconds


def views(array: np.ndarray, centre: tuple[int, int, int]) -> list[np.ndarray]:
    d, h, w = centre
    return [array[d], array[:, h][::-1], array[:, :, w][::-1]]


def draw(cases: list[tuple[str, np.ndarray, np.ndarray, float]], out: Path) -> None:
    fig, axes = plt.subplots(2 * len(cases), 3, figsize=(7.2, 2.5 * 2 * len(cases)), squeeze=False)
    for index, (title, volume, mask, seconds) in enumerate(cases):
        centre = tuple(int(c) for c in np.argwhere(mask).mean(axis=0))
        for column, (plane, section, outline) in enumerate(
            zip(("axial", "coronal", "sagittal"), views(volume, centre), views(mask, centre))
        ):
            before, after = axes[2 * index, column], axes[2 * index + 1, column]
            before.imshow(section, cmap="gray", vmin=0, vmax=1)
            before.contour(outline, levels=[0.5], colors="red", linewidths=0.6)
            after.imshow(section * outline, cmap="gray", vmin=0, vmax=1)
            before.set_title(plane, fontsize=8)
        axes[2 * index, 0].set_ylabel(f"{title}\nbefore", fontsize=8)
        axes[2 * index + 1, 0].set_ylabel(f"after ({seconds:.1f} s)", fontsize=8)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    fig.suptitle("Skull strip by registration to the MNI152 template (glioscope.samples.volumes)", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def phantom_t1(folder: Path) -> Path:
    from glioscope.synth import synthesize

    synthesize(folder / "phantom", preset="tiny", seed=0, progress=False)
    return min((folder / "phantom" / "ixi").glob("*-T1.nii.gz"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("volumes", nargs="*", type=Path, help="NIfTI volumes with a skull")
    parser.add_argument("--phantom", action="store_true", help="add a healthy phantom subject's T1 (IXI layout, 4 mm)")
    parser.add_argument("--spacing", type=float, default=2.0, help="resampling in mm (default 2)")
    parser.add_argument("--titles", nargs="*", default=[], help="a row title per volume (default: the file names)")
    parser.add_argument("-o", "--out", type=Path, default=Path(__file__).with_name("skull_strip.png"))
    args = parser.parse_args(argv)
    if not args.volumes and not args.phantom:
        parser.error("give at least one volume, or --phantom")
    with tempfile.TemporaryDirectory() as scratch:
        titles = args.titles + [p.name.split(".nii")[0][:32] for p in args.volumes[len(args.titles) :]]
        paths = list(zip(titles, args.volumes))
        if args.phantom:
            t1 = phantom_t1(Path(scratch))
            paths.append((f"phantom {t1.name.split('.nii')[0]}", t1))
        cases = []
        for title, path in paths:
            volume, mask, seconds = strip(path, args.spacing)
            print(f"{path.name}: brain mask {mask.sum() * args.spacing**3 / 1000:.0f} ml, {seconds:.1f} s")
            cases.append((title, volume, mask, seconds))
        draw(cases, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
