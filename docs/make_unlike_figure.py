"""docs/unlike_training.png: how far from a run's training patients other cohorts lie, beside the run's own held-out
patients and the threshold beyond which a prediction is flagged.

    python docs/make_unlike_figure.py runs/phantom-alexnet \
        "fresh phantom=cohorts/phantom-seed1" "kaggle_3m=cohorts/dev" "BraTS 2021=data/BraTS2021_00006" \
        -o docs/unlike_training.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from glioscope.batch import predict_batch
from glioscope.evaluate.typicality import held_out_summary
from glioscope.report import figures
from glioscope.rundir import TYPICALITY


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (its calibration is made on first use)")
    parser.add_argument("inputs", nargs="+", metavar="NAME=PATH", help="a name and an input of batch prediction")
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/unlike_training.png"))
    args = parser.parse_args()
    groups = []
    for pair in args.inputs:
        name, path = pair.split("=", 1)
        result = predict_batch(args.run, [Path(path)], progress=False)
        found = [p["unlike_training"] for p in result["patients"] if p.get("unlike_training")]
        groups.append(
            (f"{name}\n({len(found)} patient{'s' * (len(found) != 1)})", np.array([u["distance"] for u in found]))
        )
        print(name, f"{sum(u['warning'] for u in found)} of {len(found)} flagged")
    calibration = held_out_summary(args.run / TYPICALITY)
    groups.insert(
        0, (f"held-out CV patients\n({calibration['n']}, the calibration)", np.asarray(calibration["held_out"]))
    )
    fig = figures.new_figure(7, 3.2)
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    for k, (name, distances) in enumerate(groups):
        ax.scatter(distances, k + rng.uniform(-0.18, 0.18, len(distances)), s=12, alpha=0.7, color=f"C{k}")
    ax.axvline(calibration["distance_threshold"], color="#c53030", linestyle="--", label="flagged beyond (p < 0.05)")
    ax.set_xscale("log")
    ax.set_yticks(range(len(groups)), [g[0] for g in groups], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("distance to the 5 nearest training patients (reference SDs per feature, log scale)", fontsize=8)
    ax.set_title("A run trained only on the phantom: how unlike its training data each patient is", fontsize=9)
    ax.legend(fontsize=8)
    args.out.write_bytes(figures.png(fig))
    print(f"Figure: {args.out}")


if __name__ == "__main__":
    main()
