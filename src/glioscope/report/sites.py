"""The report's section on sites: patients per class of each site, what the site alone predicts, each model's
metrics within each site, and a warning when sites and labels are entangled (metrics.json's `sites` block,
glioscope.evaluate.sites)."""

from __future__ import annotations

from glioscope.report.html import esc, interval, number, table


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
