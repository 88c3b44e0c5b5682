"""The coverage of conformal prediction sets on an independent phantom cohort, at several levels.

python benchmarks/conformal_coverage.py OUT                          # 60 training, 120 test patients
python benchmarks/conformal_coverage.py OUT2 --train-seed 2   # another training cohort, the same test

Two phantom cohorts of grade II, III and IV subjects (the tiny preset's 4 mm grid, --train and --test
subjects a grade, synth seeds --train-seed and --test-seed: other subjects), each patient's T1c volume
and tumour mask as a cohort (the BraTS layout through a manifest, as the demo's radiomics baseline).
The radiomics baseline (--quick, 5 folds) is trained on the first; `glioscope test` applies it to the
second at each level, standard and Mondrian, and the coverage of the sets, its 95% Clopper-Pearson
interval, the shares of uncertain and empty sets and the mean set size are printed as a table.
Everything is kept under OUT: a second call reuses what is there.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from glioscope.cli import main
from glioscope.synth import synthesize
from glioscope.synth.presets import PRESETS


def cohort(root: Path, name: str, per_grade: int, seed: int) -> Path:
    """A graded phantom's T1c volumes and masks as a cohort, its ids prefixed with `name` (seeds reuse ids)."""
    phantom, out = root / f"phantom-{name}", root / f"cohort-{name}"
    if not phantom.exists():
        preset = replace(PRESETS["tiny"], n_per_grade=per_grade, n_healthy=0, montage_per_class=1)
        synthesize(phantom, preset, seed=seed, layouts=["brats"], progress=False)
    truth = pd.read_csv(phantom / "truth.csv", dtype=str, keep_default_na=False)
    brats = phantom / json.loads((phantom / "synth.json").read_text())["layouts"]["brats"]
    rows = [
        {
            "path": brats / s.brats_id / f"{s.brats_id}_t1ce.nii.gz",
            "patient_id": f"{name}-{s.subject}",
            "label": s.grade,
            "sequence": "T1c",
            "mask_path": brats / s.brats_id / f"{s.brats_id}_seg.nii.gz",
        }
        for s in truth.itertuples()
        if s.brats_id
    ]
    pd.DataFrame(rows).to_csv(root / f"{name}.csv", index=False)
    if not out.exists():
        assert (
            main(["ingest", str(root / f"{name}.csv"), "--format", "manifest", "--workers", "1", "-o", str(out)]) == 0
        )
    return out


def row(found: dict) -> str:
    per = "; ".join(
        f"{k} {v['coverage']:.2f} [{v['ci'][0]:.2f}, {v['ci'][1]:.2f}]"
        for k, v in (found.get("per_class") or {}).items()
    )
    return (
        f"| {found['level']:g} | {'Mondrian' if found['mondrian'] else 'standard'} | {found['coverage']:.3f} "
        f"[{found['ci'][0]:.3f}, {found['ci'][1]:.3f}] | {found['uncertain']:.0%} | {found['empty']:.0%} | "
        f"{found['mean_set_size']:.2f} | {per} |"
    )


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=20, help="training subjects a grade")
    parser.add_argument("--test", type=int, default=40, help="test subjects a grade")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--test-seed", type=int, default=1)
    parser.add_argument("--levels", nargs="+", default=["0.8", "0.9", "0.95"])
    args = parser.parse_args()
    root = args.out
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train = cohort(root, "train", args.train, args.train_seed)
    test = cohort(root, "test", args.test, args.test_seed)
    run_dir = root / "run"
    if not run_dir.exists():
        assert main(["cv", "radiomics", "--quick", "--cohort", str(train), "-o", str(run_dir)]) == 0
    lines = []
    for level in args.levels:
        for extra in ([], ["--mondrian"]):
            out = root / f"test-{level}{'-mondrian' if extra else ''}"
            args_test = ["test", str(run_dir), "--cohort", str(test), "-o", str(out), "--level", level, "--overwrite"]
            assert main([*args_test, *extra]) == 0
            lines.append(row(json.loads((out / "metrics.json").read_text())["conformal"]))
    print("| level | sets | coverage [95% CI] | uncertain | empty | mean size | per class |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    run()
