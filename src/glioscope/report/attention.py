"""The report's "Slices that decided": a patient-level attention model's most attended slices of a few patients.

The run folder's attention table (every held-out slice's weight, ranked per patient) and the
thumbnails the run kept of each patient's top slices (RunFolder.attention) are shown for the
patients whose cross-validation prediction was the most confident, correct and wrong ones; a
run that kept no thumbnails gets the same slices as a table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glioscope.report.figures import grey_png
from glioscope.report.html import esc, image, table

SHOWN, TOP = 6, 3
MEANING = (
    "Attention is the weight the model gives each of a patient's slices when it pools them into one prediction; "
    "a patient's weights sum to 1. It says where the model looked, not why: a highly attended slice is not "
    "evidence that the tumour there is of the predicted class."
)
_ROW = 'style="display:flex;flex-wrap:wrap;gap:0.8em;align-items:flex-start"'


def chosen(patients: pd.DataFrame, class_names: list[str], shown: int = SHOWN) -> pd.DataFrame:
    """Up to `shown` cross-validation patients (one model's rows): the most confident wrong predictions (half, or
    more when too few are right) and the most confident correct ones; columns predicted, confidence, correct."""
    probs = patients[[f"prob_{n}" for n in class_names]].to_numpy(float)
    frame = patients.assign(
        predicted=probs.argmax(axis=1), confidence=probs.max(axis=1), correct=probs.argmax(axis=1) == patients["target"]
    ).sort_values(["confidence", "patient_id"], ascending=[False, True])
    right, wrong = frame[frame["correct"]], frame[~frame["correct"]]
    n_wrong = min(len(wrong), max(shown // 2, shown - len(right)))
    return pd.concat([right.head(shown - n_wrong), wrong.head(n_wrong)])


def _caption(row, class_names: list[str]) -> str:
    verdict = "correct" if row["correct"] else "wrong"
    return (
        f"Patient {row['patient_id']} (fold {row['fold']}): {class_names[int(row['target'])]}, predicted "
        f"{class_names[int(row['predicted'])]} with probability {row['confidence']:.2f} ({verdict})"
    )


def _label(slice_row) -> str:
    index = slice_row.get("slice_index")
    return f"slice #{int(index)}" if index is not None and not pd.isna(index) else str(slice_row["slice_id"])


def attention_section(
    attention: pd.DataFrame | None, pictures: dict[str, np.ndarray], patients: pd.DataFrame, metrics: dict
) -> list[str]:
    """The section's HTML: nothing without an attention table. `patients`: to_patients of the run's predictions."""
    if attention is None or attention.empty:
        return []
    names = list(metrics["class_names"])
    rows = patients[(patients["set"] == "cv") & (patients["model"] == metrics["models"][-1])]
    rows = rows[rows["patient_id"].astype(str).isin(set(attention["patient_id"].astype(str)))]
    picked = chosen(rows.assign(patient_id=rows["patient_id"].astype(str)), names)
    body = ["<h2>Slices that decided</h2>", f"<p>{esc(MEANING)}</p>"]
    blocks, lines = [], []
    for _, patient in picked.iterrows():
        mine = attention[
            (attention["patient_id"].astype(str) == patient["patient_id"])
            & (attention["fold"].astype(str) == str(patient["fold"]))
        ].sort_values("rank")
        top = mine.head(TOP)
        if top.empty:
            continue
        figures = []
        for _, s in top.iterrows():
            text = f"{_label(s)} · attention {s['attention']:.3f}"
            verdict = f"{names[int(patient['target'])]} / {names[int(patient['predicted'])]}"
            lines.append([esc(patient["patient_id"]), esc(verdict), esc(_label(s)), f"{s['attention']:.3f}"])
            picture = pictures.get(str(s["slice_id"]))
            figures.append(
                image(grey_png(picture), text, text, width=128, css="attended-slice")
                if picture is not None
                else f'<figure class="attended-slice"><figcaption>{esc(text)} (no picture)</figcaption></figure>'
            )
        blocks.append(
            f'<div class="attended" data-patient="{esc(patient["patient_id"])}"><h3>{esc(_caption(patient, names))}'
            f"</h3><div {_ROW}>{''.join(figures)}</div></div>"
        )
    if not blocks:
        return []
    body.append(
        f"<p>The {len(blocks)} cross-validation patients predicted most confidently, right and wrong, each with its "
        f"{TOP} most attended slices (held-out fold model; slice index and weight under each).</p>"
    )
    if pictures:
        return body + blocks
    return body + [
        table(
            ["Patient", "True / predicted", "Slice", "Attention"],
            lines,
            "The run kept no pictures of its slices: their indices and weights",
            label_columns=2,
        )
    ]
