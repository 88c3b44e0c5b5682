"""A learning curve's figure (patient AUC against training patients, with its interval band and chance) and its
HTML page: the verdict first, then the figure, the table, each run, and what was done."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from glioscope.report import html
from glioscope.report.figures import new_figure, png


def json_safe(obj):
    """Tuples to lists, numpy scalars to Python, NaN and inf to None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def figure(curve: pd.DataFrame, title: str) -> bytes:
    """PNG: pooled held-out patient AUC (line, 95% bootstrap band) and the per-fold mean ± SD against the mean
    number of training patients per fold, each point labelled with its fraction; chance at 0.5."""
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    x = curve["train_patients_mean"].to_numpy(dtype=float)
    ax.fill_between(x, curve["auc_low"], curve["auc_high"], color="#2b6cb0", alpha=0.18, label="95% bootstrap CI")
    ax.plot(x, curve["auc"], "o-", color="#2b6cb0", label="pooled held-out patient AUC")
    spread = (x.max() - x.min()) or 1.0
    ax.errorbar(
        x + 0.012 * spread,
        curve["auc_fold_mean"],
        yerr=curve["auc_fold_sd"].fillna(0),
        fmt="s",
        ms=4,
        color="#718096",
        capsize=3,
        label="per-fold AUC, mean ± SD",
    )
    ax.axhline(0.5, color="#c53030", ls="--", lw=1, label="chance")
    for row in curve.itertuples():
        ax.annotate(f"{row.fraction:g}", (row.train_patients_mean, row.auc), textcoords="offset points", xytext=(0, 7))
    ax.set_xlabel("training patients per fold (mean over folds)")
    ax.set_ylabel("patient AUC on the held-out patients")
    ax.set_ylim(0.0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return png(fig)


def _range(row: dict) -> str:
    low, high = row["train_patients_min"], row["train_patients_max"]
    return f"{row['train_patients_mean']:.1f}" + (f" ({low}–{high})" if low != high else "")


def _with_ci(row: dict, metric: str) -> str:
    return (
        f"{html.number(row[metric])} <span class=ci>"
        f"{html.interval((row[f'{metric}_low'], row[f'{metric}_high']))}</span>"
    )


def _done(result: dict) -> str:
    s = result["settings"]
    folds = f"the {s['splits']} split folder's folds" if s.get("splits") else f"{s['folds']} stratified folds"
    options = " ".join(s["overrides"]) + (" --quick" if s["quick"] else "")
    return (
        f"The patients of {html.esc(s['cohort'])} were split by patient into {html.esc(folds)} (seed {s['seed']}). "
        "For each fold and each fraction f, the recipe "
        f"<code>{html.esc(result['recipe'])}</code>{' with <code>' + html.esc(options) + '</code>' if options else ''} "
        "was trained on a share f of that fold's training patients, stratified by label (the first ⌈f·n⌉ of each "
        "class in one shuffled order per fold, so a smaller share lies inside a larger one), and predicted that "
        "fold's held-out patients, the same for every f. Its own settings (inner CV, validation) ran inside the "
        "share only. The held-out predictions of every fold are pooled per fraction: the patient AUC and accuracy, "
        f"with 95% intervals from {result['n_boot']} bootstrap resamples of patients, and the mean ± SD over folds. "
        "Whether the curve rises is read from paired bootstrap differences of the AUC on the same held-out patients: "
        "of the last step (the two largest fractions) and of the whole curve (the smallest to the largest). These "
        "intervals resample the held-out patients only, not which patients a share drew: run the curve again with "
        "other <code>--seed</code> values to see that spread, which on a few dozen patients can be as large."
    )


def page(result: dict, curve: pd.DataFrame, picture: bytes) -> str:
    """The report's HTML."""
    e = html.esc
    rows = curve.to_dict("records")
    body = [
        f"<h1>Learning curve: {e(result['recipe'])}</h1>",
        f"<p class=meta>{e(result['settings']['cohort'])} · classes {e(', '.join(result['class_names']))} · "
        f"written {e(result['written'])}</p>",
        f"<div class=statement>{e(result['verdict'])}</div>",
        html.image(picture, "learning curve", "Patient AUC of the held-out patients against the training patients"),
        html.table(
            [
                "fraction",
                "training patients",
                "held out",
                "patient AUC [95% CI]",
                "AUC per fold",
                "accuracy [95% CI]",
                "accuracy per fold",
                "time",
            ],
            [
                [
                    f"{r['fraction']:g}",
                    _range(r),
                    str(r["held_out_patients"]),
                    _with_ci(r, "auc"),
                    html.mean_sd((r["auc_fold_mean"], r["auc_fold_sd"])),
                    _with_ci(r, "accuracy"),
                    html.mean_sd((r["accuracy_fold_mean"], r["accuracy_fold_sd"])),
                    f"{r['seconds']:.0f} s",
                ]
                for r in rows
            ],
            caption="Per fraction: training patients per fold (mean, and range over folds); pooled metrics of every "
            "fold's held-out patients; mean ± SD over folds; training time of all its folds",
        ),
        "<h2>What was done</h2>",
        f"<p>{_done(result)}</p>",
        "<h2>Each run</h2>",
        html.table(
            ["fold", "fraction", "training patients", "held-out patients", "held-out AUC", "time"],
            [
                [
                    str(r["fold"]),
                    f"{r['fraction']:g}",
                    str(r["train_patients"]),
                    str(r["held_out_patients"]),
                    html.number(r["auc"]),
                    f"{r['seconds']:.1f} s",
                ]
                for r in result["runs"]
            ],
            label_columns=2,
        ),
    ]
    return html.page(f"glioscope curve: {result['recipe']}", body)
