"""The headline of a run as plain text, for the terminal."""

from __future__ import annotations

from pathlib import Path

from glioscope.evaluate.degenerate import lines as degenerate_lines
from glioscope.evaluate.run import load_metrics
from glioscope.report.compare import comparison_rows
from glioscope.report.gap import run_summary_line


def _pooled(row, key: str) -> str:
    value, low, high = (row[f"{key}_{s}"] for s in ("pooled", "ci_low", "ci_high"))
    return "n/a" if value != value else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _folds(row, key: str) -> str:
    mean, sd = row[f"{key}_mean"], row[f"{key}_sd"]
    return "n/a" if mean != mean else f"{mean:.3f} ± {sd:.3f}"


KEYS = ("accuracy", "macro_f1", "macro_auc")


def headline_text(run_dir: Path) -> str:
    """Per model: accuracy, macro F1 and macro AUC pooled over folds with their 95% bootstrap interval, and on a
    second line the mean ± SD of the per-fold values; patient level first. Then the degenerate folds and pooled
    figures that part from their folds (glioscope.evaluate.degenerate), and, for a run that trained networks, one
    line of training vs held-out accuracy (glioscope.report.gap)."""
    rows = comparison_rows([run_dir])
    metrics = load_metrics(run_dir)
    lines = []
    for (set_name, level), group in rows.groupby(["set", "level"], sort=False):
        folds = int(group["n_folds"].max())
        what = "pooled over folds " if folds > 1 else ""
        below = f"; below it, mean ± SD of the {folds} folds' values" if folds > 1 else ""
        lines.append(f"{set_name} set, {level} level: {what}[95% bootstrap CI over patients]{below}")
        width = max(len(m) for m in group["model"])
        lines.append(f"  {'model':<{width}}  {'accuracy':<24}{'macro F1':<24}macro AUC")
        for _, row in group.iterrows():
            lines.append(f"  {row['model']:<{width}}  " + "".join(f"{_pooled(row, k):<24}" for k in KEYS).rstrip())
            if row["n_folds"] > 1:
                lines.append(f"  {'':<{width}}  " + "".join(f"{'folds ' + _folds(row, k):<24}" for k in KEYS).rstrip())
    lines += degenerate_lines(metrics)
    gap_line = run_summary_line(run_dir, metrics)
    return "\n".join(lines + ([gap_line] if gap_line else []))
