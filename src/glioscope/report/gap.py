"""Training vs held-out: how much better each fold's network does on its own training patients than on new ones.

Per fold, from its training history (fold<k>/metrics.csv, glioscope.rundir.HISTORY) the epoch whose weights the
fold kept: the best epoch of the monitored value (train.monitor) when train.keep_best and the value was
recorded (with a validation split, or monitor: train_loss), else the last epoch; a two-phase training's last
phase. Its training accuracy and loss (the epoch's running figures, on augmented images, per image) stand
beside its validation accuracy and loss (per image, when train.validation: inner) and the held-out fold's
patient-level accuracy and macro AUC (metrics.json, the run's headline model). The gap is training accuracy
less held-out accuracy, and with a validation split also less validation accuracy; a mean gap above
GAP_WARNING gets ADVICE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from glioscope.report.html import esc, number, table
from glioscope.rundir import CONFIG, RunFolder

GAP_WARNING = 0.25  # training accuracy this far above held-out (or validation) accuracy is worth a sentence
ADVICE = (
    "the model fits its training patients far better than new ones: consider train.validation: inner with "
    "early_stopping, weight_decay, stronger augment, or a deep-feature recipe"
)


@dataclass(frozen=True)
class FoldGap:
    """One fold's kept epoch: training and validation figures from its history, held-out ones from metrics.json."""

    fold: str
    epoch: int
    chosen: str  # "best <monitor>" or "last"
    train_accuracy: float
    train_loss: float
    val_accuracy: float | None
    val_loss: float | None
    held_accuracy: float | None
    held_auc: float | None

    @property
    def held_gap(self) -> float | None:
        return None if self.held_accuracy is None else self.train_accuracy - self.held_accuracy

    @property
    def val_gap(self) -> float | None:
        return None if self.val_accuracy is None else self.train_accuracy - self.val_accuracy


def kept_epoch(history: pd.DataFrame, train: dict) -> tuple[pd.Series, str]:
    """The history row of the epoch whose weights a fold kept (see the module docstring), and how it was chosen."""
    rows = history
    if "phase" in rows and rows["phase"].notna().any():
        rows = rows[rows["phase"] == rows["phase"].dropna().iloc[-1]]
    monitor = train.get("monitor") or "val_loss"
    if train.get("keep_best", True) and monitor in rows and rows[monitor].notna().any():
        values = rows[monitor].astype(float)
        index = values.idxmin() if monitor.endswith("loss") else values.idxmax()  # the first best, as EarlyStopping
        return rows.loc[index], f"best {monitor}"
    return rows.iloc[-1], "last"


def fold_gaps(histories, metrics: dict, train: dict) -> list[FoldGap]:
    """Every fold with a history that has training accuracy, for the run's headline model."""
    models = metrics.get("models") or []
    entry = (metrics.get("cv", {}).get(models[-1], {}) if models else {}).get("patient") or {}
    held = {str(f["fold"]): f for f in entry.get("per_fold", [])}
    gaps = []
    for fold, history in histories:
        if "train_accuracy" not in history or not history["train_accuracy"].notna().any():
            continue
        row, chosen = kept_epoch(history, train)
        outside = held.get(str(fold), {})
        gaps.append(
            FoldGap(
                str(fold),
                int(row["epoch"]),
                chosen,
                _accuracy(row.get("train_accuracy")),
                _value(row.get("train_loss")),
                _accuracy(row.get("val_accuracy")),
                _value(row.get("val_loss")),
                _value(outside.get("accuracy")),
                _value(outside.get("macro_auc")),
            )
        )
    return gaps


def _value(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _accuracy(x) -> float | None:
    value = _value(x)
    return value / 100.0 if value is not None and value > 1.5 else value  # a log in percent


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def means(gaps: list[FoldGap]) -> dict[str, float | None]:
    """Each figure's mean over the folds that have it."""
    names = ("train_accuracy", "train_loss", "val_accuracy", "val_loss", "held_accuracy", "held_auc")
    found = {name: _mean(getattr(g, name) for g in gaps) for name in names}
    found["held_gap"] = _mean(g.held_gap for g in gaps)
    found["val_gap"] = _mean(g.val_gap for g in gaps)
    return found


def large(mean: dict) -> bool:
    """Whether the mean gap, to held-out or to validation patients, is above GAP_WARNING."""
    return any(mean[k] is not None and mean[k] > GAP_WARNING for k in ("held_gap", "val_gap"))


def section(histories, metrics: dict, train: dict) -> list[str]:
    """The report's "Training vs held-out" table (and ADVICE when the gap is large); [] without training figures."""
    gaps = fold_gaps(histories, metrics, train)
    if not gaps:
        return []
    validation = any(g.val_accuracy is not None for g in gaps)
    header = ["Fold", "Epoch", "Training accuracy", "Training loss"]
    header += ["Validation accuracy", "Validation loss"] if validation else []
    header += ["Held-out accuracy", "Held-out AUC", "Gap (training − held-out)"]
    header += ["Gap (training − validation)"] if validation else []

    def cells(label: str, epoch: str, g) -> list[str]:
        figures = [g["train_accuracy"], g["train_loss"]] + ([g["val_accuracy"], g["val_loss"]] if validation else [])
        figures += [g["held_accuracy"], g["held_auc"], g["held_gap"]] + ([g["val_gap"]] if validation else [])
        return [esc(label), esc(epoch)] + [number(x) for x in figures]

    rows = [
        cells(g.fold, f"{g.epoch} ({g.chosen})", {**g.__dict__, "held_gap": g.held_gap, "val_gap": g.val_gap})
        for g in gaps
    ]
    mean = means(gaps)
    rows.append(cells("mean", "", mean))
    model = (metrics.get("models") or ["the model"])[-1]
    caption = (
        f"{esc(model)}, per fold: the kept epoch's training accuracy and loss (per image, on augmented images, as "
        "the epoch trained)"
        + (", its validation accuracy and loss (per image)" if validation else " (no validation split)")
        + ", and the held-out fold's patient-level accuracy and macro AUC. The gap is training accuracy less "
        + ("held-out and validation accuracy." if validation else "held-out accuracy.")
    )
    body = ["<h2>Training vs held-out</h2>", table(header, rows, caption, label_columns=2)]
    if large(mean):
        body.append(f'<div class="banner warning">{esc(_sentence(mean))}</div>')
    return body


def _sentence(mean: dict) -> str:
    worst = max(v for v in (mean["held_gap"], mean["val_gap"]) if v is not None)
    return f"Training accuracy is {worst:.2f} above that of patients the network did not train on: {ADVICE}."


def summary_line(histories, metrics: dict, train: dict) -> str | None:
    """One line for the terminal: mean training accuracy vs mean held-out (and validation) accuracy, and the gap."""
    gaps = fold_gaps(histories, metrics, train)
    if not gaps:
        return None
    mean = means(gaps)
    parts = [f"training accuracy {number(mean['train_accuracy'])}"]
    if mean["val_accuracy"] is not None:
        parts.append(f"validation {number(mean['val_accuracy'])}")
    parts.append(f"held-out {number(mean['held_accuracy'])} (patients)")
    line = (
        f"training vs held-out ({(metrics.get('models') or ['model'])[-1]}, mean over {len(gaps)} fold(s)): "
        + ", ".join(parts)
        + f"; gap {number(mean['held_gap'])}"
    )
    return line + (f": {ADVICE}" if large(mean) else "")


def train_settings(folder: RunFolder) -> dict:
    """The run's train section (config.yaml), which says which epoch each fold kept; {} without one."""
    return ((folder.config() or {}).get("train") or {}) if (folder / CONFIG).is_file() else {}


def run_summary_line(run_dir, metrics: dict) -> str | None:
    """summary_line of a run folder whose metrics.json is `metrics`."""
    folder = RunFolder(run_dir)
    return summary_line(folder.histories(metrics.get("folds", [])), metrics, train_settings(folder))
