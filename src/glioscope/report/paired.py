"""The paired comparison of runs on the same patients and folds: one row per pair of models, as a table, HTML, text.

Each run brings its headline model (the last of its models in run.json: SDL's mean, an ensemble's combination); a
single run brings all its models. Every pair is scored on the pooled out-of-fold patient predictions of
cross-validation (glioscope.evaluate.paired). With several pairs the p-values are Holm-adjusted within each test
(AUC, accuracy), and a difference is established at 95% when its adjusted p is below 0.05.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Sequence

import pandas as pd

from glioscope.errors import GlioscopeError
from glioscope.evaluate.operating_point import cv_patients
from glioscope.evaluate.paired import compare_pair, holm
from glioscope.report import figures
from glioscope.report.html import esc, image, interval, is_missing, number, table
from glioscope.rundir import RunFolder
from glioscope.split import check_same_folds

ALPHA = 0.05


def _cv_patients(run_dir: Path, class_names: list[str], model: str) -> pd.DataFrame:
    """One row per cross-validated patient of `model`: patient_id, target, prob_<class>, indexed by patient."""
    patients = cv_patients(RunFolder(run_dir), class_names, model)
    if patients is None:  # a run without cross-validation: no patient to pair (refusal says so)
        return pd.DataFrame(columns=["target", *(f"prob_{c}" for c in class_names)]).rename_axis("patient_id")
    return patients.set_index("patient_id").sort_index()


def _contenders(run_dirs: Sequence[Path], labels: Sequence[str]) -> tuple[list[tuple[str, str, Path]], list[str]]:
    """(run label, model, run folder) of each model that takes part, and the classes."""
    infos = [RunFolder(d).info() for d in run_dirs]
    class_names = list(infos[0]["class_names"])
    if len(run_dirs) == 1:
        return [(labels[0], m, run_dirs[0]) for m in infos[0]["models"]], class_names
    return [(label, i["models"][-1], d) for label, i, d in zip(labels, infos, run_dirs)], class_names


def refusal(run_dirs: Sequence[Path], tables: dict) -> str | None:
    """Why these runs cannot be paired (other folds, other patients, other labels), or None."""
    try:
        check_same_folds(run_dirs)
    except GlioscopeError as error:
        return f"Not paired: {error}. A paired test needs every patient scored by every model."
    (first, a), *others = tables.items()
    for name, b in others:
        if not a.index.equals(b.index):
            missing = sorted(set(a.index) ^ set(b.index))
            return (
                f"Not paired: {first} and {name} were scored on other patients ({len(missing)} in only one of them, "
                f"e.g. {missing[0]}). A paired test needs every patient scored by every model; the rest of the "
                "comparison treats each run on its own patients."
            )
        if not a["target"].equals(b["target"]):
            patient = a.index[a["target"] != b["target"]][0]
            return f"Not paired: {first} and {name} give patient {patient} other labels."
    return None


def paired_rows(
    run_dirs: Sequence[str | Path], labels: Sequence[str], n_boot: int = 1000, seed: int = 0
) -> tuple[pd.DataFrame, str | None]:
    """(one row per pair of models, None), or (an empty table, the reason) when the runs cannot be paired."""
    run_dirs = [Path(r) for r in run_dirs]
    contenders, class_names = _contenders(run_dirs, labels)
    if len(contenders) < 2:
        return pd.DataFrame(), "Not paired: a paired comparison needs two models."
    names = [f"{label}: {model}" for label, model, _ in contenders]
    names = [f"{n} #{k + 1}" if names.count(n) > 1 else n for k, n in enumerate(names)]  # one folder given twice
    tables = {n: _cv_patients(d, class_names, model) for n, (_, model, d) in zip(names, contenders)}
    reason = refusal(run_dirs, tables)
    if reason:
        return pd.DataFrame(), reason
    probs = [f"prob_{c}" for c in class_names]
    rows = []
    for (name_a, a), (name_b, b) in itertools.combinations(tables.items(), 2):
        stats = compare_pair(a["target"].to_numpy(), a[probs].to_numpy(), b[probs].to_numpy(), n_boot, seed)
        rows.append({"a": name_a, "b": name_b, **stats})
    frame = pd.DataFrame(rows)
    for key in ("auc", "accuracy"):
        frame[f"{key}_p_holm"] = holm(frame[f"{key}_p"])
        frame[f"{key}_established"] = frame[f"{key}_p_holm"] < ALPHA
    return frame, None


def _verdict(established: bool, difference: float, a: str, b: str) -> str:
    if not established:
        return "not established"
    return f"established: {esc(a if difference > 0 else b)} higher"


def p_text(p: float) -> str:
    """A p-value in 4 decimals, or in powers of ten below 0.0001."""
    return "–" if is_missing(p) else f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def _p(r, key: str, several: bool) -> str:
    text = p_text(r[f"{key}_p"])
    return text + (f'<br><span class="ci">Holm {p_text(r[f"{key}_p_holm"])}</span>' if several else "")


def paired_html(frame: pd.DataFrame, reason: str | None, class_names: Sequence[str]) -> list[str]:
    """The section's paragraphs and table."""
    if reason:
        return [f'<div class="banner warning">{esc(reason)}</div>']
    several = len(frame) > 1
    binary = len(class_names) == 2
    body = []
    for _, r in frame.iterrows():
        body.append(
            [
                esc(r["a"]),
                esc(r["b"]),
                str(r["n_patients"]),
                f"{number(r['auc_a'])} vs {number(r['auc_b'])}",
                f'{number(r["auc_difference"])}<br><span class="ci">{interval((r["auc_ci_low"], r["auc_ci_high"]))}</span>',
                _p(r, "auc", several),
                _verdict(r["auc_established"], r["auc_difference"], r["a"], r["b"]),
                f"{number(r['accuracy_a'])} vs {number(r['accuracy_b'])}",
                f'{number(r["accuracy_difference"])}<br><span class="ci">'
                f"{interval((r['accuracy_ci_low'], r['accuracy_ci_high']))}</span>",
                f"{r['only_a_right']} / {r['only_b_right']}",
                _p(r, "accuracy", several),
                _verdict(r["accuracy_established"], r["accuracy_difference"], r["a"], r["b"]),
            ]
        )
    auc_test = (
        "DeLong's test for two correlated ROC curves (fast form of Sun &amp; Xu 2014)"
        if binary
        else "the same bootstrap, twice the share of resamples on the far side of zero (DeLong's test covers one "
        f"AUC, not the macro mean of one-vs-rest AUCs of {len(class_names)} classes)"
    )
    adjusted = (
        f" With {len(frame)} pairs the p-values are Holm-adjusted within each test (shown under the raw p), and a "
        "difference is established when its adjusted p is below 0.05."
        if several
        else " A difference is established when its p is below 0.05."
    )
    header = [
        "A",
        "B",
        "patients",
        "AUC A vs B",
        "AUC difference A − B<br>95% paired bootstrap",
        "p (AUC)",
        "AUC difference at 95%",
        "accuracy A vs B",
        "accuracy difference A − B<br>95% paired bootstrap",
        "only A right / only B right",
        "p (McNemar)",
        "accuracy difference at 95%",
    ]
    what = "AUC of class " + esc(class_names[-1]) if binary else "macro one-vs-rest AUC"
    return [
        f"<p>Each pair of models scored on the same patients: the pooled out-of-fold patient predictions of "
        f"cross-validation. AUC is the {what}; its difference has a paired bootstrap interval (patients resampled "
        f"once for both models) and a p from {auc_test}. Accuracy is compared with McNemar's exact test on the "
        f"patients one model gets right and the other wrong.{adjusted}</p>",
        table(header, body, "Paired comparison, patient level, cross-validation pooled.", 2),
        image(
            figures.png(figures.paired_differences(frame, "Paired differences A − B, patient level")),
            "paired differences",
        ),
    ]


def paired_text(frame: pd.DataFrame) -> str:
    """The paired table (paired_rows, or its CSV) for a terminal."""
    if "refused" in frame.columns:
        return str(frame["refused"].iloc[0])
    lines = []
    for _, r in frame.iterrows():
        several = len(frame) > 1
        auc_p = f"{r['auc_test']} p {p_text(r['auc_p'])}" + (f" (Holm {p_text(r['auc_p_holm'])})" if several else "")
        acc_p = f"McNemar p {p_text(r['accuracy_p'])}" + (f" (Holm {p_text(r['accuracy_p_holm'])})" if several else "")
        lines.append(
            f"{r['a']} vs {r['b']} ({r['n_patients']} patients): "
            f"AUC {r['auc_difference']:+.3f} [{r['auc_ci_low']:+.3f}, {r['auc_ci_high']:+.3f}], {auc_p}, "
            f"{'established' if r['auc_established'] else 'not established'}; "
            f"accuracy {r['accuracy_difference']:+.3f} [{r['accuracy_ci_low']:+.3f}, {r['accuracy_ci_high']:+.3f}], "
            f"{acc_p} ({r['only_a_right']} vs {r['only_b_right']} discordant), "
            f"{'established' if r['accuracy_established'] else 'not established'}"
        )
    return "\n".join(lines)


def paired_csv_path(out_html: Path) -> Path:
    """The paired table's CSV beside a comparison page: comparison.html -> comparison_paired.csv."""
    return out_html.with_name(out_html.stem + "_paired.csv")


def no_pairs(reason: str) -> pd.DataFrame:
    """The paired CSV of a refused comparison: one row that says why."""
    return pd.DataFrame([{"refused": reason}])
