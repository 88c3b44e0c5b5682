"""Draw several `glioscope curve` outputs of one recipe (e.g. one per --seed) in one figure, with their mean.

    python docs/make_curve_figure.py CURVE_SEED0 CURVE_SEED1 CURVE_SEED2 --title "radiomics-rf, dev cohort" \
        -o docs/learning_curve_dev.png

Each output folder's curve.csv gives one thin line (its pooled held-out patient AUC) with its 95% bootstrap band;
the thick line is the mean AUC over the folders at each fraction (labels: each folder's --seed). The mean over seeds is printed as a table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from glioscope.report.figures import new_figure, png


def _label(folder: Path) -> str:
    """A curve's name in the legend: its seed (curve.json), else its folder's name."""
    settings = json.loads((folder / "curve.json").read_text(encoding="utf-8")).get("settings", {})
    return f"seed {settings['seed']}" if settings.get("seed") is not None else folder.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("curves", type=Path, nargs="+", help="output folders of glioscope curve")
    parser.add_argument("--title", default="")
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    tables = [pd.read_csv(folder / "curve.csv").assign(curve=_label(folder)) for folder in args.curves]
    fig = new_figure(5.6, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    for table in tables:
        x = table["train_patients_mean"]
        ax.fill_between(x, table["auc_low"], table["auc_high"], alpha=0.08, color="#2b6cb0")
        ax.plot(x, table["auc"], "o-", lw=1, ms=3, alpha=0.6, label=table["curve"].iloc[0])
    mean = pd.concat(tables).groupby("fraction")[["train_patients_mean", "auc", "accuracy"]].mean().reset_index()
    ax.plot(mean["train_patients_mean"], mean["auc"], "o-", lw=2.5, color="#1d2330", label="mean")
    ax.axhline(0.5, color="#c53030", ls="--", lw=1, label="chance")
    ax.set_xlabel("training patients per fold")
    ax.set_ylabel("held-out patient AUC")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(args.title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    args.out.write_bytes(png(fig))
    print(mean.round(3).to_string(index=False))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
