"""The headline of a run as plain text, for the terminal."""

from __future__ import annotations

from pathlib import Path

from glioscope.evaluate.run import load_metrics
from glioscope.report.compare import comparison_rows
from glioscope.report.gap import run_summary_line


def _cell(row, key: str) -> str:
    mean, sd, low, high = (row[f"{key}_{s}"] for s in ("mean", "sd", "ci_low", "ci_high"))
    if row["n_folds"] <= 1:  # one evaluation set: no spread over folds to show
        value = row[f"{key}_pooled"]
        return "n/a" if value != value else f"{value:.3f} [{low:.3f}, {high:.3f}]"
    if mean != mean:  # NaN
        return "n/a"
    return f"{mean:.3f} ± {sd:.3f} [{low:.3f}, {high:.3f}]"


def headline_text(run_dir: Path) -> str:
    """Per model: accuracy, macro F1 and macro AUC, mean ± SD over folds [95% CI], patient level first; then, for a
    run that trained networks, one line of training vs held-out accuracy (glioscope.report.gap)."""
    rows = comparison_rows([run_dir])
    lines = []
    for (set_name, level), group in rows.groupby(["set", "level"], sort=False):
        spread = "mean ± SD over folds " if group["n_folds"].max() > 1 else ""
        lines.append(f"{set_name} set, {level} level ({spread}[95% bootstrap CI over patients]):")
        width = max(len(m) for m in group["model"])
        lines.append(f"  {'model':<{width}}  {'accuracy':<32}{'macro F1':<32}macro AUC")
        for _, row in group.iterrows():
            lines.append(
                f"  {row['model']:<{width}}  {_cell(row, 'accuracy'):<32}{_cell(row, 'macro_f1'):<32}{_cell(row, 'macro_auc')}"
            )
    gap_line = run_summary_line(run_dir, load_metrics(run_dir))
    return "\n".join(lines + ([gap_line] if gap_line else []))
