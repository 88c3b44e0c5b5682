"""Small cohorts with tumour masks: a radiomics baseline beside deep recipes, on the same patient folds.

    python benchmarks/small_cohort.py COHORT_SOURCE [--pretrain IMAGE_FOLDERS] [--out OUT] [--folds 3]
    python benchmarks/small_cohort.py --phantom [--pretrain IMAGE_FOLDERS] [--out OUT]
    python benchmarks/small_cohort.py SOURCE --weights supervised=W1.pt simclr=W2.pt   # weights made earlier

COHORT_SOURCE is any folder `glioscope ingest` reads with masks: a kaggle_3m layout
(TCGA-LGG, one TIF per slice and its _mask.tif, grades in data.csv), a BraTS layout with
seg files, or a manifest with mask_path. `--phantom` synthesises the demo phantom's BraTS
layout instead (36 patients of grades II, III and IV, 2 mm grid).

On one set of patient-level folds it runs, in this order, and times each:
  radiomics        PyRadiomics features in the tumour mask, logistic regression (L1 or L2, inner CV)
  radiomics-rf     the same features, a 500-tree random forest
  alexnet          AlexNet from scratch on the middle 20% of the slices, the SDL paper's --quick schedule
  alexnet-tumour   the tumour slices, cropped, votes weighted by tumour area, its --quick CPU schedule
and, with --pretrain (image folders of other patients, e.g. the four-class tumour-type set):
  + supervised     alexnet-tumour from an AlexNet pretrained on those folders' labels
  + simclr         alexnet-tumour from an AlexNet pretrained on the same images without labels (SimCLR)
`--network r18` adds r18-tumour from scratch and uses it for the pretrained rows instead.
(or with --weights, from weights files made earlier by `glioscope pretrain`). The
pretraining data are leak-checked against the cohort (`--exclude`, and again by the runner). It writes
OUT/results.csv and OUT/results.md (patient-level AUC pooled over the folds with its 95%
bootstrap interval, wall time), OUT/comparison.html, and every run folder. Two-class
cohorts report the AUC of the second class's probability; more classes, the macro AUC.
About an hour and a quarter on 2 cores for ~100 kaggle_3m patients with --pretrain (estimated from
the rates measured on the phantom and the six-patient sample: each tumour row 15-20 minutes).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import pandas as pd

from glioscope.cli import main as glioscope

# The from-scratch baseline: the SDL paper's AlexNet and --quick schedule on the middle 20% of each volume's slices
# (kaggle_3m, one image per slice: every slice), whether they show the tumour or not.
BASELINE = [
    "task.classes=null",
    "data.select={}",
    "data.slices.channels=[T1,FLAIR,T1c]",
    "model.weights=none",
    "data.slices.selection=middle",
    "data.slices.middle_fraction=0.2",
]
PRETRAIN_DATA = [
    "data.slices.selection=all",
    "data.slices.roi_crop=false",
    "data.slices.channels=stack3",
    "data.slices.vote=mean",
    "data.slices.size=128",
    "data.select={}",
    "model.weights=none",
    "train.batch_size=32",
]  # the recipe's Adam 1e-4 for supervised; SimCLR: pretrain's own defaults


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _run(args: list[str]) -> tuple[float, float]:
    """Run one glioscope command; its wall and CPU seconds (a shared machine inflates the wall time)."""
    print("$ glioscope " + " ".join(args), file=sys.stderr, flush=True)
    start, cpu = time.perf_counter(), _cpu()
    code = glioscope(args)
    if code:
        raise SystemExit(f"glioscope {args[0]} failed (exit {code})")
    return time.perf_counter() - start, _cpu() - cpu


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def _auc(run: Path) -> tuple[str, float, float, float, int]:
    metrics = json.loads((run / "metrics.json").read_text())
    model = metrics["models"][-1]  # SDL-like runs list their members first, the headline last
    patient = metrics["cv"][model]["patient"]
    low, high = patient["ci"]["macro_auc"]
    return model, patient["pooled"]["macro_auc"], low, high, patient["n_patients"]


def _cohort(source: Path | None, out: Path) -> Path:
    if source is None:
        from glioscope.synth import synthesize

        if not (out / "phantom" / "brats").is_dir():  # a rerun reuses it
            synthesize(out / "phantom", preset="demo", seed=0, layouts=["brats"], progress=False)
        source = out / "phantom" / "brats"
    _run(["ingest", str(source), "-o", str(out / "cohort"), "--overwrite"])
    return out / "cohort"


def _pretrain(
    recipe: str, folders: Path, cohort: Path, out: Path, epochs: int, every: int
) -> dict[str, tuple[Path, float]]:
    """Supervised and SimCLR weights of the tumour recipe's backbone from image folders: {name: (weights, seconds)}."""
    _run(["ingest", str(folders), "--format", "imagefolder", "-o", str(out / "pretrain-cohort"), "--overwrite"])
    if every > 1:  # every k-th image, for a CPU: the cohort table thinned in place
        table = out / "pretrain-cohort" / "cohort.csv"
        frame = pd.read_csv(table, dtype=str, keep_default_na=False)
        frame.iloc[::every].to_csv(table, index=False)
    made = {}
    for method in ("supervised", "simclr"):
        target = out / f"pretrain-{method}"
        seconds, _ = _run(
            [
                "pretrain",
                recipe,
                "--cohort",
                str(out / "pretrain-cohort"),
                "--method",
                method,
                "--exclude",
                str(cohort),
                "-o",
                str(target),
                *(["--resume"] if target.exists() else []),
                *_sets(PRETRAIN_DATA + [f"train.epochs={epochs}"]),
            ]
        )
        made[method] = (target / "weights.pt", seconds)
    return made


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, nargs="?", help="a folder with tumour masks (kaggle_3m, BraTS, manifest)")
    parser.add_argument("--phantom", action="store_true", help="the demo phantom's BraTS layout instead of SOURCE")
    parser.add_argument(
        "--pretrain",
        type=Path,
        default=None,
        metavar="IMAGE_FOLDERS",
        help="labelled image folders of other patients, to pretrain on (supervised and SimCLR)",
    )
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--pretrain-every", type=int, default=4, help="pretrain on every k-th image (default 4)")
    parser.add_argument(
        "--weights",
        nargs="+",
        default=[],
        metavar="METHOD=PATH",
        help="weights made earlier by glioscope pretrain, e.g. supervised=W.pt simclr=S.pt",
    )
    parser.add_argument(
        "--network",
        default="alexnet",
        choices=("alexnet", "r18"),
        help="the tumour recipe the pretrained rows use (r18: also r18-tumour from scratch)",
    )
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("small-cohort-benchmark"))
    parser.add_argument("--skip", nargs="*", default=[], help="names of rows to leave out (e.g. alexnet)")
    args = parser.parse_args(argv)
    if (args.source is None) == (not args.phantom):
        parser.error("give a SOURCE folder or --phantom")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    cohort = _cohort(None if args.phantom else args.source, out)
    splits = out / "splits"
    _run(
        [
            "split",
            str(cohort),
            "--folds",
            str(args.folds),
            "--seed",
            str(args.seed),
            "-o",
            str(splits),
            "--drop-unlabelled",
            "--overwrite",
        ]
    )
    common = ["--cohort", str(cohort), "--splits", str(splits)]
    rows = [
        ("radiomics", "radiomics", [], False),
        ("radiomics-rf", "radiomics-rf", [], False),
        ("alexnet", "alexnet", BASELINE, True),
        ("alexnet-tumour", "alexnet-tumour", ["model.weights=none"], True),
    ]
    tumour = f"{args.network}-tumour"
    if args.network != "alexnet":
        rows.append((tumour, tumour, ["model.weights=none"], True))
    pretrained = {m: (Path(w), None) for m, _, w in (item.partition("=") for item in args.weights)}
    if args.pretrain is not None:
        pretrained = _pretrain(tumour, args.pretrain, cohort, out, args.pretrain_epochs, args.pretrain_every)
    for method, (weights, _) in pretrained.items():
        rows.append((f"{tumour} + {method}", tumour, [f"model.weights={weights}"], True))
    results = []
    for label, recipe, settings, quick in rows:
        if label in args.skip:
            continue
        run = out / "runs" / label.replace(" + ", "-")
        seconds, cpu_seconds = _run(
            ["cv", recipe, *common, "-o", str(run), *(["--quick"] if quick else []), *_sets(settings)]
        )
        model, auc, low, high, n = _auc(run)
        results.append(
            {
                "row": label,
                "run": str(run),
                "model": model,
                "patients": n,
                "auc": auc,
                "auc_low": low,
                "auc_high": high,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "pretraining_seconds": pretrained.get(label.split(" + ")[-1], (None, None))[1],
            }
        )
    table = pd.DataFrame(results)
    table.to_csv(out / "results.csv", index=False)
    lines = ["| recipe | patients | patient AUC [95% CI] | wall time | CPU time |", "|---|---|---|---|---|"]
    for r in results:
        extra = f" (+ {r['pretraining_seconds'] / 60:.1f} min pretraining)" if r["pretraining_seconds"] else ""
        lines.append(
            f"| {r['row']} | {r['patients']} | {r['auc']:.2f} [{r['auc_low']:.2f}, {r['auc_high']:.2f}] "
            f"| {r['seconds'] / 60:.1f} min{extra} | {r['cpu_seconds'] / 60:.1f} min |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _run(["compare", *[r["run"] for r in results], "-o", str(out / "comparison.html")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
