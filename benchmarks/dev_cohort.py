"""Recipes on a small real cohort, measured as a 30-patient cohort needs: repeated patient-level CV and across sites.

    python benchmarks/dev_cohort.py KAGGLE_3M_FOLDER [--recipes radiomics radiomics-rf ...] [--seeds 0 1 2 3 4]
    python benchmarks/dev_cohort.py --phantom [--recipes ...]
    python benchmarks/dev_cohort.py SOURCE --recipes "alexnet-tumour --quick" "deepfeat-lite0 --set classifier.model=forest"

With 30 patients one CV is noise: every recipe runs on the same patient-level folds of each
split seed (`glioscope split --folds F --seed s`), and the table gives the mean and the SD of
the pooled patient AUC over the seeds, with their range. When patient ids carry a site (the
second token of a TCGA id, as TCGA_CS_4941: site CS) and there are two sites, each recipe is
also trained by CV on one site's patients and its fold models are tested on the other's with
`glioscope test` (CS -> FG, FG -> CS), AUC with its bootstrap interval; and the grade AUC of the
same CV predictions among each site's patients alone (a model that learnt the site ranks
patients well across the sites and near chance within each). Two-class cohorts
report the AUC of the second class's probability; more classes, the macro AUC.

A recipe is a name or YAML file, optionally followed by `--quick` and `--set key=value`
words in the same argument. Runs are kept under OUT/runs/<recipe label>/<seed>; a rerun
reuses every finished run (delete its folder to measure it again). It writes OUT/results.csv
(one row per recipe and seed or site pair, with wall and CPU seconds; rows of earlier invocations
for other recipes or seeds are kept) and OUT/results.md.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from glioscope.cli import main as glioscope

SITE = re.compile(r"^[A-Za-z]+[-_]([A-Za-z0-9]{2})[-_]")  # TCGA_CS_4941 -> CS
COHORT_TABLE = "cohort.csv"  # what `glioscope ingest` writes into a cohort folder
PATIENT_TABLE = "predictions_patients.csv"  # a run's patient-level predictions, written by its evaluation


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _run(args: list[str]) -> tuple[float, float]:
    """Run one glioscope command; its wall and CPU seconds."""
    print("$ glioscope " + " ".join(args), file=sys.stderr, flush=True)
    start, cpu = time.perf_counter(), _cpu()
    code = glioscope(args)
    if code:
        raise SystemExit(f"glioscope {args[0]} failed (exit {code})")
    return time.perf_counter() - start, _cpu() - cpu


def _label(spec: str) -> tuple[str, list[str]]:
    """(label, cv arguments) of a recipe argument such as "alexnet-tumour --quick --set train.epochs=5"."""
    words = shlex.split(spec)
    label = " ".join(w for w in words if w != "--set").replace("model.", "").replace("classifier.", "")
    return label, words


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", label).strip("_")


def _cv_auc(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    model = metrics["models"][-1]  # members first, the headline last
    patient = metrics["cv"][model]["patient"]
    low, high = patient["ci"]["macro_auc"]
    folds = [f.get("macro_auc", np.nan) for f in patient.get("per_fold", [])]
    return {
        "model": model,
        "auc": patient["pooled"]["macro_auc"],
        "low": low,
        "high": high,
        "patients": patient["n_patients"],
        "fold_mean": float(np.nanmean(folds)) if folds else np.nan,
        **_within_sites(run, model),
    }


def _within_sites(run: Path, model: str) -> dict:
    """The grade AUC among each site's patients alone, from the same pooled CV predictions: a model that learnt the
    site rather than the grade ranks well across sites and near chance within each."""
    table = pd.read_csv(run / PATIENT_TABLE, dtype={"patient_id": str})
    table = table[(table["model"] == model) & (table["set"] == "cv")]
    sites = table["patient_id"].str.extract(SITE)[0]
    found = {}
    for site in sorted(sites.dropna().unique()):
        rows = table[sites == site]
        if rows["target"].nunique() == 2:
            found[f"auc_{site}"] = float(roc_auc_score(rows["target"], rows.filter(like="prob_").iloc[:, -1]))
    return found


def _test_auc(folder: Path) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    model = json.loads((folder / "run.json").read_text())["external"]["headline"]  # the fold models' ensemble
    patient = metrics["test"][model]["patient"]
    low, high = patient["ci"]["macro_auc"]
    return {"model": model, "auc": patient["pooled"]["macro_auc"], "low": low, "high": high,
            "patients": patient["n_patients"]}  # fmt: skip


def _sites(cohort: Path, out: Path) -> dict[str, Path]:
    """One cohort folder per site when the patient ids name exactly two; {} otherwise."""
    frame = pd.read_csv(cohort / COHORT_TABLE, dtype=str, keep_default_na=False)
    sites = frame["patient_id"].str.extract(SITE)[0]
    if sites.isna().any() or sites.nunique() != 2:
        return {}
    made = {}
    for site in sorted(sites.unique()):
        folder = out / f"cohort-{site}"
        folder.mkdir(parents=True, exist_ok=True)
        frame[sites == site].to_csv(folder / COHORT_TABLE, index=False)
        made[site] = folder
    return made


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, nargs="?", help="a folder `glioscope ingest` reads, with masks")
    parser.add_argument("--phantom", action="store_true", help="the demo phantom's BraTS layout instead of SOURCE")
    parser.add_argument("--recipes", nargs="+", default=["radiomics", "radiomics-rf"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--no-sites", action="store_true", help="skip the across-site tests")
    parser.add_argument("--out", type=Path, default=Path("dev-cohort-benchmark"))
    args = parser.parse_args(argv)
    if (args.source is None) == (not args.phantom):
        parser.error("give a SOURCE folder or --phantom")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    source = args.source
    if args.phantom:
        from glioscope.synth import synthesize

        if not (out / "phantom" / "brats").is_dir():
            synthesize(out / "phantom", preset="demo", seed=0, layouts=["brats"], progress=False)
        source = out / "phantom" / "brats"
    cohort = out / "cohort"
    if not (cohort / COHORT_TABLE).is_file():
        _run(["ingest", str(source), "-o", str(cohort), "--overwrite"])
    rows = []
    for seed in args.seeds:
        splits = out / "splits" / f"seed{seed}"
        if not (splits / "splits.csv").is_file():
            _run(["split", str(cohort), "--folds", str(args.folds), "--seed", str(seed), "-o", str(splits),
                  "--drop-unlabelled", "--overwrite"])  # fmt: skip
        for spec in args.recipes:
            label, words = _label(spec)
            run = out / "runs" / _slug(label) / f"seed{seed}"
            wall = cpu = np.nan
            if not (run / "metrics.json").is_file():
                wall, cpu = _run(["cv", *words, "--cohort", str(cohort), "--splits", str(splits), "-o", str(run)])
            rows.append({"recipe": label, "evaluation": f"cv seed {seed}", **_cv_auc(run), "wall_s": wall,
                         "cpu_s": cpu})  # fmt: skip
            _write(out, rows)
    sites = {} if args.no_sites else _sites(cohort, out)
    for train_site, test_site in ([tuple(sites)] + [tuple(reversed(list(sites)))]) if sites else []:
        for spec in args.recipes:
            label, words = _label(spec)
            run = out / "runs" / _slug(label) / f"site-{train_site}"
            wall = cpu = np.nan
            if not (run / "metrics.json").is_file():
                wall, cpu = _run(["cv", *words, "--cohort", str(sites[train_site]), "--folds", str(args.folds),
                                  "-o", str(run)])  # fmt: skip
            tested = out / "tests" / _slug(label) / f"{train_site}-to-{test_site}"
            if not (tested / "metrics.json").is_file():
                _run(["test", str(run), "--cohort", str(sites[test_site]), "-o", str(tested), "--overwrite"])
            rows.append({"recipe": label, "evaluation": f"{train_site} -> {test_site}", **_test_auc(tested),
                         "wall_s": wall, "cpu_s": cpu})  # fmt: skip
            _write(out, rows)
    print((out / "results.md").read_text())
    return 0


def _write(out: Path, rows: list[dict]) -> None:
    """results.csv and .md: this invocation's rows, and those of earlier ones for other recipes or evaluations."""
    frame = pd.DataFrame(rows)
    earlier = out / "results.csv"
    if earlier.is_file():
        kept = pd.read_csv(earlier)
        done = set(zip(frame["recipe"], frame["evaluation"]))
        timed = kept.set_index(["recipe", "evaluation"])[["wall_s", "cpu_s"]]
        for k, row in frame.iterrows():  # a reused run keeps the time measured when it ran
            key = (row["recipe"], row["evaluation"])
            if np.isnan(row["wall_s"]) and key in timed.index:
                frame.loc[k, ["wall_s", "cpu_s"]] = timed.loc[key].to_numpy()
        kept = kept[[(r, e) not in done for r, e in zip(kept["recipe"], kept["evaluation"])]]
        frame = pd.concat([kept, frame], ignore_index=True)
    frame.to_csv(out / "results.csv", index=False)
    lines = [
        "| recipe | repeated CV: pooled patient AUC, mean ± SD (range) | seeds | the same CV within each site | "
        "CV wall s | across sites |",
        "|---|---|---|---|---|---|",
    ]
    for recipe, group in frame.groupby("recipe", sort=False):
        cv = group[group["evaluation"].str.startswith("cv")]
        across = group[~group["evaluation"].str.startswith("cv")]
        spread = (
            f"{cv['auc'].mean():.3f} ± {cv['auc'].std(ddof=1) if len(cv) > 1 else 0:.3f} "
            f"({cv['auc'].min():.2f}-{cv['auc'].max():.2f})"
            if len(cv)
            else "-"
        )
        sites = "; ".join(f"{r.evaluation}: {r.auc:.2f} [{r.low:.2f}, {r.high:.2f}]" for r in across.itertuples())
        within = "; ".join(
            f"{c[4:]} {cv[c].mean():.2f}" for c in sorted(frame.columns) if c.startswith("auc_") and cv[c].notna().any()
        )
        lines.append(
            f"| {recipe} | {spread} | {len(cv)} | {within or '-'} | {cv['wall_s'].mean():.0f} | {sites or '-'} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
