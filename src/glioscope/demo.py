"""`glioscope demo`: the main job, end to end, on the built-in phantom cohort.

Synthesise the `demo` phantom, ingest its image folder (axial T1 post-contrast
slices through the tumour, patient ids in the file names), split the grade II /
III / IV patients into 3 stratified folds, train SDL (an AlexNet pair) and a
single AlexNet from scratch on the same folds with a short schedule, fit the
radiomics baselines (PyRadiomics features in each patient's tumour segmentation,
from the phantom's BraTS volumes under the same patient ids) on the same folds,
and write their reports and a comparison, with paired tests of every pair of their headline models (SDL's
mean against AlexNet first).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from glioscope import __version__, split
from glioscope.ingest import ingest
from glioscope.methods import load_recipe
from glioscope.report import comparison_rows, headline_text, write_comparison
from glioscope.report.paired import paired_csv_path, paired_text
from glioscope.rundir import FEATURES, REPORT
from glioscope.split import SPLITS
from glioscope.synth import synthesize
from glioscope.util import extras
from glioscope.util.atomic import write_csv

DEMO_PRESET = "demo"
PATIENT_REGEX = r"^(?P<patient>[^_]+)_"
GRADES = {"label": ["II", "III", "IV"]}
# The short schedule: the recipes' own settings otherwise (AlexNet members, 128 px,
# rotation +-10 degrees, lambda 3). Adam starts AlexNet from scratch faster than SGD.
SHORT_SCHEDULE = [
    "data.select={}",
    "train.optimizer=adam",
    "train.lr=0.0001",
    "train.epochs=15",
    "evaluate.bootstrap=500",
]
RADIOMICS = ("radiomics", "radiomics-rf")
# The comparison's order: the two deep models the demo is about first, so that their pair is the first paired test
# and the per-fold comparison, then the radiomics baselines.
COMPARED = ("sdl", "alexnet", *RADIOMICS)
# The sequence the deep models see, as the phantom's BraTS volume (its segmentation is the tumour mask).
RADIOMICS_SEQUENCES = {"T1c": "t1ce"}


def _phantom(out: Path, seed: int) -> Path:
    """Synthesise the demo phantom, or reuse one written earlier with the same settings."""
    phantom = out / "phantom"
    manifest = phantom / "synth.json"
    if manifest.is_file():
        previous = json.loads(manifest.read_text())
        wanted = {"preset": DEMO_PRESET, "seed": seed, "glioscope_version": __version__}
        if all(previous.get(key) == value for key, value in wanted.items()):
            print(f"Reusing the phantom cohort in {phantom}")
            return phantom
    print(f"Synthesising the '{DEMO_PRESET}' phantom cohort (seed {seed}) in {phantom}")
    synthesize(phantom, preset=DEMO_PRESET, seed=seed, overwrite=True)
    return phantom


def run_demo(out: Path, seed: int = 0) -> dict:
    """Synthesise, ingest, split by patient, train SDL and AlexNet, fit the radiomics baselines, compare; print
    where everything is."""
    start = time.perf_counter()
    extras.require("radiomics", "the demo's radiomics baselines")  # before minutes of training, not after
    out = Path(out)
    phantom = _phantom(out, seed)

    print("\nIngesting the image folder (grades II, III, IV; patient id from each file name)")
    cohort_dir = out / "cohort"
    frame, _ = ingest(
        [phantom / "imagefolder"],
        cohort_dir,
        format="imagefolder",
        patient_regex=PATIENT_REGEX,
        select=GRADES,
        overwrite=True,
    )

    print("\nSplitting by patient: 3 stratified folds")
    table, meta = split.make_splits(frame, folds=3, seed=seed)
    meta["cohort"] = str(cohort_dir)
    splits_dir = split.save(out / "splits", table, meta, overwrite=True)
    print(split.format_split(meta))

    runs = {}
    for name in ("sdl", "alexnet"):
        print(f"\nTraining {name} from scratch on the 3 folds")
        method, recipe = load_recipe(name, SHORT_SCHEDULE + ["model.weights=none", f"train.seed={seed}"], quick=True)
        runs[name] = method.run(
            recipe,
            cohort_dir,
            out / "runs" / name,
            splits=splits_dir,
            resume=_resumable(out / "runs" / name),
            cache_dir=out / "cache",
        )
        print(headline_text(runs[name]))

    print(
        "\nRadiomics baselines on the same folds: PyRadiomics features of the T1c volume inside each patient's "
        "tumour segmentation (the phantom's BraTS layout, the same patients)"
    )
    radiomics_cohort = _radiomics_cohort(phantom, out)
    for name in RADIOMICS:
        method, recipe = load_recipe(
            name, ["evaluate.bootstrap=500", f"classifier.seed={seed}", f"data.cache={out / 'cache'}"], quick=True
        )
        runs[name] = method.run(
            recipe, radiomics_cohort, out / "runs" / name, splits=splits_dir, resume=_resumable(out / "runs" / name)
        )
        print(headline_text(runs[name]))

    comparison = compare(runs, out / "comparison.html")

    paths = {
        "comparison": comparison,
        "paired tests": paired_csv_path(comparison),
        "SDL report": runs["sdl"] / REPORT,
        "AlexNet report": runs["alexnet"] / REPORT,
        "radiomics report": runs["radiomics"] / REPORT,
        "radiomics-rf report": runs["radiomics-rf"] / REPORT,
        "radiomics features": runs["radiomics"] / FEATURES,
        "montage": phantom / "montage.png",
        "phantom": phantom,
        "cohort summary": cohort_dir / "summary.txt",
        "splits": splits_dir / SPLITS,
    }
    print(f"\nDemo finished in {time.perf_counter() - start:.0f} s. Outputs:")
    for name, path in paths.items():
        print(f"  {name:<19} {path}")
    return paths


def compare(runs: dict[str, Path], out_html: Path) -> Path:
    """The comparison page of the demo's runs (by name) in COMPARED's order, whatever order they came in; prints its
    table and the paired tests, SDL vs AlexNet first."""
    ordered = [runs[name] for name in COMPARED if name in runs]
    comparison = write_comparison(ordered, out_html)
    print("\nSDL vs AlexNet vs the radiomics baselines on the same folds (patient level first):")
    rows = comparison_rows(ordered)
    print(
        rows[["set", "level", "model", "accuracy_mean", "accuracy_sd", "macro_auc_mean", "macro_auc_sd"]]
        .round(3)
        .to_string(index=False)
    )
    print("\nPaired tests, patient level (A - B; Holm-adjusted over the pairs):")
    print(paired_text(pd.read_csv(paired_csv_path(comparison))))
    return comparison


def _radiomics_cohort(phantom: Path, out: Path) -> Path:
    """The graded patients' BraTS T1c volumes and segmentations as a cohort, under the image folder's ids and grades.

    The phantom writes each subject in every layout under that layout's own ids; truth.csv maps
    them, so a manifest puts the BraTS files under the patient ids the demo's folds use.
    """
    truth = pd.read_csv(phantom / "truth.csv", dtype=str, keep_default_na=False)
    brats = (phantom / json.loads((phantom / "synth.json").read_text())["layouts"]["brats"]).resolve()
    rows = []
    for subject in truth[truth["grade"].isin(GRADES["label"]) & (truth["brats_id"] != "")].itertuples():
        case = brats / subject.brats_id
        for sequence, suffix in RADIOMICS_SEQUENCES.items():
            rows.append(
                {
                    "path": case / f"{subject.brats_id}_{suffix}.nii.gz",
                    "patient_id": subject.imagefolder_patient,
                    "label": subject.grade,
                    "sequence": sequence,
                    "mask_path": case / f"{subject.brats_id}_seg.nii.gz",
                }
            )
    manifest = write_csv(out / "radiomics-manifest.csv", pd.DataFrame(rows))
    cohort_dir = out / "cohort-radiomics"
    ingest([manifest], cohort_dir, format="manifest", overwrite=True, echo=None)
    return cohort_dir


def _resumable(run_dir: Path) -> bool:
    """Continue a run an earlier demo left unfinished; start afresh otherwise."""
    if run_dir.exists() and not (run_dir / REPORT).is_file():
        return True
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    return False
