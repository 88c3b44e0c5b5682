"""Compare runs evaluated on the same folds: one table, overlaid ROC curves, paired tests (glioscope.report.paired)
and a per-fold comparison. Folders of repeats (`cv --seeds`) go to glioscope.report.repeats."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

import glioscope
from glioscope.errors import GlioscopeError
from glioscope.evaluate.aggregate import to_patients
from glioscope.evaluate.run import load_metrics
from glioscope.report import figures, permutation
from glioscope.report.html import esc, image, interval, is_missing, mean_sd, number, page, table
from glioscope.report.paired import no_pairs, paired_csv_path, paired_html, paired_rows
from glioscope.report.repeats import is_repeats, write_repeats_comparison
from glioscope.report.run_report import roc_panels
from glioscope.rundir import SPLITS, RunFolder
from glioscope.split import check_same_folds
from glioscope.util import atomic

METRICS = (("accuracy", "Accuracy"), ("macro_f1", "Macro F1"), ("macro_auc", "Macro AUC"))


def _labels(run_dirs: Sequence[Path]) -> list[str]:
    """A short name per run: its run_name, else its recipe; the folder's name where two would clash."""
    names = []
    for run_dir in run_dirs:
        info = RunFolder(run_dir).info()
        names.append(str(info.get("run_name") or info.get("recipe") or run_dir.name))
    names = [d.name if names.count(n) > 1 else n for n, d in zip(names, run_dirs)]
    return [str(d) if names.count(n) > 1 else n for n, d in zip(names, run_dirs)]


def comparison_rows(run_dirs: Sequence[str | Path], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (set, level, run, model): patient level first; mean, SD, pooled value and 95% CI of each metric."""
    run_dirs = [Path(r) for r in run_dirs]
    if not run_dirs:
        raise GlioscopeError("no runs to compare")
    check_same_folds(run_dirs, partial=True)
    rows = []
    for run_index, (run_dir, label) in enumerate(zip(run_dirs, _labels(run_dirs))):
        metrics = load_metrics(run_dir, evaluate_if_missing=True, n_boot=n_boot, seed=seed)
        tested = permutation.load(run_dir)
        for set_name in metrics.get("sets", ["cv"]):
            for model_index, model in enumerate(metrics["models"]):
                for level, entry in metrics.get(set_name, {}).get(model, {}).items():
                    row = {
                        "run": label,
                        "model": model,
                        "set": set_name,
                        "level": level,
                        "n": entry["n"],
                        "n_patients": entry["n_patients"],
                        "n_folds": entry["n_folds"],
                    }
                    for key, _ in METRICS:
                        mean, sd = entry["summary"].get(key, (None, None))
                        low, high = entry["ci"].get(key, (None, None))
                        row.update(
                            {
                                f"{key}_mean": mean,
                                f"{key}_sd": sd,
                                f"{key}_pooled": entry["pooled"].get(key),
                                f"{key}_ci_low": low,
                                f"{key}_ci_high": high,
                            }
                        )
                    chance = tested and (set_name, level, model) == ("cv", "patient", tested["model"])
                    row["permutation_p"] = tested.get("p_pooled") if chance else None
                    row["permutations"] = tested.get("done") if chance else None
                    row["_order"] = (set_name != "cv", level != "patient", run_index, model_index)
                    row["_dir"] = str(run_dir)
                    rows.append(row)
    frame = pd.DataFrame(rows).sort_values("_order", kind="stable").drop(columns=["_order", "_dir"])
    return frame.astype(
        {c: float for c in frame.columns if c.endswith(("_mean", "_sd", "_pooled", "_low", "_high"))}
    ).reset_index(drop=True)


def _chance(row) -> str:
    p = row.get("permutation_p")
    return (
        "—"
        if p is None or p != p
        else f'{number(p)}<br><span class="ci">{int(row["permutations"])} permutations</span>'
    )


def _table(rows: pd.DataFrame, set_name: str, level: str) -> str:
    chosen = rows[(rows["set"] == set_name) & (rows["level"] == level)]
    tested = "permutation_p" in chosen and chosen["permutation_p"].notna().any()
    body = []
    for _, r in chosen.iterrows():
        cells = []
        for key, _ in METRICS:
            ci = interval((r[f"{key}_ci_low"], r[f"{key}_ci_high"]))
            pooled = f"{number(r[f'{key}_pooled'])} {ci}"
            if r["n_folds"] > 1:
                cells.append(
                    f'{mean_sd((r[f"{key}_mean"], r[f"{key}_sd"]))}<br><span class="ci">pooled {pooled}</span>'
                )
            else:
                cells.append(f'{number(r[f"{key}_pooled"])}<br><span class="ci">{ci}</span>')
        count = str(r["n"]) if r["n"] == r["n_patients"] else f"{r['n']} ({r['n_patients']} patients)"
        chance = [] if not tested else [_chance(r)]
        body.append([esc(r["run"]), esc(r["model"]), count] + cells + chance)
    where = (
        "cross-validation: mean ± SD over folds; below, pooled value and 95% bootstrap interval"
        if set_name == "cv"
        else "held-out test set: value and 95% bootstrap interval"
    )
    unit = "patients" if level == "patient" else "images"
    where += "; permutation p: is the pooled AUC better than chance (cv --permutations)" if tested else ""
    chance = ["Permutation p"] if tested else []
    return table(
        ["Run", "Model", unit] + [name for _, name in METRICS] + chance,
        body,
        f"{esc(level.capitalize())} level, {where}.",
        2,
    )


def _per_fold(metrics: dict, model: str, key: str) -> dict:
    entry = metrics["cv"][model]["patient"]
    return {f["fold"]: f.get(key) for f in entry["per_fold"]}


def _paired(rows: pd.DataFrame, metrics_by_label: dict[str, dict]) -> list[str]:
    """Per-fold differences in patient-level accuracy and AUC: the headline models of the first two runs given, the
    first pair of the paired tests (one run: its two best models)."""
    cv = rows[(rows["set"] == "cv") & (rows["level"] == "patient") & (rows["n_folds"] > 1)]
    if len(cv) < 2:
        return ["<p>A paired comparison needs two models evaluated on at least two folds.</p>"]
    if cv["run"].nunique() > 1:  # rows keep the runs' and their models' order: a run's headline model is its last
        best = cv.drop_duplicates("run", keep="last").head(2)
    else:
        ranked = cv.sort_values(["accuracy_mean", "macro_auc_mean"], ascending=False, na_position="last", kind="stable")
        best = ranked.head(2)
    (a, b) = [(r["run"], r["model"]) for _, r in best.iterrows()]
    names = (f"{a[0]}: {a[1]}", f"{b[0]}: {b[1]}")
    header = ["Fold"]
    columns = {}
    for key, title in (("accuracy", "accuracy"), ("macro_auc", "AUC")):
        first = _per_fold(metrics_by_label[a[0]], a[1], key)
        second = _per_fold(metrics_by_label[b[0]], b[1], key)
        columns[key] = (first, second)
        header += [f"{esc(title)}<br>{esc(names[0])}", f"{esc(title)}<br>{esc(names[1])}", f"{esc(title)} difference"]
    folds = sorted(
        set(columns["accuracy"][0]) & set(columns["accuracy"][1]),
        key=lambda f: (str(f).isdigit() is False, int(f) if str(f).isdigit() else 0),
    )
    body, summary = [], ["mean ± SD"]
    for fold in folds:
        row = [esc(fold)]
        for key in ("accuracy", "macro_auc"):
            x, y = columns[key][0][fold], columns[key][1][fold]
            diff = None if is_missing(x) or is_missing(y) else x - y
            row += [number(x), number(y), number(diff)]
        body.append(row)
    for key in ("accuracy", "macro_auc"):
        diffs = np.array(
            [
                np.nan
                if is_missing(columns[key][0][f]) or is_missing(columns[key][1][f])
                else columns[key][0][f] - columns[key][1][f]
                for f in folds
            ],
            dtype=float,
        )
        valid = diffs[~np.isnan(diffs)]
        wins, ties = int((valid > 0).sum()), int((valid == 0).sum())
        sd = float(valid.std(ddof=1)) if len(valid) > 1 else 0.0
        summary += [
            "",
            "",
            f'{mean_sd((float(valid.mean()) if len(valid) else None, sd))}<br><span class="ci">first better in {wins} of {len(valid)} folds, tied in {ties}</span>',
        ]
    body.append(summary)
    chosen = (
        "the headline models of the first two runs given"
        if cv["run"].nunique() > 1
        else "the two best models by mean patient-level accuracy"
    )
    html = [
        f"<p>Compared: {chosen}, <b>{esc(names[0])}</b> and <b>{esc(names[1])}</b>. "
        "Differences are first minus second, fold by fold (the same patients in both).</p>",
        table(header, body, "Paired comparison per fold, patient level."),
    ]
    acc_first = [columns["accuracy"][0][f] for f in folds]
    acc_second = [columns["accuracy"][1][f] for f in folds]
    fig = figures.paired_folds(
        folds,
        [np.nan if v is None else v for v in acc_first],
        [np.nan if v is None else v for v in acc_second],
        names,
        "accuracy",
    )
    html.append(image(figures.png(fig), "paired per-fold accuracy"))
    return html


def write_comparison(run_dirs: Sequence[str | Path], out_html: str | Path, n_boot: int = 1000, seed: int = 0) -> Path:
    """One HTML page comparing every model of every run, with a CSV of comparison_rows and one of the paired tests
    (paired_csv_path) beside it."""
    run_dirs = [Path(r) for r in run_dirs]
    out_html = Path(out_html)
    if any(is_repeats(d) for d in run_dirs):
        return write_repeats_comparison(run_dirs, out_html, n_boot=n_boot, seed=seed)
    rows = comparison_rows(run_dirs, n_boot=n_boot, seed=seed)
    labels = _labels(run_dirs)
    metrics_by_label = {label: load_metrics(d) for label, d in zip(labels, run_dirs)}
    infos = [RunFolder(d).info() for d in run_dirs]
    class_names = metrics_by_label[labels[0]]["class_names"]
    for label in labels[1:]:
        if metrics_by_label[label]["class_names"] != class_names:
            raise GlioscopeError(
                f"runs {labels[0]} and {label} have different classes: "
                f"{class_names} vs {metrics_by_label[label]['class_names']}"
            )

    body = [
        f"<h1>glioscope comparison: {esc(', '.join(labels))}</h1>",
        f'<p class="meta"><b>Runs:</b> {esc(", ".join(d.name for d in run_dirs))} · <b>Classes:</b> {esc(", ".join(class_names))}</p>',
    ]
    # What each run is, from its own settings (its recipe's description only where --set left it true).
    body.append(
        "<ul>"
        + "".join(
            f"<li><b>{esc(label)}</b>: {esc(RunFolder(d).label().title)}</li>" for label, d in zip(labels, run_dirs)
        )
        + "</ul>"
    )
    if any(i.get("leaky") for i in infos):
        leaky = [label for label, i in zip(labels, infos) if i.get("leaky")]
        body.append(
            f'<div class="banner leaky">LEAKY SPLIT in {esc(", ".join(leaky))}: results overestimate performance on new patients.</div>'
        )
    partial = check_same_folds(run_dirs, partial=True)
    shared = (
        f"All runs share the same folds: every patient sits in the same fold in each run's {SPLITS}. "
        if not partial
        else f"All runs share the same folds: every patient sits in the same fold in each run's {SPLITS} that has "
        f"it. {partial} patient(s) are in only some of the runs (e.g. a missing MRI sequence): each run is "
        "scored on its own patients (see the patients column). "
    )
    body.append('<div class="statement">' + esc(shared + infos[0].get("split_statement", "")) + "</div>")
    for set_name in [s for s in ("cv", "test") if (rows["set"] == s).any()]:
        body.append("<h2>" + ("Cross-validation" if set_name == "cv" else "Held-out test set") + "</h2>")
        for level in ("patient", "image"):
            body += [f"<h3>{level.capitalize()} level</h3>", _table(rows, set_name, level)]

    shown = class_names[1:] if len(class_names) == 2 else class_names
    panels = {name: [] for name in shown}
    for label, run_dir in zip(labels, run_dirs):
        images = RunFolder(run_dir).predictions(class_names)
        patients = to_patients(images[images["set"] == "cv"], by=("fold", "model"))
        for model_label, model_curves in roc_panels(
            patients, metrics_by_label[label]["models"], class_names, label=lambda m, run=label: f"{run}: {m}"
        ):
            for (name, positive, score), cls in zip(model_curves, shown):
                panels[cls].append((model_label, positive, score))
    curves = [(f"{c} vs rest" if len(class_names) > 2 else f"positive class {c}", panels[c]) for c in shown]
    body.append("<h2>ROC curves, patient level, cross-validation pooled</h2>")
    body.append(image(figures.png(figures.roc_curves(curves, "ROC curves, patient level")), "overlaid ROC curves"))
    pairs, reason = paired_rows(run_dirs, labels, n_boot=n_boot, seed=seed)
    body += ["<h2>Paired tests</h2>", *paired_html(pairs, reason, class_names)]
    body.append("<h2>Paired comparison per fold</h2>")
    body += _paired(rows, metrics_by_label)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body.append(f"<footer>glioscope {esc(glioscope.__version__)} · comparison written {esc(now)}</footer>")
    atomic.write_text(out_html, page("glioscope comparison", body))
    atomic.write_csv(out_html.with_suffix(".csv"), rows)
    atomic.write_csv(paired_csv_path(out_html), no_pairs(reason) if reason else pairs)
    return out_html
