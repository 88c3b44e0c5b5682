"""docs/paired_demo.png: the paired differences of a comparison's models, from its CSV of paired tests.

    glioscope compare demo-output/runs/sdl demo-output/runs/alexnet demo-output/runs/radiomics \
        demo-output/runs/radiomics-rf -o demo-output/comparison.html
    python docs/make_paired_figure.py demo-output/comparison_paired.csv -o docs/paired_demo.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from glioscope.report import figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paired_csv", type=Path, help="a comparison's <name>_paired.csv")
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/paired_demo.png"))
    parser.add_argument("--title", default="The demo's models, paired on the same 36 phantom patients")
    args = parser.parse_args()
    pairs = pd.read_csv(args.paired_csv)
    args.out.write_bytes(figures.png(figures.paired_differences(pairs, args.title)))
    print(f"Figure: {args.out}")


if __name__ == "__main__":
    main()
