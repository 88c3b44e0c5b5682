"""docs/sites_dev.png: a run's patients per class of each site and its AUC overall, within each site and of the
site alone (the figure of the run report's section on sites).

    glioscope cv radiomics-rf --cohort cohorts/dev --folds 3 -o runs/rf-dev
    python docs/make_sites_figure.py runs/rf-dev -o docs/sites_dev.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from glioscope.evaluate.run import load_metrics
from glioscope.report import figures
from glioscope.report.sites import site_figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an evaluated run folder whose cohort tells two sites apart")
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/sites_dev.png"))
    args = parser.parse_args()
    metrics = load_metrics(args.run)
    if len((metrics.get("sites") or {}).get("names") or []) < 2:
        raise SystemExit(f"{args.run}: its cohort tells no two sites apart")
    args.out.write_bytes(figures.png(site_figure(metrics)))
    print(f"Figure: {args.out}")


if __name__ == "__main__":
    main()
