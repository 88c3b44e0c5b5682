"""RUN/report.html: one self-contained page per run (tables, curves, confusion matrices, ROC, Grad-CAM, and an
attention model's most attended slices)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import glioscope
from glioscope import references
from glioscope.evaluate.aggregate import to_patients
from glioscope.evaluate.run import load_metrics
from glioscope.report import figures, gap, permutation, tables
from glioscope.report.attention import attention_section
from glioscope.report.unlike import run_section
from glioscope.report.conformal import selective_section
from glioscope.report.html import esc, image, page
from glioscope.evaluate.degenerate import lines as degenerate_lines
from glioscope.report.sites import site_banner, site_section
from glioscope.rundir import CONFIG, HISTORY, PERMUTATION, REPORT, RunFolder, RunLabel
from glioscope.split import LEAKY_WARNING
from glioscope.util import atomic

NO_PATIENT_IDS = "no patient ids: results are per image and may overestimate"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_") or "x"


def training_accuracy(histories: list[tuple[object, pd.DataFrame]], models: Sequence[str]) -> dict[str, float]:
    """Last-epoch training accuracy per model, mean over folds (SDL members from train_accuracy/<member>)."""
    result = {}
    for model in models:
        member = model.split("/")[-1] if "/" in model else None
        column = f"train_accuracy/{member}" if member else "train_accuracy"
        values = [h[column].dropna().iloc[-1] for _, h in histories if column in h and h[column].notna().any()]
        if values:
            mean = float(np.mean(values))
            result[model] = mean / 100.0 if mean > 1.5 else mean  # a log in percent
    return result


def roc_panels(patients: pd.DataFrame, models: Sequence[str], class_names: Sequence[str], label=lambda m: m):
    """Per model, one-vs-rest curves per class (binary: the positive class only)."""
    shown = class_names[1:] if len(class_names) == 2 else class_names
    panels = []
    for model in models:
        rows = patients[patients["model"] == model]
        if rows.empty:
            continue
        curves = [
            (
                f"{name} vs rest" if len(class_names) > 2 else name,
                rows["target"].to_numpy() == class_names.index(name),
                rows[f"prob_{name}"].to_numpy(),
            )
            for name in shown
        ]
        panels.append((label(model), curves))
    return panels


class _Figures:
    """Saves each figure under RUN/figures/ and returns its <figure> HTML."""

    def __init__(self, folder: Path):
        self.folder = folder

    def add(self, name: str, fig_or_png, alt: str, caption: str | None = None) -> str:
        data = figures.png(fig_or_png) if isinstance(fig_or_png, Figure) else bytes(fig_or_png)
        with atomic.atomic_path(self.folder / f"{name}.png") as tmp:
            tmp.write_bytes(data)
        return image(data, alt, caption)


def _header(info: dict, metrics: dict, label: RunLabel) -> list[str]:
    title = label.title
    model_name = ", ".join(metrics["models"])
    meta = [
        ("Recipe", label.recipe),
        ("Description", label.description),
        ("Task", label.task),
        ("Cohort", info.get("cohort")),
        ("Classes", ", ".join(metrics["class_names"])),
        ("Models", model_name),
        ("Folds", len(metrics.get("folds", [])) or None),
        ("Precision", _precision((info.get("training") or {}).get("precision"))),
        ("Weights", _weights((info.get("training") or {}).get("weights"))),
        ("Run created", info.get("created")),
    ]
    body = [
        f"<h1>glioscope report: {esc(title)}</h1>",
        '<p class="meta">' + " · ".join(f"<b>{esc(k)}:</b> {esc(v)}" for k, v in meta if v not in (None, "")) + "</p>",
    ]
    if info.get("leaky"):
        body.append(f'<div class="banner leaky">{esc(LEAKY_WARNING)}</div>')
    if not info.get("patient_ids", True):
        body.append(f'<div class="banner warning">Warning: {esc(NO_PATIENT_IDS)}.</div>')
    if info.get("caveat"):
        body.append(f'<div class="banner warning">{esc(info["caveat"])}</div>')
    if info.get("final"):  # a final model on every patient: the figures below are its cross-validation's
        statement = info["final"]["statement"]
        body.append(f'<div class="banner warning">{esc(statement[0].upper() + statement[1:])}.</div>')
    statement = info.get("split_statement") or "No split statement was recorded for this run."
    body.append(f'<div class="statement">{esc(statement)}</div>')
    return body


def findings(metrics: dict) -> list[str]:
    """Banners for degenerate fold models and for pooled figures that part from their folds' mean."""
    out = []
    for line in degenerate_lines(metrics):
        kind = "warning" if line.startswith("warning") else "note"
        text = line.split(": ", 1)[1]
        out.append(f'<div class="banner warning">{esc(kind.capitalize())}: {esc(text)}</div>')
    return out


def _weights(record: dict | None) -> str | None:
    """model.weights in words: a name, or "<file>: pretrained on <sources>, <patients>, <images>, <epochs>, <method>"."""
    if not record:
        return None
    return f"{record['source']}: {record['summary']}" if record.get("summary") else record.get("source")


def _precision(by_fold: dict | None) -> str | None:
    """The folds' training precision in words, e.g. "fp32 (auto: fp32 on CPU)"; each distinct one once."""
    if not by_fold:
        return None
    words = []
    for record in by_fold.values():
        text = f"{record.get('dtype')}{' + channels_last' if record.get('channels_last') else ''}"
        text += f" ({record['chosen_by']})" if record.get("chosen_by") else ""
        if text not in words:
            words.append(text)
    return "; ".join(words)


PAPER_TABLES = {  # evaluate.tables' names -> the tables laid out as in that paper (references.PAPER_TABLES)
    "sdl": lambda m, s, level, train: [tables.sdl_models(m, s, level, train), tables.sdl_classes(m, s, level)],
    "spatiospatial": lambda m, s, level, train: [tables.spatiospatial_f1(m, s, level)],
    "autoaugment": lambda m, s, level, train: [tables.autoaugment_classes(m, s, level)],
}


def _paper_tables(metrics: dict) -> list[str]:
    """The tables in a paper's layout the report shows: those the recipe chose, every one for a run that names none."""
    named = references.tables_of(metrics)
    return list(PAPER_TABLES) if named is None else named


def _metric_sections(metrics: dict, set_name: str, histories) -> list[str]:
    levels = ("patient", "image")
    body = [
        "<h3>Patient level</h3>",
        tables.headline(metrics, set_name, "patient"),
        "<h3>Image level</h3>",
        tables.headline(metrics, set_name, "image"),
        "<h3>Per class (patient level)</h3>",
        tables.per_class(metrics, set_name, "patient"),
    ]
    train = training_accuracy(histories, metrics["models"]) if set_name == "cv" else {}
    wanted = _paper_tables(metrics)
    if not wanted:
        return body
    body.append("<h3>As in the papers</h3>")
    for index, level in enumerate(levels):
        parts = [part for name in wanted for part in PAPER_TABLES[name](metrics, set_name, level, train)]
        if index == 0:
            body += parts
        else:
            body.append(f"<details><summary>The same tables at {esc(level)} level</summary>{''.join(parts)}</details>")
    return body


def _confusion_and_roc(
    metrics: dict, set_name: str, patients: pd.DataFrame, saver: _Figures, where: str | None = None
) -> list[str]:
    names = metrics["class_names"]
    prefix = "" if set_name == "cv" else "test_"
    where = where or ("all folds pooled" if set_name == "cv" else "held-out test set")
    h = "h2" if set_name == "cv" else "h3"
    body = [f"<{h}>Confusion matrices ({esc(where)})</{h}>"]
    for model in metrics["models"]:
        entry = metrics.get(set_name, {}).get(model, {})
        matrices = [
            (f"{level} level (n={entry[level]['n']})", entry[level]["pooled"]["confusion_matrix"])
            for level in ("patient", "image")
            if level in entry
        ]
        if matrices:
            fig = figures.confusion_matrices(matrices, names, f"{model}: confusion matrix, {where}")
            body.append(
                saver.add(
                    f"{prefix}confusion_{slug(model)}",
                    fig,
                    f"confusion matrix of {model}",
                    "Cell text: count and share of the true class (row-normalised); colour: share.",
                )
            )
    body.append(f"<{h}>ROC curves, one-vs-rest, patient level ({esc(where)})</{h}>")
    panels = roc_panels(patients[patients["set"] == set_name], metrics["models"], names)
    if panels:
        fig = figures.roc_curves(panels, f"ROC curves, patient level, {where}")
        body.append(saver.add(f"{prefix}roc_patient", fig, "ROC curves at patient level"))
    return body


def _gradcam(panels, saver: _Figures) -> list[str]:
    if panels is None:
        return []
    if isinstance(panels, Figure):
        panels = [("Grad-CAM", panels)]
    body = ["<h2>Grad-CAM</h2>"]
    for index, (title, content) in enumerate(panels):
        body.append(saver.add(f"gradcam_{index + 1}", content, str(title), str(title)))
    return body


def cited(info: dict, metrics: dict, gradcam: bool, permutation: bool) -> list[str]:
    """The references a run's report cites (glioscope.references.for_run)."""
    return references.for_run(
        info.get("recipe") or "",
        tables=_paper_tables(metrics),
        gradcam=gradcam,
        permutation=permutation,
        pooled_note=any(row.get("differs") for row in metrics.get("pooled_vs_folds") or []),
    )


def write_report(run_dir: str | Path, gradcam_panels=None, n_boot: int = 1000, seed: int = 0) -> Path:
    """Write RUN/report.html (and RUN/figures/*.png); evaluates the run first when metrics.json is missing or stale.

    gradcam_panels: [(title, png bytes or matplotlib Figure)] (see glioscope.evaluate.gradcam.gradcam_panels) or one Figure.
    """
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    info = folder.info()
    metrics = load_metrics(run_dir, evaluate_if_missing=True, n_boot=n_boot, seed=seed)
    images = folder.predictions(metrics["class_names"])
    patients = to_patients(images, by=("set", "fold", "model"))
    saver = _Figures(run_dir / "figures")
    histories = folder.histories(metrics.get("folds", []))

    label = folder.label()
    body = _header(info, metrics, label) + [site_banner(metrics)] + findings(metrics)
    body.append("<h2>Results: cross-validation</h2>")
    body += _metric_sections(metrics, "cv", histories)
    body += gap.section(histories, metrics, gap.train_settings(folder))
    body.append("<h2>Learning curves</h2>")
    if not histories:
        body.append(f"<p>No per-epoch metrics (fold&lt;k&gt;/{HISTORY}) were found.</p>")
    for fold, history in histories:
        fig = figures.learning_curves(history, f"Fold {fold}: {figures.line_words(history)}")
        body.append(saver.add(f"learning_curves_fold{fold}", fig, f"learning curves of fold {fold}"))
    body += _confusion_and_roc(metrics, "cv", patients, saver)
    body += permutation.section(run_dir, saver)
    body += site_section(metrics)
    cv, test = (patients[patients["set"] == s] for s in ("cv", "test"))
    body += selective_section(cv, metrics["models"], metrics["class_names"], saver, "all folds pooled")
    if "test" in metrics.get("sets", []):
        body.append("<h2>Results: held-out test set</h2>")
        body += _metric_sections(metrics, "test", [])
        body += _confusion_and_roc(metrics, "test", patients, saver)
        body += site_section(metrics, "test", "held-out test set")
        body += selective_section(test, metrics["models"], metrics["class_names"], saver, "held-out test set", "test_")
    body += _gradcam(gradcam_panels, saver)
    body += attention_section(*folder.attention(), patients, metrics)
    body += run_section(folder, saver)
    notes = list(info.get("notes") or [])
    body.append("<h2>Notes</h2>")
    body.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>" if notes else "<p>No notes.</p>")
    body.append(references.html_section(cited(info, metrics, bool(gradcam_panels), (run_dir / PERMUTATION).is_file())))
    config = run_dir / CONFIG
    if config.is_file():
        body.append(
            f"<details><summary>Resolved recipe ({CONFIG})</summary><pre>{esc(config.read_text(encoding='utf-8'))}</pre></details>"
        )
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    trained = info.get("glioscope_version")
    body.append(
        f"<footer>glioscope {esc(glioscope.__version__)} · report written {esc(now)}"
        + (f" · run trained with glioscope {esc(trained)}" if trained else "")
        + f" · {metrics.get('n_boot')} bootstrap resamples, seed {metrics.get('seed')}</footer>"
    )
    out = run_dir / REPORT
    atomic.write_text(out, page(f"glioscope report: {label.title}", body))
    return out
