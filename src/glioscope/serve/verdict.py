"""What the result page says first: never a lone class, but the prediction set, how far the fold models
disagree, and how good the run was in its own cross-validation.

    result["verdict"] = verdict(result, cv_auc(run_folder))        # JSON
    verdict_html(result)                                            # the page's heading and its facts
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glioscope.errors import GlioscopeError
from glioscope.report.conformal import set_text
from glioscope.report.html import esc, interval, number
from glioscope.rundir import METRICS, RunFolder


def cv_auc(run_dir: Path) -> dict | None:
    """The patient-level AUC (macro, one-vs-rest, for three or more classes) of a run's or package's
    cross-validation, pooled over folds, with its 95% bootstrap interval; None when not evaluated."""
    if not (Path(run_dir) / METRICS).is_file():
        return None
    try:
        metrics = RunFolder(run_dir).metrics()
        model = metrics["models"][-1]
        level = metrics["cv"][model]["patient"]
    except (GlioscopeError, KeyError, IndexError, TypeError):
        return None
    binary = len(metrics.get("class_names") or []) == 2
    return {
        "model": model,
        "set": "cv",
        "metric": "AUC" if binary else "macro AUC",
        "value": (level.get("pooled") or {}).get("auc"),
        "ci": list((level.get("ci") or {}).get("auc") or [None, None]),
        "n_patients": level.get("n_patients"),
    }


def verdict(result: dict, cv: dict | None) -> dict:
    """The first patient's set, its fold models' spread on the most probable class, and the run's CV headline."""
    patient = result["patients"][0]
    top = patient["prediction"]
    folds = {f: v["probabilities"][top] for f, v in (patient.get("folds") or {}).items()}
    values = np.array(list(folds.values()), float)
    agree = sum(v["prediction"] == top for v in (patient.get("folds") or {}).values())
    conformal = result.get("conformal") or {}
    return {
        "patient_id": patient["patient_id"],
        "set": patient.get("prediction_set"),
        "uncertain": patient.get("uncertain"),
        "shown": set_text(patient),
        "level": conformal.get("level"),
        "most_probable": top,
        "probability": patient["probabilities"][top],
        "folds": {
            "n": len(folds),
            "agree": int(agree),
            "min": float(values.min()) if len(values) else None,
            "max": float(values.max()) if len(values) else None,
            "sd": float(values.std()) if len(values) > 1 else None,
        },
        "cv": cv,
    }


def verdict_html(result: dict) -> str:
    """The heading (the set, "uncertain: II or III" when it holds several classes) and, beside it, the most probable
    class, the fold models' spread and the run's CV figure."""
    v = result["verdict"]
    folds, cv, conformal = v["folds"], v["cv"], result.get("conformal") or {}
    level = f"prediction set at {v['level']:.0%}" if v["level"] is not None else "no prediction set"
    spread = (
        f"{folds['agree']} of {folds['n']} say {esc(v['most_probable'])}; their p({esc(v['most_probable'])}) "
        f"ranges {number(folds['min'])}–{number(folds['max'])}"
        + (f" (SD {number(folds['sd'])})" if folds["sd"] is not None else "")
        if folds["n"]
        else "–"
    )
    figure = (
        f"{esc(cv['metric'])} {number(cv['value'])} {interval(cv['ci'])}, patient level, "
        f"{esc(cv['n_patients'])} patients, folds pooled"
        if cv and cv.get("value") is not None
        else "not evaluated"
    )
    calibrated = (
        f"{esc(conformal['method'])}, on {esc(conformal['n_patients'])} CV patients; {esc(conformal['caveat'])}"
        if conformal
        else "the run has no conformal calibration"
    )
    facts = (
        ("Most probable", f"{esc(v['most_probable'])}, p = {number(v['probability'])} (mean of the fold models)"),
        ("Fold models", spread),
        ("The run's cross-validation", figure),
        ("Set calibrated", calibrated),
    )
    return (
        f'<section class="verdict" id="verdict" data-uncertain="{esc(v["uncertain"])}">'
        f'<p class="muted">{esc(level)} · patient {esc(v["patient_id"])}</p>'
        f'<h1 id="prediction-set">{esc(v["shown"])}</h1><dl class="facts">'
        + "".join(f"<dt>{esc(k)}</dt><dd>{text}</dd>" for k, text in facts)
        + "</dl></section>"
    )
