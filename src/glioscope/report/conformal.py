"""What abstaining buys, in reports and on the terminal: risk-coverage curves (every report) and the coverage of
conformal prediction sets (an external test's report; glioscope.evaluate.conformal and .selective)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from glioscope.evaluate.selective import at_coverages, risk_coverage
from glioscope.report.figures import new_figure
from glioscope.report.html import esc, interval, number, table


def set_text(entry: dict) -> str:
    """A patient's prediction set in words: "II", "uncertain: II or III", or "empty (no class fits)"."""
    members = entry.get("prediction_set")
    if members is None:
        return "no set"
    if not members:
        return "empty (no class fits at this level)"
    return f"uncertain: {' or '.join(members)}" if len(members) > 1 else members[0]


def set_words(entry: dict, options) -> str:
    """A batch line's end: " set at 90%: uncertain: II or III" ("" without a set)."""
    return "" if "prediction_set" not in entry else f"  set at {options.level:.0%}: {set_text(entry)}"


def coverage_lines(found: dict | None) -> list[str]:
    """An external test's coverage of its prediction sets, for the terminal (none without sets)."""
    if not found:
        return []
    lines = [
        f"Prediction sets at {found['level']:.0%} ({'Mondrian' if found['mondrian'] else 'standard'}, calibrated on "
        f"{found['calibration']['n_patients']} CV patients): coverage {number(found['coverage'])} "
        f"{interval(found['ci'])} on {found['n']} patients ({found['covered']} covered); uncertain "
        f"{found['uncertain']:.0%}, empty {found['empty']:.0%}"
    ]
    for name, c in (found.get("per_class") or {}).items():
        lines.append(f"  class {name}: coverage {number(c['coverage'])} {interval(c['ci'])} ({c['n']} patients)")
    return lines


def risk_coverage_figure(curves: Sequence[tuple[str, dict]], title: str) -> Figure:
    """Accuracy of the patients kept against the share kept, the least confident set aside first."""
    fig = new_figure(5.2, 3.8)
    ax = fig.subplots()
    for label, curve in curves:
        ax.plot(curve["coverage"], curve["accuracy"], marker=".", linewidth=1.4, label=label)
    ax.set_xlim(1.02, -0.02)  # reading left to right: abstaining on more and more patients
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("share of patients kept (the least confident set aside)")
    ax.set_ylabel("accuracy of the patients kept")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def selective_section(
    patients: pd.DataFrame, models: Sequence[str], names: Sequence[str], saver, where: str, prefix=""
):
    """The risk-coverage section of a report: a curve per model, and accuracy at 100, 90, 75 and 50% kept."""
    curves, rows = [], []
    for model in models:
        chosen = patients[patients["model"] == model]
        if chosen.empty:
            continue
        probabilities = chosen[[f"prob_{n}" for n in names]].to_numpy(float)
        target = chosen["target"].to_numpy(int)
        curves.append((model, risk_coverage(probabilities, target)))
        cells = [
            f'{number(r["accuracy"])} <span class="ci">{interval(r["ci"])}</span><br>'
            f'<span class="ci">{r["kept"]} kept</span>'
            for r in at_coverages(probabilities, target)
        ]
        rows.append([esc(model), *cells])
    if not curves:
        return []
    figure = risk_coverage_figure(curves, f"Risk-coverage, patient level, {where}")
    return [
        f"<h3>Selective prediction: what abstaining buys ({esc(where)})</h3>",
        saver.add(
            f"{prefix}risk_coverage",
            figure,
            "risk-coverage curves",
            "Each model's patients ranked by the probability of the class it predicts; the least confident are set "
            "aside first. A curve that rises to the right means its confidence tells right from wrong; a flat one, "
            "that abstaining buys nothing.",
        ),
        table(
            ["Model", "100% kept", "90% kept", "75% kept", "50% kept"],
            rows,
            "Accuracy of the most confident patients with its 95% Clopper-Pearson interval (patients tied in "
            "confidence are kept together, so a column can keep a few more).",
        ),
    ]


def coverage_figure(found: dict, title: str) -> Figure:
    """Empirical coverage (95% Clopper-Pearson bars) and the share of uncertain sets against the nominal level."""
    rows = found["curve"]["levels"]
    levels = np.array([r["level"] for r in rows])
    cover = np.array([r["coverage"] for r in rows], float)
    bars = np.array([[c - r["ci"][0], r["ci"][1] - c] for c, r in zip(cover, rows)]).T
    fig = new_figure(5.2, 3.8)
    ax = fig.subplots()
    ax.plot([0.45, 1.0], [0.45, 1.0], color="#a0aec0", linestyle=":", linewidth=1, label="coverage = level")
    ax.errorbar(levels, cover, yerr=bars, marker="o", capsize=3, linewidth=1.4, label="coverage (95% CI)")
    ax.plot(levels, [r["uncertain"] for r in rows], marker="s", linestyle="--", label="share uncertain (2+ classes)")
    ax.axvline(found["level"], color="#718096", linewidth=0.8, label=f"chosen level {found['level']:g}")
    ax.set_xlim(0.45, 1.0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("nominal level")
    ax.set_ylabel("share of patients")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def coverage_section(found: dict | None, saver) -> list[str]:
    """An external test's prediction sets: coverage beside the nominal level, the shares uncertain and empty."""
    if not found:
        return []
    c = found["calibration"]
    level = f"{found['level']:.2f}"
    rows = [["all patients", str(found["n"]), level, _coverage_cell(found)]]
    rows += [
        [f"class {esc(n)}", str(p["n"]), level, _coverage_cell(p)] for n, p in (found.get("per_class") or {}).items()
    ]
    return [
        f"<h2>Prediction sets at {found['level']:.0%} ({esc(c['method'])})</h2>",
        f"<p>Calibrated on {esc(c['calibrated_on'])}, score {esc('1 - p(true class)')}; never on the external "
        f"patients. Uncertain (a set of two or more classes): {found['uncertain']:.1%} of patients; empty: "
        f"{found['empty']:.1%}; mean set size {found['mean_set_size']:.2f}. Caveat: {esc(c['caveat'])}."
        + (f" {esc(c['too_few'])}." if c.get("too_few") else "")
        + "</p>",
        table(
            ["Patients", "n", "Nominal level", "Empirical coverage [95% CI]"],
            rows,
            f"{esc(found['model'])}: the share of external patients whose set holds their true class, with its "
            "Clopper-Pearson interval; the sets are valid when the interval holds the nominal level (or lies above).",
        ),
        saver.add(
            "conformal_coverage",
            coverage_figure(found, f"{found['model']}: prediction sets on the external cohort"),
            "coverage of the prediction sets against the nominal level",
            "The same calibration at levels 0.50 to 0.99: coverage on the external patients and the share of "
            "uncertain sets, the price of that coverage.",
        ),
    ]


def _coverage_cell(found: dict) -> str:
    return f'{number(found["coverage"])} <span class="ci">{interval(found["ci"])}</span> ({found["covered"]} covered)'
