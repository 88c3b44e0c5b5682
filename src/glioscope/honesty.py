"""Honesty check of the MGMT pipeline on phantom cohorts with a known imaging effect.

The phantom's `mgmt_effect` sets how strongly MGMT methylation shows in the images
(0 = not at all; see glioscope.synth.tumour). Running the whole pipeline — write the
RSNA-MICCAI layout, ingest it, cross-validate by patient, pool the out-of-fold patient
probabilities, bootstrap the AUC — on a cohort with no signal must give an AUC whose 95%
interval covers 0.5; a leak (a patient on both sides of a split, labels reaching the
inputs) would push it up. With a strong effect the interval must lie above 0.5, or the
pipeline cannot learn what is there. The quick form is a test; benchmarks/mgmt_honesty.py
sweeps the effect size.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from glioscope.recipe import load_recipe
from glioscope.evaluate.run import evaluate_run
from glioscope.ingest import ingest
from glioscope.runner import run
from glioscope.synth import synthesize
from glioscope.synth.presets import PRESETS, Preset

# 40 grade IV subjects on a 2 mm grid, RSNA-MICCAI series of 4 mm slices: about 40 s to write.
# (On the 4 mm grid with 12 mm slices a tumour's enhancing rim blurs into a few pixels of
# a few slices, and no CNN trained on 27 patients found even the strongest effect.)
QUICK_PRESET = replace(
    PRESETS["mgmt"],
    name="honesty",
    n_grade_iv=40,
    voxel_mm=2,
    dicom_slab=3,
    rsna_slab=2,
    montage_per_class=2,
    description="for the MGMT honesty check: 40 grade IV subjects on a 2 mm grid, 4 mm RSNA-MICCAI slices",
)

# The pipeline of the MGMT recipes, shrunk to a CPU: T1c (at a strong effect a methylated
# tumour loses its enhancing rim), the middle 60% of each series (the phantom's tumours are
# not always near the middle), 64 px, the small CNN from scratch with global max pooling (a
# focal finding in a slice, not an average over it), flips and small rotations against
# memorising 27 patients, Adam, the last epoch's weights (an inner validation set of a few
# patients picks an epoch by chance), 3 folds pooled so that every patient is scored once.
QUICK_SETTINGS = [
    "data.select={sequence: T1c}",
    "data.slices.size=64",
    "data.slices.middle_fraction=0.6",
    "model.name=smallcnn",
    "model.weights=none",
    "model.options={pool: max}",
    "augment.hflip=0.5",
    "augment.rotation=10",
    "train.optimizer=adam",
    "train.lr=0.001",
    "train.schedule=none",
    "train.epochs=10",
    "train.batch_size=32",
    "train.validation=none",
    "train.keep_best=false",
    "train.monitor=train_loss",
    "train.precision=fp32",
    "cv.mode=kfold",
    "cv.folds=3",
    "cv.test_fraction=0",
    "evaluate.gradcam_per_class=0",
    "evaluate.bootstrap=500",
]


def check(
    root: str | Path,
    mgmt_effect: float,
    preset: str | Preset = QUICK_PRESET,
    recipe: str = "r18-mgmt",
    settings: list[str] | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Write, ingest and cross-validate one phantom cohort; the pooled patient-level AUC and its 95% CI.

    Returns {"mgmt_effect", "auc", "ci": [low, high], "n_patients", "seconds", "run"}.
    """
    root = Path(root)
    start = time.perf_counter()
    synthesize(root / "phantom", preset, seed=seed, mgmt_effect=mgmt_effect, layouts=["rsna-miccai"], progress=progress)
    ingest([root / "phantom" / "rsna-miccai"], root / "cohort", progress=progress, echo=print if progress else None)
    config = load_recipe(recipe, QUICK_SETTINGS if settings is None else settings)
    run_dir = run(config, root / "cohort", root / "run", progress=progress, cache_dir=root / "cache", report=False)
    metrics = evaluate_run(run_dir, n_boot=config.evaluate.bootstrap, seed=seed)
    level = metrics["cv"][config.name]["patient"]
    return {
        "mgmt_effect": float(mgmt_effect),
        "auc": level["pooled"]["auc"],
        "ci": level["ci"]["auc"],
        "n_patients": level["n_patients"],
        "seconds": time.perf_counter() - start,
        "run": str(run_dir),
    }
