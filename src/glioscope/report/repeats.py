"""Repeats of one recipe over split and training seeds (`glioscope cv --seeds`): their spread, and their comparison.

A repeats folder holds one ordinary run folder per seed and repeats.json (recipe, seeds, each seed's run folder).
The spread of a metric is its mean, SD and min–max over repeats of each repeat's pooled patient-level value,
shown beside each repeat's own bootstrap interval: the interval says how much the patients could have differed,
the spread how much the split and the training seed alone move the figure. Two repeats folders of the same
cohort are compared seed by seed (repeats with the same seed share their folds) and the paired tests are
summarised over repeats.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

import glioscope
from glioscope.errors import GlioscopeError, InputError
from glioscope.evaluate.run import load_metrics
from glioscope.report.html import esc, interval, mean_sd, number, page, table
from glioscope.report.paired import no_pairs, paired_csv_path, paired_rows, paired_text
from glioscope.rundir import REPEATS, REPEATS_REPORT, REPEATS_TABLE
from glioscope.util import atomic

SPREAD = (
    ("accuracy", "Accuracy"),
    ("macro_auc", "Macro AUC"),
    ("macro_f1", "Macro F1"),
    ("macro_sensitivity", "Macro sensitivity"),
    ("brier", "Brier score"),
)


def span(low: float, high: float) -> str:
    """A min – max range (not an interval: no brackets)."""
    return f"{number(low)} – {number(high)}"


def is_repeats(folder: str | Path) -> bool:
    return (Path(folder) / REPEATS).is_file()


def read_repeats(folder: str | Path) -> dict:
    """repeats.json, checked: an InputError naming it otherwise."""
    path = Path(folder) / REPEATS
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        record["runs"] = {int(seed): Path(folder) / name for seed, name in record["runs"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(path, f"is not a repeats record of `glioscope cv --seeds` ({exc})") from None
    return record


def repeat_rows(folder: str | Path, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (repeat seed, model, metric) of the finished repeats: pooled CV patient value and its interval."""
    rows = []
    for repeat, run_dir in read_repeats(folder)["runs"].items():
        metrics = load_metrics(run_dir, evaluate_if_missing=True, n_boot=n_boot, seed=seed)
        for model in metrics["models"]:
            entry = metrics.get("cv", {}).get(model, {}).get("patient")
            if entry is None:
                continue
            for key, _ in SPREAD:
                low, high = entry["ci"].get(key, (None, None))
                rows.append(
                    {
                        "seed": repeat,
                        "model": model,
                        "metric": key,
                        "n_patients": entry["n_patients"],
                        "pooled": entry["pooled"].get(key),
                        "ci_low": low,
                        "ci_high": high,
                    }
                )
    return pd.DataFrame(rows).astype({"pooled": float, "ci_low": float, "ci_high": float})


def spread(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, SD, min and max over repeats of each (model, metric), in the models' and metrics' order."""
    grouped = rows.groupby(["model", "metric"], sort=False)["pooled"]
    frame = grouped.agg(["mean", "min", "max", "count"]).rename(columns={"count": "n_repeats"})
    frame.insert(1, "sd", grouped.std(ddof=1).fillna(0.0))
    return frame.reset_index()


def write_summary(folder: str | Path, n_boot: int = 1000, seed: int = 0) -> Path:
    """repeats.csv (each model and metric: the spread, then each repeat's pooled value and interval), the spread in
    repeats.json, and repeats.html; returns the page."""
    folder = Path(folder)
    record = read_repeats(folder)
    rows = repeat_rows(folder, n_boot=n_boot, seed=seed)
    summary = spread(rows)
    wide = summary.copy()
    for repeat in record["runs"]:
        mine = rows[rows["seed"] == repeat].set_index(["model", "metric"])
        for column in ("pooled", "ci_low", "ci_high"):
            wide[f"seed{repeat}_{column}"] = [
                mine[column].get((m, k), np.nan) for m, k in zip(wide["model"], wide["metric"])
            ]
    atomic.write_csv(folder / REPEATS_TABLE, wide)
    stored = json.loads((folder / REPEATS).read_text(encoding="utf-8"))
    stored["spread"] = json.loads(summary.to_json(orient="records"))
    atomic.write_json(folder / REPEATS, stored)

    names = dict(SPREAD)
    body = []
    for _, r in wide.iterrows():
        cells = [
            esc(r["model"]),
            esc(names[r["metric"]]),
            mean_sd((r["mean"], r["sd"])),
            span(r["min"], r["max"]),
        ]
        for repeat in record["runs"]:
            ci = interval((r[f"seed{repeat}_ci_low"], r[f"seed{repeat}_ci_high"]))
            cells.append(f'{number(r[f"seed{repeat}_pooled"])}<br><span class="ci">{ci}</span>')
        body.append(cells)
    header = ["Model", "Metric", "mean ± SD over repeats", "min – max"] + [f"seed {s}" for s in record["runs"]]
    settings = " and ".join(f"<code>{esc(s)}</code>" for s in record.get("settings", {}).values() if s)
    html = [
        f"<h1>glioscope repeats: {esc(record.get('recipe', folder.name))}</h1>",
        f'<p class="meta"><b>Seeds:</b> {esc(", ".join(map(str, record["runs"])))} · <b>Cohort:</b> '
        f"{esc(record.get('cohort', ''))}</p>",
        f"<p>The recipe run once per seed, the seed setting {settings}: each repeat has its own split into folds "
        "and its own training. Each repeat's cell is its pooled cross-validated patient-level value with its 95% "
        "bootstrap interval over patients; the spread over repeats is what the split and the seed alone change.</p>",
        table(header, body, "Patient level, cross-validation pooled, per repeat.", 2),
        f"<footer>glioscope {esc(glioscope.__version__)} · written "
        f"{esc(datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))}</footer>",
    ]
    return atomic.write_text(folder / REPEATS_REPORT, page("glioscope repeats", html))


def _labels(folders: Sequence[Path], records: Sequence[dict]) -> list[str]:
    """A short name per repeats folder: its recipe; the folder's name, then its path, where two would clash."""
    names = [str(r.get("recipe") or f.name) for f, r in zip(folders, records)]
    names = [f.name if names.count(n) > 1 else n for n, f in zip(names, folders)]
    return [str(f) if names.count(n) > 1 else n for n, f in zip(names, folders)]


def pair_summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per pair of models: mean, SD, min and max over repeats of the AUC and accuracy differences, and in how many
    repeats each was established."""
    grouped = pairs.groupby(["a", "b"], sort=False)
    frame = grouped.size().rename("n_repeats").to_frame()
    for key in ("auc", "accuracy"):
        column = grouped[f"{key}_difference"]
        frame[f"{key}_difference_mean"] = column.mean()
        frame[f"{key}_difference_sd"] = column.std(ddof=1).fillna(0.0)
        frame[f"{key}_difference_min"], frame[f"{key}_difference_max"] = column.min(), column.max()
        frame[f"{key}_established"] = grouped[f"{key}_established"].sum().astype(int)
    return frame.reset_index()


def write_repeats_comparison(folders: Sequence[Path], out_html: Path, n_boot: int = 1000, seed: int = 0) -> Path:
    """The comparison page of repeats folders: the spread of each recipe's headline model, and the paired tests seed
    by seed, summarised over repeats; its CSV (the spread) and paired CSV (every repeat's pairs) beside it."""
    plain = [f for f in folders if not is_repeats(f)]
    if plain:
        raise GlioscopeError(
            f"{plain[0]} is a run folder and {next(f for f in folders if is_repeats(f))} holds repeats of "
            "`glioscope cv --seeds`: compare run folders with run folders, or repeats with repeats"
        )
    records = [read_repeats(f) for f in folders]
    labels = _labels(folders, records)
    seeds = sorted(set.intersection(*(set(r["runs"]) for r in records)))
    if not seeds:
        raise GlioscopeError(f"{', '.join(map(str, folders))} share no seed: repeats are paired seed by seed")
    spreads, pairs, refusals = [], [], []
    for label, folder in zip(labels, folders):
        rows = repeat_rows(folder, n_boot=n_boot, seed=seed)
        rows = rows[rows["seed"].isin(seeds)]
        headline = rows["model"].iloc[-1]
        spreads.append(spread(rows[rows["model"] == headline]).assign(run=label))
    for repeat in seeds:
        table_, reason = paired_rows([r["runs"][repeat] for r in records], labels, n_boot=n_boot, seed=seed)
        if reason:
            refusals.append(f"seed {repeat}: {reason}")
        else:
            pairs.append(table_.assign(seed=repeat))
    spread_table = pd.concat(spreads, ignore_index=True)[
        ["run", "model", "metric", "mean", "sd", "min", "max", "n_repeats"]
    ]
    names = dict(SPREAD)
    body = [
        f"<h1>glioscope comparison of repeats: {esc(', '.join(labels))}</h1>",
        f'<p class="meta"><b>Seeds shared:</b> {esc(", ".join(map(str, seeds)))}</p>',
        "<h2>Spread over repeats</h2>",
        "<p>Each recipe's headline model: mean ± SD and min – max over repeats of the pooled cross-validated "
        "patient-level value (each repeat its own split and training seed).</p>",
        table(
            ["Run", "Model", "Metric", "mean ± SD", "min – max", "repeats"],
            [
                [
                    esc(r["run"]),
                    esc(r["model"]),
                    esc(names[r["metric"]]),
                    mean_sd((r["mean"], r["sd"])),
                    span(r["min"], r["max"]),
                    str(r["n_repeats"]),
                ]
                for _, r in spread_table.iterrows()
            ],
            "Patient level, cross-validation pooled.",
            3,
        ),
        "<h2>Paired tests over repeats</h2>",
    ]
    body += [f'<div class="banner warning">{esc(text)}</div>' for text in refusals]
    if pairs:
        every = pd.concat(pairs, ignore_index=True)
        summary = pair_summary(every)
        body.append(
            "<p>Repeats with the same seed share their folds, so each seed pairs the models on the same patients "
            "(AUC: paired bootstrap and DeLong's test for two classes, a bootstrap p for more; accuracy: McNemar's "
            "exact test; Holm-adjusted over pairs within a seed). Below, the differences A − B summarised over "
            "repeats and the number of repeats in which each was established at 95%.</p>"
        )
        body.append(
            table(
                [
                    "A",
                    "B",
                    "repeats",
                    "AUC difference<br>mean ± SD",
                    "min – max",
                    "established",
                    "accuracy difference<br>mean ± SD",
                    "min – max",
                    "established",
                ],
                [
                    [esc(r["a"]), esc(r["b"]), str(r["n_repeats"])]
                    + [
                        cell
                        for key in ("auc", "accuracy")
                        for cell in (
                            mean_sd((r[f"{key}_difference_mean"], r[f"{key}_difference_sd"])),
                            span(r[f"{key}_difference_min"], r[f"{key}_difference_max"]),
                            f"in {r[f'{key}_established']} of {r['n_repeats']}",
                        )
                    ]
                    for _, r in summary.iterrows()
                ],
                "Paired differences per repeat, summarised.",
                2,
            )
        )
    body.append(f"<footer>glioscope {esc(glioscope.__version__)}</footer>")
    atomic.write_text(out_html, page("glioscope comparison of repeats", body))
    atomic.write_csv(out_html.with_suffix(".csv"), spread_table)
    paired = pd.concat(pairs, ignore_index=True) if pairs else no_pairs("; ".join(refusals))
    atomic.write_csv(paired_csv_path(out_html), paired)
    return out_html


def comparison_text(out_html: Path) -> str:
    """What `glioscope compare` prints: the table of a comparison page's CSV, then its paired tests."""
    rows = pd.read_csv(out_html.with_suffix(".csv"))
    pairs = pd.read_csv(paired_csv_path(out_html))
    if "seed" in pairs.columns:
        lines = ["Paired differences A - B over repeats (mean ± SD, min to max, repeats where established at 95%):"]
        for _, r in pair_summary(pairs).iterrows():
            lines.append(
                f"{r['a']} vs {r['b']}: "
                + "; ".join(
                    f"{title} {r[f'{key}_difference_mean']:+.3f} ± {r[f'{key}_difference_sd']:.3f} "
                    f"({r[f'{key}_difference_min']:+.3f} to {r[f'{key}_difference_max']:+.3f}), "
                    f"established in {r[f'{key}_established']} of {r['n_repeats']}"
                    for key, title in (("auc", "AUC"), ("accuracy", "accuracy"))
                )
            )
        paired = "\n".join(lines)
    else:
        paired = "Paired tests, patient level, cross-validation pooled (A - B):\n" + paired_text(pairs)
    return rows.to_string(index=False) + "\n\n" + paired
