"""What `glioscope auto` leaves a reader: the final model's package, the leaderboard, the choices, one HTML page."""

from __future__ import annotations

import math

import pandas as pd

from glioscope.auto.execute import Clock, Layout, pieces
from glioscope.auto.plan import Plan
from glioscope.sites import site_of
from glioscope.auto.select import Nested, auc, outer_predictions
from glioscope.evaluate.run import evaluate_level
from glioscope.report import html
from glioscope.rundir import PATIENTS
from glioscope.util import atomic

PROCEDURE = "auto (nested choice)"


def final_model(plan: Plan, nested: Nested, layout: Layout, finished: list[str], names: list[str], log) -> dict:
    """The package of the final model: the rule applied to every patient (glioscope.auto.select)."""
    from glioscope.export import export_run

    if plan.choose == "stack":
        from glioscope.auto.stacked import ensemble_run

        run = ensemble_run(plan, nested, layout, finished, names)
        export_run(run, layout.model, overwrite=True, progress=False)
        log(f"final model: the {len(finished)} candidates stacked, exported to {layout.model}")
        return {
            "candidate": "stack of " + ", ".join(finished),
            "package": str(layout.model),
            "run": str(run),
            "rule": "a logistic regression on every candidate's patient logit, fit on every patient's out-of-fold "
            "predictions (the rule each outer fold applied to its inner folds), over the candidates' fold models",
        }
    run = layout.cv_run(nested.final)
    export_run(run, layout.model, overwrite=True, progress=False)
    log(
        f"final model: {nested.final} (best pooled CV patient AUC {nested.final_auc[nested.final]:.3f} of "
        f"{len(finished)}), its fold models exported to {layout.model}"
    )
    return {
        "candidate": nested.final,
        "package": str(layout.model),
        "run": str(run),
        "rule": (
            "the candidate with the best pooled cross-validation patient AUC over every patient (the rule each outer "
            "fold applied to its inner folds), its fold models kept as an ensemble"
        ),
    }


def _row(name: str, patients: pd.DataFrame, names: list[str], n_boot: int, seconds: float | None, cv_s=None) -> dict:
    level = evaluate_level(patients, names, n_boot=n_boot)
    pooled, ci, summary = level["pooled"], level["ci"], level["summary"]
    return {
        "model": name,
        "patients": level["n_patients"],
        "auc": pooled["auc"],
        "auc_low": ci.get("auc", [math.nan, math.nan])[0],
        "auc_high": ci.get("auc", [math.nan, math.nan])[1],
        "auc_fold_mean": summary.get("auc", [math.nan])[0],
        "auc_fold_sd": summary.get("auc", [math.nan, math.nan])[1],
        "accuracy": pooled["accuracy"],
        "balanced_accuracy": pooled.get("macro_sensitivity", math.nan),
        "brier": pooled["brier"],
        "ece": pooled["ece"],
        "cv_seconds": None if cv_s is None else round(cv_s, 1),
        "seconds": None if seconds is None else round(seconds, 1),
    }


def _within_sites(row: dict, patients: pd.DataFrame, names: list[str], sites: dict | None) -> dict:
    """The same predictions' patient AUC among each site's patients alone (a model that learnt the site ranks
    patients well across sites and near chance within each), when the ids tell two or more sites."""
    if not sites:
        return row
    site = patients["patient_id"].map(site_of)
    for name in sites:
        row[f"auc_site_{name}"] = auc(patients[site == name], names)
    return row


def write_results(plan, found, nested: Nested, finished, names, layout: Layout, clock: Clock, model, n_boot) -> dict:
    """leaderboard.csv, choices.csv, predictions_patients.csv, summary.json and report.html; returns the summary."""
    rows = []
    for name in finished:
        spent = clock.pieces.get(name, {})
        cv_s = sum(t for key, t in spent.items() if key.startswith("cv/"))
        patients = outer_predictions(layout.cv_run(name), plan.folds, names)
        row = _row(name, patients, names, n_boot, sum(spent.values()), cv_s)
        rows.append(_within_sites(row, patients, names, found["sites"]))
    row = _row(PROCEDURE, nested.predictions, names, n_boot, sum(sum(v.values()) for v in clock.pieces.values()))
    rows.append(_within_sites(row, nested.predictions, names, found["sites"]))
    board = pd.DataFrame(rows)
    atomic.write_csv(layout.root / "leaderboard.csv", board)
    atomic.write_csv(layout.root / "choices.csv", nested.choices)
    atomic.write_csv(layout.root / PATIENTS, nested.predictions)
    summary = {
        "figure": {k: rows[-1][k] for k in ("auc", "auc_low", "auc_high", "accuracy", "brier", "ece")},
        "choose": plan.choose,
        "finished": finished,
        "dropped": plan.dropped,
        "final_model": model,
        "spent_s": round(clock.spent(), 1),
        "budget_s": None if math.isinf(plan.budget_s) else plan.budget_s,
        "folds": plan.folds,
        "inner_folds": plan.inner_folds,
        "seed": plan.seed,
    }
    atomic.write_json(layout.root / "summary.json", summary)
    atomic.write_text(layout.report, _page(plan, found, nested, board, summary))
    print(_terminal(board, summary))
    return summary


def _terminal(board: pd.DataFrame, summary: dict) -> str:
    lines = ["", "patient-level AUC on the same outer folds [95% bootstrap CI], and wall time:"]
    for row in board.itertuples():
        lines.append(
            f"  {row.model:<26} {html.number(row.auc)} [{html.number(row.auc_low)}, {html.number(row.auc_high)}]"
            f"  accuracy {html.number(row.accuracy)}  {row.seconds or 0:.0f} s"
        )
    lines.append(f"final model: {summary['final_model']['candidate']} -> {summary['final_model']['package']}")
    lines += [f"dropped: {d['name']}: {d['why']}" for d in summary["dropped"]]
    return "\n".join(lines)


def _page(plan: Plan, found: dict, nested: Nested, board: pd.DataFrame, summary: dict) -> str:
    e = html.esc
    figure = summary["figure"]
    sites = list(found["sites"] or {})
    classes = ", ".join(f"{c}: {v['patients']} patients ({v['items']} items)" for c, v in found["classes"].items())
    body = [
        "<h1>glioscope auto</h1>",
        f'<p class="meta">Cohort <b>{e(plan.cohort)}</b>: {classes}; {e(found["dims"])}; masks on '
        f"{found['mask_share']:.0%} of the patients. {plan.folds} outer folds, {plan.inner_folds} inner folds each, "
        f"seed {plan.seed}; {summary['spent_s']:.0f} s spent, {_budget(plan.budget_s)}.</p>",
        f'<p class="statement">The procedure (every candidate, then the choice) scores a patient AUC of '
        f"{html.number(figure['auc'])} {html.interval((figure['auc_low'], figure['auc_high']))} on the outer folds' "
        "held-out patients; each fold's choice was made on inner out-of-fold predictions of that fold's training "
        "patients only, so this figure is not selected on its own test patients.</p>",
        "<h2>How the choice was made</h2>",
        f"<p>{e(_how(plan))}</p>",
        html.table(
            ["outer fold", "candidate", "inner-CV patient AUC"]
            + (["chosen", "held-out patients it predicts"] if plan.choose == "best" else ["weight"]),
            [
                [str(r.fold), e(r.candidate), html.number(r.inner_auc)]
                + (
                    ["yes" if r.chosen else "", str(int(r.patients_given))]
                    if plan.choose == "best"
                    else [html.number(r.weight)]
                )
                for r in nested.choices.itertuples()
            ],
            caption="Each outer fold's choice, on its inner folds only (a held-out patient that the chosen candidate "
            "could not take is predicted by the next-ranked one)",
            label_columns=2,
        ),
        "<h2>Every candidate on the same folds</h2>",
        html.table(
            ["model", "patient AUC [95% CI]", "fold mean ± SD", "accuracy", "Brier", "ECE", "CV time", "all time"]
            + [f"AUC within site {e(site)}" for site in sites],
            [
                [
                    e(r["model"]),
                    f"{html.number(r['auc'])} <span class=ci>{html.interval((r['auc_low'], r['auc_high']))}</span>",
                    html.mean_sd((r["auc_fold_mean"], r["auc_fold_sd"])),
                    html.number(r["accuracy"]),
                    html.number(r["brier"]),
                    html.number(r["ece"]),
                    _seconds(r["cv_seconds"]),
                    _seconds(r["seconds"]),
                ]
                + [html.number(r[f"auc_site_{site}"]) for site in sites]
                for r in board.to_dict("records")
            ],
            caption="Pooled patient-level metrics of the outer folds' held-out patients; CV time: the outer "
            "cross-validation alone (what running the recipe by hand costs); all time: with the inner folds"
            + (
                "; AUC within a site: the same predictions among that site's patients alone (a model that learnt "
                "the site ranks patients well across the sites and near chance within each)"
                if sites
                else ""
            ),
        ),
        "<h2>The final model</h2>",
        f"<p>{e(summary['final_model']['candidate'])}: {e(summary['final_model']['rule'])}. Package: "
        f"<code>{e(summary['final_model']['package'])}</code> (glioscope predict, test, serve).</p>",
        "<h2>The plan</h2>",
        html.table(
            ["candidate", "recipe", "settings", "why", "trial", "estimate"],
            [
                [
                    e(c.name),
                    e(c.recipe),
                    e(" ".join(c.set) + (" --quick" if c.quick else "")),
                    e(c.why),
                    _seconds(c.trial_s),
                    _seconds(c.estimate_s),
                ]
                for c in plan.candidates
            ],
            label_columns=4,
        ),
    ]
    if plan.dropped:
        body.append(
            "<h3>Dropped</h3><ul>" + "".join(f"<li>{e(d['name'])}: {e(d['why'])}</li>" for d in plan.dropped) + "</ul>"
        )
    if plan.not_proposed:
        body.append(
            "<h3>Not proposed for this data</h3><ul>"
            + "".join(f"<li>{e(d['recipe'])}: {e(d['why'])}</li>" for d in plan.not_proposed)
            + "</ul>"
        )
    body.append(
        f"<p>{len(pieces(plan))} trainings per candidate: {plan.folds} outer folds and "
        f"{plan.folds} × {plan.inner_folds} inner ones.</p>"
    )
    return html.page("glioscope auto", body)


def _how(plan: Plan) -> str:
    if plan.choose == "best":
        return (
            "For each outer fold, every candidate was cross-validated on that fold's training patients alone (the "
            "inner folds); the candidate with the best patient AUC on those inner out-of-fold predictions (ties: the "
            "earlier in the plan) gave that fold's held-out patients its own outer-fold predictions."
        )
    return (
        "For each outer fold, a logistic regression on the candidates' patient logits was fit on their inner "
        "out-of-fold predictions of that fold's training patients, and applied to its held-out patients."
    )


def _budget(seconds: float) -> str:
    return "no budget" if math.isinf(seconds) else f"of a {seconds:.0f} s budget"


def _seconds(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.0f} s"
