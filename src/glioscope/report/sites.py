"""The report's section on sites: patients per class of each site, what the site alone predicts, each model's
metrics within each site, and a warning when sites and labels are entangled (metrics.json's `sites` block,
glioscope.evaluate.sites)."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator

from glioscope.report import figures
from glioscope.report.html import esc, image, interval, number, table


def site_section(metrics: dict, set_name: str = "cv", where: str = "cross-validation") -> list[str]:
    """HTML pieces of the section for one evaluated set; one line when the cohort tells no two sites apart."""
    found = metrics.get("sites")
    if not found:
        return []
    if len(found.get("names") or []) < 2:
        told = f"one site ({esc(found['names'][0])}, from the {esc(found['source'])})" if found.get("names") else "none"
        return [f"<p><b>Sites:</b> {told}; no per-site check (name a site column with --site-column).</p>"]
    names = metrics["class_names"]
    body = [f"<h2>Sites ({esc(where)})</h2>"]
    if set_name == "cv" or "cv" not in metrics.get("sets", []):
        body.append(
            f"<p>Sites from the {esc(found['source'])}. A model can learn the scanner or the hospital instead of the "
            "tumour when the sites hold different shares of the classes: compare each model within each site, and "
            "the AUC of the site alone.</p>"
        )
    if found.get("patients") and (set_name == "cv" or "cv" not in metrics.get("sets", [])):
        rows = [[esc(s)] + [str(found["patients"][s].get(c, 0)) for c in names] for s in found["names"]]
        body.append(table(["Site"] + [f"{esc(c)} patients" for c in names], rows, "Patients per class of each site"))
    alone = found.get("site_alone")
    if alone and set_name == "cv":
        body.append(
            f"<p><b>Site alone:</b> out-of-fold AUC {number(alone['auc'])} {interval(alone['ci'])} "
            f"({alone['n_patients']} patients, {alone['n_folds']} folds): each held-out patient scored by the class "
            "rates among its fold's training patients of its site (the overall rates for a site with none).</p>"
        )
    if found.get("by_site_folds") and set_name == "cv":
        body.append(
            "<p>The folds keep sites whole: no model saw a patient of the site it is tested on, and the site alone "
            "scores a held-out site by the class rates of the sites trained on (an AUC below 0.5 when their class "
            "shares run against each other). Pooled over folds, an AUC mixes sites of different class shares: read "
            "each model's AUC within each site below.</p>"
        )
    rows = []
    for model, by_site in (found.get("per_site") or {}).get(set_name, {}).items():
        for site, entry in by_site.items():
            counts = " / ".join(str(entry["classes"].get(c, 0)) for c in names)
            rows.append(
                [
                    esc(model),
                    esc(site),
                    str(entry["n_patients"]),
                    counts,
                    number(entry["auc"]),
                    number(entry["accuracy"]),
                ]
            )
    if rows and found.get("patients"):
        body.append(image(figures.png(site_figure(metrics, set_name)), "patients per site and AUC within each site"))
    if rows:
        body.append(
            table(
                ["Model", "Site", "Patients", " / ".join(esc(c) for c in names), "AUC", "Accuracy"],
                rows,
                "Patient-level metrics within each site (an AUC needs both classes in the site)",
                label_columns=2,
            )
        )
    return body


def site_banner(metrics: dict) -> str:
    """The warning, for the top of a report, when sites and labels are entangled (the `rule`), else ''."""
    found = metrics.get("sites") or {}
    if not (found.get("entangled") or found.get("caution")):
        return ""
    alone = found["site_alone"]
    figure = f"an out-of-fold AUC of {number(alone['auc'])} {interval(alone['ci'])}"
    said = (
        f"Sites and labels are entangled: the site alone gives {figure} ({esc(found['rule'])})."
        if found.get("entangled")
        else f"Sites and labels may be entangled: the site alone gives {figure}; the interval holds 0.5, so these "
        "patients are too few to tell."
    )
    advice = (
        "The folds keep sites whole: a model trained on some sites meets other class shares on the held-out one; "
        "read each model's AUC within each site (Sites, below)."
        if found.get("by_site_folds")
        else "A model can learn the scanner rather than the tumour; judge it within each site (Sites, below), or "
        "cross-validate by site (glioscope split --by-site)."
    )
    return f'<div class="banner warning">{said} {advice}</div>'


def site_figure(metrics: dict, set_name: str = "cv"):
    """Patients per class of each site, and the headline model's AUC: over all patients (with its interval), within
    each site, and that of the site alone (with its interval)."""
    found, names = metrics["sites"], metrics["class_names"]
    model = metrics["models"][-1]
    fig = figures.new_figure(8.5, 3.0)
    counts, aucs = fig.subplots(1, 2, width_ratios=[1, 1.4])
    bottom = np.zeros(len(found["names"]))
    for k, name in enumerate(names):
        heights = np.array([found["patients"][s].get(name, 0) for s in found["names"]], float)
        counts.bar(found["names"], heights, bottom=bottom, label=name, color=f"C{k}")
        bottom += heights
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    counts.set_ylabel("patients")
    counts.set_title("Patients per class of each site", fontsize=9)
    counts.legend(fontsize=7, title="class", title_fontsize=7)
    entry = (metrics.get(set_name) or {}).get(model, {}).get("patient", {})
    by_site = (found.get("per_site") or {}).get(set_name, {}).get(model, {})
    bars = [("all patients", entry.get("pooled", {}).get("macro_auc"), entry.get("ci", {}).get("macro_auc"))]
    bars += [(f"within {site}", by_site[site]["auc"], None) for site in found["names"] if site in by_site]
    alone = found.get("site_alone") if set_name == "cv" else None
    if alone:
        bars.append(("site alone", alone["auc"], alone["ci"]))
    for y, (label, value, ci) in enumerate(bars[::-1]):
        if value is None:
            continue
        colour = "#c53030" if label == "site alone" else "#2b6cb0"
        aucs.barh(y, value, color=colour, alpha=0.35 if ci is None else 0.8)
        if ci and None not in ci:
            aucs.errorbar(value, y, xerr=[[value - ci[0]], [ci[1] - value]], color="black", capsize=3)
    aucs.set_yticks(range(len(bars)), [b[0] for b in bars[::-1]], fontsize=8)
    aucs.axvline(0.5, color="grey", linestyle="--", linewidth=0.8)
    aucs.set_xlim(0, 1)
    aucs.set_xlabel("patient AUC (95% bootstrap interval where drawn)", fontsize=8)
    aucs.set_title(f"{model}: overall, within each site, and the site alone", fontsize=9)
    return fig
