"""The permutation test of a run (glioscope.permutation) in words and as a figure: the null distribution of the
cross-validated AUC under shuffled labels, the observed value and its p-value."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from glioscope.report import figures
from glioscope.report.html import esc
from glioscope.rundir import PERMUTATION


def load(run_dir: Path) -> dict | None:
    """RUN/permutation.json, or None when the run has no permutation test."""
    path = Path(run_dir) / PERMUTATION
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def null_values(record: dict, key: str = "pooled") -> np.ndarray:
    values = [v[key] for v in record["null"].values() if v.get(key) is not None]
    return np.asarray([v for v in values if np.isfinite(v)], dtype=float)


def _p(value) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def summary_text(record: dict) -> str:
    """One sentence: p-value, observed AUC, the null's centre and 95th percentile, how many permutations, time."""
    null = null_values(record)
    if not len(null):
        return f"permutation test of {record['model']}: no permutation finished yet"
    within = f" within {record['within']}" if record.get("within") else ""
    seconds = record.get("seconds", 0.0)
    took = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
    return (
        f"better than chance? permutation p = {_p(record['p_pooled'])} for the pooled patient AUC "
        f"{_p(record['observed']['pooled'])} of {record['model']} (null: mean {null.mean():.3f}, 95th percentile "
        f"{np.quantile(null, 0.95):.3f}; {len(null)} permutations of labels by patient{within}, {took}); "
        f"fold-mean AUC {_p(record['observed']['fold_mean'])}, p = {_p(record['p_fold_mean'])}"
    )


def null_figure(record: dict):
    """A histogram of the permuted runs' pooled AUCs with the observed one."""
    null = null_values(record)
    fig = figures.new_figure(5, 2.8)
    ax = fig.add_subplot()
    ax.hist(null, bins=np.linspace(0, 1, 41), color="#a0aec0", label=f"shuffled labels ({len(null)} runs)")
    observed = record["observed"]["pooled"]
    if observed is not None:
        ax.axvline(
            observed, color="#c53030", linewidth=2, label=f"observed {observed:.3f} (p = {_p(record['p_pooled'])})"
        )
    ax.axvline(0.5, color="#4a5568", linestyle=":", linewidth=1, label="chance (0.5)")
    ax.set_xlim(0, 1)
    ax.set_xlabel("pooled patient AUC of the cross-validation")
    ax.set_ylabel("permuted runs")
    ax.set_title(f"{record['model']}: is the cross-validated AUC better than chance?", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def section(run_dir: Path, saver) -> list[str]:
    """The report's section, or nothing when the run has no permutation test."""
    record = load(run_dir)
    if record is None:
        return []
    body = ["<h2>Better than chance? Permutation test</h2>"]
    if not len(null_values(record)):
        return body + ["<p>No permutation has finished yet (<code>cv --resume</code> continues them).</p>"]
    within = f" within {esc(record['within'])}" if record.get("within") else ""
    body.append(
        f"<p>The recipe was trained again on the same folds {record['done']} times with the labels shuffled between "
        f"patients{within}; the p-value is (1 + permuted runs scoring at least the observed AUC) / (1 + runs), so "
        f"with {record['done']} runs it cannot fall below {1 / (record['done'] + 1):.3f}. Unlike the bootstrap "
        f"interval, which treats the out-of-fold predictions as independent, the test retrains on each labelling "
        f"(Ojala and Garriga, 2010). <b>{esc(summary_text(record)[0].upper() + summary_text(record)[1:])}.</b></p>"
    )
    body.append(saver.add("permutation_null", null_figure(record), "null distribution of the cross-validated AUC"))
    return body
