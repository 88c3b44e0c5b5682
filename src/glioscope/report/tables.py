"""Report tables from a metrics.json dict: headline, per class, and the seeds' own layouts."""

from __future__ import annotations

from glioscope.report.html import esc, interval, mean_sd, number, table

HEADLINE = (("accuracy", "Accuracy"), ("macro_f1", "Macro F1"), ("macro_auc", "Macro AUC"))
LEVEL_NAMES = {"patient": "patient level (mean probability per patient)", "image": "image level (per slice / volume)"}


def pooled_value(level: dict, key: str):
    """A flat metric key ('accuracy', 'f1/II') read from the pooled classification_metrics dict."""
    if "/" in key:
        metric, name = key.split("/", 1)
        return level["pooled"]["per_class"].get(name, {}).get(metric)
    return level["pooled"].get(key)


def cell(level: dict, key: str, digits: int = 3, scale: float = 1.0) -> str:
    """mean ± SD over folds, and below it the pooled value with its 95% bootstrap interval."""
    pooled = f"{number(pooled_value(level, key), digits, scale)} {interval(level['ci'].get(key), digits, scale)}"
    if level["n_folds"] > 1:
        return f'{mean_sd(level["summary"].get(key), digits, scale)}<br><span class="ci">pooled {pooled}</span>'
    return f'{number(pooled_value(level, key), digits, scale)}<br><span class="ci">{interval(level["ci"].get(key), digits, scale)}</span>'


def _levels(metrics: dict, set_name: str, level: str):
    for model in metrics["models"]:
        entry = metrics.get(set_name, {}).get(model, {}).get(level)
        if entry:
            yield model, entry


def _folds_phrase(metrics: dict, set_name: str) -> str:
    if set_name == "test":
        return "held-out test set"
    return f"{len(metrics.get('folds', []))}-fold cross-validation"


def headline(metrics: dict, set_name: str, level: str) -> str:
    rows = []
    for model, entry in _levels(metrics, set_name, level):
        count = (
            str(entry["n"]) if entry["n"] == entry["n_patients"] else f"{entry['n']} ({entry['n_patients']} patients)"
        )
        rows.append([esc(model), count] + [cell(entry, key) for key, _ in HEADLINE])
    unit = "patients" if level == "patient" else "images"
    if set_name == "cv":
        caption = (
            f"{esc(_folds_phrase(metrics, set_name))}, {esc(LEVEL_NAMES[level])}: mean ± SD over folds; "
            f"below, the value over all folds' predictions pooled and its 95% bootstrap interval (patients resampled)."
        )
    else:
        caption = (
            f"Held-out test set, {esc(LEVEL_NAMES[level])}: value and 95% bootstrap interval (patients resampled)."
        )
    return table(["Model", unit] + [name for _, name in HEADLINE], rows, caption)


def per_class(metrics: dict, set_name: str, level: str = "patient") -> str:
    keys = (
        ("precision", "Precision"),
        ("sensitivity", "Sensitivity"),
        ("specificity", "Specificity"),
        ("f1", "F1"),
        ("auc", "AUC (one-vs-rest)"),
    )
    rows = []
    for model, entry in _levels(metrics, set_name, level):
        for name in metrics["class_names"]:
            support = entry["pooled"]["per_class"][name]["support"]
            rows.append([esc(model), esc(name), str(support)] + [cell(entry, f"{key}/{name}") for key, _ in keys])
    caption = f"Per class, {esc(LEVEL_NAMES[level])}, {esc(_folds_phrase(metrics, set_name))}; support = {'patients' if level == 'patient' else 'images'} of the class."
    return table(["Model", "Class", "n"] + [name for _, name in keys], rows, caption, label_columns=2)


def sdl_models(metrics: dict, set_name: str, level: str, training_accuracy: dict[str, float] | None = None) -> str:
    """Table 2 of the SDL paper (Chopra et al.): one row per model, macro averages, in percent, pooled over folds."""
    training_accuracy = training_accuracy or {}
    keys = ("accuracy", "macro_precision", "macro_sensitivity", "macro_specificity", "macro_sensitivity", "macro_f1")
    rows = []
    for model, entry in _levels(metrics, set_name, level):
        train = number(training_accuracy.get(model), 2, 100.0)
        rows.append([esc(model), train] + [number(pooled_value(entry, k), 2, 100.0) for k in keys])
    caption = (
        f"Layout of Table 2 of the SDL paper (Chopra et al.), {esc(LEVEL_NAMES[level])}, {esc(_folds_phrase(metrics, set_name))}, predictions pooled; "
        "percent; precision, recall, specificity, sensitivity and F1 are macro averages over classes; "
        "training accuracy = last epoch, mean over folds."
    )
    header = [
        "Model",
        "Training accuracy",
        "Testing accuracy",
        "Precision",
        "Recall",
        "Specificity",
        "Sensitivity",
        "F1 score",
    ]
    return table(header, rows, caption)


def sdl_classes(metrics: dict, set_name: str, level: str) -> str:
    """Table 3 of the SDL paper (Chopra et al.): per class (one-vs-rest accuracy), per model, in percent, pooled over folds."""
    keys = ("accuracy_ovr", "precision", "sensitivity", "specificity", "sensitivity", "f1")
    rows = []
    for model, entry in _levels(metrics, set_name, level):
        for name in metrics["class_names"]:
            rows.append([esc(model), esc(name)] + [number(pooled_value(entry, f"{k}/{name}"), 2, 100.0) for k in keys])
    caption = (
        f"Layout of Table 3 of the SDL paper (Chopra et al.), {esc(LEVEL_NAMES[level])}, {esc(_folds_phrase(metrics, set_name))}, predictions pooled; "
        "percent; accuracy is one-vs-rest."
    )
    header = ["Model", "Class", "Accuracy", "Precision", "Recall", "Specificity", "Sensitivity", "F1 score"]
    return table(header, rows, caption, label_columns=2)


def autoaugment_classes(metrics: dict, set_name: str, level: str) -> str:
    """The results of the AutoAugment paper (Lo et al., 2019): per class one-vs-rest accuracy, sensitivity, specificity (%) and Az, mean ± SD over folds."""
    keys = (("accuracy_ovr", 1, 100.0), ("sensitivity", 1, 100.0), ("specificity", 1, 100.0), ("auc", 4, 1.0))
    rows = []
    for model, entry in _levels(metrics, set_name, level):
        for name in metrics["class_names"]:
            values = []
            for key, digits, scale in keys:
                pair = (
                    entry["summary"].get(f"{key}/{name}")
                    if entry["n_folds"] > 1
                    else [pooled_value(entry, f"{key}/{name}"), None]
                )
                values.append(mean_sd(pair, digits, scale) if entry["n_folds"] > 1 else number(pair[0], digits, scale))
            rows.append([esc(model), f"{esc(name)} vs rest"] + values)
        overall = [("accuracy", 1, 100.0), ("macro_auc", 4, 1.0)]
        acc, az = (
            mean_sd(entry["summary"].get(k), d, f) if entry["n_folds"] > 1 else number(pooled_value(entry, k), d, f)
            for k, d, f in overall
        )
        rows.append([esc(model), "all classes (accuracy, macro Az)", acc, "", "", az])
    spread = "mean ± SD over folds" if set_name == "cv" else "one test set"
    caption = (
        f"Layout of the results of the AutoAugment paper (Lo et al., 2019), {esc(LEVEL_NAMES[level])}, {esc(_folds_phrase(metrics, set_name))}: one-vs-rest "
        f"classifiers per class, {spread}; accuracy, sensitivity, specificity in percent; Az = area under the ROC curve."
    )
    return table(
        ["Model", "Classifier", "Accuracy", "Sensitivity", "Specificity", "Az"], rows, caption, label_columns=2
    )


def spatiospatial_f1(metrics: dict, set_name: str, level: str) -> str:
    """Tables 2-5 of the spatio-spatial paper (Harkude): F1 per class, macro and weighted F1 per model, mean ± SD over folds."""
    names = metrics["class_names"]
    keys = [f"f1/{name}" for name in names] + ["macro_f1", "weighted_f1"]
    rows = []
    for model, entry in _levels(metrics, set_name, level):
        if entry["n_folds"] > 1:
            rows.append([esc(model)] + [mean_sd(entry["summary"].get(k), 3) for k in keys])
        else:
            rows.append([esc(model)] + [number(pooled_value(entry, k), 3) for k in keys])
    spread = "mean ± SD over folds" if set_name == "cv" else "one test set"
    caption = (
        f"Layout of Tables 2-5 of the spatio-spatial paper (Harkude), {esc(LEVEL_NAMES[level])}, {esc(_folds_phrase(metrics, set_name))}: "
        f"F1 per class and its macro and weighted averages, {spread}."
    )
    return table(["Model"] + [f"F1 {esc(n)}" for n in names] + ["Macro F1", "Weighted F1"], rows, caption)
