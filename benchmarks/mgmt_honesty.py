"""Sweep the phantom's MGMT effect size through the whole pipeline; plot patient-level AUC with 95% CIs.

    python benchmarks/mgmt_honesty.py [--effects 0 0.5 1 2 3 5] [--patients 40] [--seed 0] [--out bench-out/mgmt_honesty]

For each effect size: write an RSNA-MICCAI phantom cohort (glioscope.honesty.QUICK_PRESET:
grade IV subjects on a 2 mm grid), ingest it, cross-validate the quick honesty settings
and pool the out-of-fold patient probabilities. Writes OUT/honesty.csv and OUT/honesty.png.
At effect 0 the interval must cover 0.5; the larger the effect, the higher it should lie.
A benchmark, not a test: about one and a half minutes per effect size for 40 patients
on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from glioscope.honesty import QUICK_PRESET, check
from glioscope.util import atomic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--effects", type=float, nargs="+", default=[0, 0.5, 1, 2, 3, 5])
    parser.add_argument("--patients", type=int, default=QUICK_PRESET.n_grade_iv, help="grade IV phantom subjects")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench-out/mgmt_honesty"))
    args = parser.parse_args()
    rows = []
    for effect in args.effects:
        work = args.out / f"effect{effect:g}"
        shutil.rmtree(work, ignore_errors=True)
        preset = replace(QUICK_PRESET, n_grade_iv=args.patients)
        result = check(work, effect, preset=preset, seed=args.seed, progress=True)
        rows.append(
            {k: v for k, v in result.items() if k != "ci"} | {"ci_low": result["ci"][0], "ci_high": result["ci"][1]}
        )
        print(
            f"effect {effect:g}: patient AUC {result['auc']:.3f} [{result['ci'][0]:.3f}, {result['ci'][1]:.3f}] "
            f"({result['n_patients']} patients, {result['seconds']:.0f} s)",
            flush=True,
        )
    table = pd.DataFrame(rows)
    atomic.write_csv(args.out / "honesty.csv", table)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(
        table["mgmt_effect"],
        table["auc"],
        yerr=[table["auc"] - table["ci_low"], table["ci_high"] - table["auc"]],
        fmt="o-",
        capsize=4,
    )
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("phantom mgmt_effect (standard deviations)")
    ax.set_ylabel("patient-level AUC (95% CI)")
    ax.set_title(f"MGMT honesty check, {args.patients} phantom patients, seed {args.seed}", fontsize=9)
    ax.set_ylim(0, 1)
    fig.tight_layout()
    tmp = args.out / "honesty.tmp.png"
    fig.savefig(tmp, dpi=120)
    tmp.replace(args.out / "honesty.png")
    print(table.to_string(index=False))
    print(f"Plot: {args.out / 'honesty.png'}")


if __name__ == "__main__":
    main()
