"""Where evaluation meets the report: the one place that composes them, for every verb that needs both.

`finish` evaluates a run folder (glioscope.evaluate) and writes its report
(glioscope.report, with the Grad-CAM panels its folds saved); `fuse` writes a fused run
folder and finishes it. (An external test composes its own: glioscope.external.external_test.)
The evaluate package never imports the report package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from glioscope.evaluate import fusion
from glioscope.evaluate.run import evaluate_run
from glioscope.report import write_report
from glioscope.rundir import RunFolder
from glioscope.util import atomic


def finish(
    run_dir: str | Path,
    n_boot: int = 1000,
    seed: int = 0,
    report: bool = True,
    name: str | None = None,
    site_column: str | None = None,
) -> dict:
    """Evaluate a run (metrics.json) and, with `report`, write report.html; returns the metrics.

    `name` is the run's name in metrics.json when the folder is a temporary one; `site_column` the cohort column
    of the patients' sites (glioscope.evaluate.sites).
    """
    metrics = evaluate_run(run_dir, n_boot=n_boot, seed=seed, name=name, site_column=site_column)
    if report:
        write_report(run_dir, gradcam_panels=RunFolder(run_dir).gradcam_panels(), n_boot=n_boot, seed=seed)
    return metrics


def fuse(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    methods: Sequence[str] = fusion.METHODS,
    overwrite: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
) -> Path:
    """Fuse the headline models of runs on the same splits into a new run folder `out`, evaluated and reported.

    methods: "mean" and/or "logistic" (see glioscope.evaluate.fusion). Returns `out`.
    """
    out = Path(out)
    run_dirs, methods = fusion.check_inputs(run_dirs, out, methods)
    fused = fusion.fuse_runs(run_dirs, methods, n_boot=n_boot)
    with atomic.atomic_dir(out, overwrite=overwrite) as tmp:
        RunFolder(tmp).write_fused(fused)
        finish(tmp, n_boot=n_boot, seed=seed, name=out.name)
    return out
