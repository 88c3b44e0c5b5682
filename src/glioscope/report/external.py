"""OUT/report.html of an external test: the external figures beside the run's own cross-validation."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

import glioscope
from glioscope.errors import InputError
from glioscope.evaluate.aggregate import arrays, to_patients
from glioscope.evaluate.calibration import reliability
from glioscope.evaluate.run import load_metrics
from glioscope.report import figures
from glioscope.report.conformal import coverage_section, selective_section
from glioscope.report.html import esc, interval, mean_sd, number, page, table
from glioscope.report.run_report import _confusion_and_roc, _Figures, _header
from glioscope.report.unlike import external_section
from glioscope.report.sites import site_section
from glioscope.leakcheck import NOT_CHECKED
from glioscope.rundir import DUPLICATES, METRICS, REPORT, RunFolder
from glioscope.util import atomic

COMPARED = (
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro F1"),
    ("auc", "AUC"),
    ("macro_sensitivity", "Sensitivity"),
    ("macro_specificity", "Specificity"),
    ("brier", "Brier score"),
    ("ece", "ECE"),
)


def write_external_report(out_dir: str | Path) -> Path:
    """Write OUT/report.html (and OUT/figures/*.png) of an evaluated external test folder."""
    folder = RunFolder(out_dir)
    info, metrics = folder.info(), load_metrics(out_dir)
    external = info["external"]
    run = RunFolder(external["run"])
    cv_metrics = load_metrics(run.path) if (run / METRICS).is_file() else None
    names = metrics["class_names"]
    images = folder.predictions(names)
    patients = to_patients(images, by=("set", "fold", "model"))
    saver = _Figures(folder / "figures")
    label = folder.label()
    body = _header(info, metrics, label)
    body[0] = f"<h1>glioscope external test: {esc(label.title)}</h1>"
    body.append(
        f'<p class="meta"><b>Trained run:</b> {esc(run.path)} · <b>External cohort:</b> {esc(external["cohort"])}</p>'
    )
    body += _image_check(external.get("images"))
    body.append("<h2>External test beside the run's cross-validation</h2>")
    for level in ("patient", "image"):
        body.append(_comparison(metrics, cv_metrics, external["headline"], level))
    body.append("<h2>Every fold model on the external cohort</h2>")
    body.append(_fold_models(metrics))
    if metrics.get("operating_point"):
        body += _operating_point(metrics["operating_point"], cv_metrics, run, names, external["headline"])
    body.append("<h2>Calibration</h2>")
    body.append(_calibration(patients, run, names, external["headline"], saver))
    body += _confusion_and_roc(metrics, "test", patients, saver, where="external cohort")
    body += site_section(metrics, "test", "external cohort")
    body += coverage_section(metrics.get("conformal"), saver)
    tested = patients[patients["set"] == "test"]
    body += selective_section(tested, [external["headline"]], names, saver, "external cohort", "test_")
    body += external_section(external.get("unlike_training"))
    notes = info.get("notes") or []
    body.append("<h2>Notes</h2>")
    body.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>" if notes else "<p>No notes.</p>")
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body.append(
        f"<footer>glioscope {esc(glioscope.__version__)} · external test report written {esc(now)} · "
        f"{metrics.get('n_boot')} bootstrap resamples of patients</footer>"
    )
    out = folder / REPORT
    atomic.write_text(out, page(f"glioscope external test: {info.get('recipe')}", body))
    return out


def _image_check(images: dict | None) -> list[str]:
    """Banners for duplicate images not looked for, or found (an external test of an earlier version: none)."""
    if not images:
        return []
    if not images.get("checked"):
        return [f'<div class="banner warning">{esc(NOT_CHECKED)}.</div>']
    found = [
        f"{n} {what}"
        for n, what in (
            (images.get("identical", 0), "external image(s) identical to training images"),
            (images.get("near_identical", 0), f"near-identical pair(s) ({images.get('near', '')})"),
        )
        if n
    ]
    if not found:
        return []
    return [f'<div class="banner warning">Warning: {esc("; ".join(found))}: see the notes and {DUPLICATES}.</div>']


def _cell(entry: dict | None, key: str, folds: bool) -> str:
    if not entry:
        return "n/a"
    pooled = f'{number(entry["pooled"].get(key))} <span class="ci">{interval(entry["ci"].get(key))}</span>'
    if folds and entry.get("n_folds", 1) > 1:
        return f'{mean_sd(entry["summary"].get(key))}<br><span class="ci">pooled</span> {pooled}'
    return pooled


def _comparison(metrics: dict, cv_metrics: dict | None, headline: str, level: str) -> str:
    external = metrics.get("test", {}).get(headline, {}).get(level)
    internal = (cv_metrics or {}).get("cv", {}).get(headline, {}).get(level)
    rows = [[esc(title), _cell(internal, key, True), _cell(external, key, False)] for key, title in COMPARED]
    counts = (
        f"{internal['n_patients'] if internal else 'n/a'} patients (CV), "
        f"{external['n_patients'] if external else 'n/a'} patients (external)"
    )
    caption = (
        f"{level.capitalize()} level, {esc(headline)}: cross-validation (mean ± SD over folds, pooled with "
        f"95% bootstrap interval) and external test (the mean of the fold models, 95% bootstrap interval over "
        f"patients); {counts}."
    )
    return table(["Metric", "Cross-validation", "External test"], rows, caption)


def _fold_models(metrics: dict) -> str:
    rows = []
    for model in metrics["models"]:
        entry = metrics.get("test", {}).get(model, {}).get("patient")
        rows.append([esc(model)] + [_cell(entry, key, False) for key, _ in COMPARED[:3] + COMPARED[5:]])
    titles = [t for _, t in COMPARED[:3] + COMPARED[5:]]
    return table(
        ["Model"] + titles,
        rows,
        "Patient level, external cohort: the fold models' mean (first) and each "
        "fold model alone, with 95% bootstrap intervals.",
    )


def _operating_point(point: dict, cv_metrics, run: RunFolder, names, headline: str) -> list[str]:
    rows = []
    for model, result in point["test"].items():
        (tn, fp), (fn, tp) = result["confusion_matrix"]
        rows.append(
            [
                esc(model),
                number(result["sensitivity"]),
                number(result["specificity"]),
                number(result["accuracy"]),
                f"TN {tn} · FP {fp} · FN {fn} · TP {tp}",
            ]
        )
    return [
        f"<h2>At the run's operating point (p({esc(point['positive_class'])}) ≥ {point['threshold']:.3f})</h2>",
        f"<p>The threshold was chosen on {esc(point['chosen_on'])}; it was not tuned on the external patients. "
        "Above, the confusion matrices are at the argmax (a threshold of 0.5).</p>",
        table(
            ["Model", "Sensitivity", "Specificity", "Accuracy", "Confusion"],
            rows,
            "Patient level, external cohort, at the cross-validation's operating point.",
        ),
    ]


def _calibration(patients: pd.DataFrame, run: RunFolder, names, headline: str, saver) -> str:
    """The reliability diagram of the headline model: the external patients, and the run's CV patients."""
    curves = []
    external = patients[(patients["set"] == "test") & (patients["model"] == headline)]
    if len(external):
        curves.append(("external test", reliability(*arrays(external))))
    try:
        cv = run.predictions(names)
        cv = to_patients(cv[(cv["set"] == "cv") & (cv["model"] == headline)], by=("fold",))
        if len(cv):
            curves.append(("cross-validation", reliability(*arrays(cv))))
    except InputError:  # the run's own predictions are a comparison, not a requirement
        pass
    what = "the positive class" if len(names) == 2 else "the predicted class"
    fig = figures.reliability_diagram(curves, f"{headline}: reliability, patient level")
    return saver.add(
        "reliability",
        fig,
        "reliability diagram",
        f"Patients binned by the probability of {what} (10 bins); the observed frequency against the "
        "bin's mean probability. Marker area: patients in the bin.",
    )
