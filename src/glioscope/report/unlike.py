"""The report sections on how unlike the training data an input is (glioscope.typicality): a run's held-out
distances and its threshold; an external cohort's share of patients beyond it."""

from __future__ import annotations

import numpy as np

from glioscope.evaluate.typicality import ALPHA, NEIGHBOURS, held_out_summary
from glioscope.report import figures
from glioscope.report.html import esc, number
from glioscope.rundir import TYPICALITY, UNLIKE, RunFolder

EXPLAINED = (
    f"Each fold model's feature space (a network's penultimate layer; a classifier's standardised features): a "
    f"patient's distance is the mean distance to its {NEIGHBOURS} nearest training patients of the fold, in the "
    "training patients' SDs per feature (root mean square over features). Each prediction's p-value is the share of "
    "these held-out distances at least as large as its own (median over the fold models)."
)


def run_section(folder: RunFolder, saver) -> list[str]:
    """The run's held-out distances, as a histogram with the threshold, or that they are not measured yet."""
    body = ["<h2>Unlike the training data</h2>"]
    found = held_out_summary(folder / TYPICALITY)
    if found is None:
        body.append(
            f"<p>Not measured yet: the first <code>predict</code>, <code>test</code>, <code>export</code> or "
            f"<code>serve</code> of this run measures its held-out patients ({TYPICALITY}) and writes this report "
            f"again. A prediction is then flagged when p &lt; {ALPHA}.</p>"
        )
        return body
    held, threshold = found["held_out"], found["distance_threshold"]
    beyond = (
        "no distance (too few held-out patients for p &lt; " + f"{ALPHA})" if np.isinf(threshold) else number(threshold)
    )
    body.append(
        f"<p>A prediction is <b>flagged as unlike the training data when p &lt; {ALPHA}</b>: farther from the fold's "
        f"training patients than {1 - ALPHA:.0%} of the run's own {found['n']} held-out patients "
        f"({len(found['folds'])} fold model(s)); here a distance beyond {beyond}. {esc(EXPLAINED)}</p>"
    )
    quantiles = np.quantile(held, [0.0, 0.25, 0.5, 0.75, 0.95, 1.0])
    names = ["min", "25%", "median", "75%", "95%", "max"]
    body.append(
        '<table class="unlike"><tr><th>held-out distance</th>'
        + "".join(f"<th>{n}</th>" for n in names)
        + "</tr><tr><td></td>"
        + "".join(f"<td>{number(q)}</td>" for q in quantiles)
        + "</tr></table>"
    )
    fig = figures.new_figure(5, 2.6)
    ax = fig.add_subplot()
    ax.hist(held, bins=min(20, max(5, len(held) // 2)), color="#4a5568", label="held-out patients")
    if np.isfinite(threshold):
        ax.axvline(threshold, color="#c53030", linestyle="--", label=f"flagged beyond (p < {ALPHA})")
    ax.legend(fontsize=8)
    ax.set_title("Held-out patients: how unlike their fold's training patients", fontsize=9)
    ax.set_xlabel("distance to the nearest training patients (reference SDs per feature)")
    ax.set_ylabel("held-out patients")
    body.append(saver.add("unlike_training", fig, "held-out patients' distances to the training patients"))
    return body


def external_section(summary: dict | None) -> list[str]:
    """An external cohort's patients flagged as unlike the run's training data."""
    if not summary:
        return []
    body = ["<h2>Unlike the training data</h2>"]
    if summary.get("note"):
        body.append(f"<p>{esc(summary['note'][0].upper() + summary['note'][1:])}.</p>")
        return body
    body.append(
        f"<p><b>{summary['flagged']} of {summary['patients']} patients ({summary['share_flagged']:.0%}) are flagged as "
        f"unlike the run's training data</b> (p &lt; {summary['threshold']}: farther from the training patients in the "
        f"fold models' feature space than {1 - summary['threshold']:.0%} of the run's own held-out patients; median "
        f"p-value {number(summary['median_p_value'])}). On patients like the training ones at most "
        f"about {summary['threshold']:.0%} would be; each patient's score is in {esc(UNLIKE)}.</p>"
    )
    return body
