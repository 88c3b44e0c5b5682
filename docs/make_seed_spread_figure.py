"""Draw docs/seed_spread.png: each repeat's pooled patient AUC with its 95% bootstrap interval, per recipe.

    python docs/make_seed_spread_figure.py runs/radiomics-seeds runs/radiomics-rf-seeds -o docs/seed_spread.png

Each folder is one of `glioscope cv RECIPE --seeds ...`; the dashed line is the mean over repeats.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from glioscope.rundir import REPEATS, REPEATS_TABLE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="repeats folders of `glioscope cv --seeds`")
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/seed_spread.png"))
    parser.add_argument("--metric", default="macro_auc")
    args = parser.parse_args()
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=110)
    for position, folder in enumerate(args.folders):
        record = json.loads((folder / REPEATS).read_text(encoding="utf-8"))
        table = pd.read_csv(folder / REPEATS_TABLE)
        row = table[table["metric"] == args.metric].iloc[-1]  # the headline model: the last
        seeds = record["seeds"]
        for k, seed in enumerate(seeds):
            x = position + (k - (len(seeds) - 1) / 2) * 0.12
            low, high = row[f"seed{seed}_ci_low"], row[f"seed{seed}_ci_high"]
            ax.plot([x, x], [low, high], color=f"C{position}", lw=1.5)
            ax.plot(x, row[f"seed{seed}_pooled"], "o", color=f"C{position}", ms=4)
        ax.hlines(row["mean"], position - 0.35, position + 0.35, colors=f"C{position}", linestyles="dashed")
        ax.text(position + 0.37, row["mean"], f"{row['mean']:.2f} ± {row['sd']:.2f}", va="center", fontsize=8)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_xticks(range(len(args.folders)), [json.loads((f / REPEATS).read_text())["recipe"] for f in args.folders])
    ax.set_xlim(-0.6, len(args.folders) - 0.2)
    ax.set_ylabel(f"pooled patient {args.metric.replace('_', ' ')}")
    ax.set_title("One point per seed (split and training), with its 95% bootstrap interval", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
