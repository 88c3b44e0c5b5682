"""A model package's card (README.md, for a person) and metadata.json (for a program, after MONAI bundles)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from glioscope import __version__, references
from glioscope.rundir import MANIFEST, METADATA, PATIENT_DIGESTS, TORCHSCRIPT

INTENDED_USE = (
    "Research: reproducing, comparing and externally validating methods that classify brain tumours "
    "in MRI. Not a medical device; not for diagnosis, grading or any decision about a patient's care."
)


@dataclass(frozen=True)
class PackageFacts:
    """What a package's card and metadata say, gathered by glioscope.export."""

    run: object  # the exported run's RunFolder
    recipe: object
    record: object  # its RunRecord
    metrics: dict
    cohort: pd.DataFrame
    headline: str
    torchscript: bool
    words: dict  # what the model takes, from its method (Method.input_words)
    patients: dict | None  # the salted hash's parameters; None when the package holds no patient ids


def _phantom(cohort: pd.DataFrame) -> bool:
    """Whether the run's data came from glioscope's phantom (a synth.json beside its source)."""
    for path in cohort["path"].astype(str).head(20):
        for parent in Path(path).parents:
            if (parent / "synth.json").is_file():
                return True
    return False


def _counts(cohort: pd.DataFrame, names: list[str]) -> dict[str, int]:
    patients = cohort.drop_duplicates("patient_id")
    return {name: int((patients["label"].astype(str) == name).sum()) for name in names}


def _metric(level: dict | None, key: str) -> str:
    if not level:
        return "n/a"
    pooled, (low, high) = level["pooled"].get(key), level["ci"].get(key, (None, None))
    mean, sd = level["summary"].get(key, (None, None))
    text = "n/a" if pooled is None else f"{pooled:.3f}"
    text += f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    if level.get("n_folds", 1) > 1 and mean is not None:
        text += f" (per fold {mean:.3f} ± {sd:.3f})"
    return text


def _patient_words(patients: dict | None) -> str:
    """How the package keeps its training patients' ids, and what that still allows."""
    if patients is None:
        return (
            "The training patients' ids were left out (exported with --no-patient-ids): `glioscope predict` and "
            "`glioscope test` cannot tell whether a patient was in the training data, so check an external cohort "
            "against the training cohort by other means."
        )
    return (
        f"The training patients' ids are stored salted and hashed ({PATIENT_DIGESTS}: {patients['hash']} with "
        f"n={patients['n']}, r={patients['r']}, p={patients['p']} and a random salt of this package), not as "
        "themselves. Anyone who holds the package can still confirm whether an id they know or can guess was in "
        "the training data, by hashing it: ids of a known format (e.g. TCGA-XX-NNNN) can be tried one after "
        "another, a few milliseconds each. Export with --no-patient-ids to leave them out."
    )


def _caveats(recipe, record, cohort: pd.DataFrame, counts: dict[str, int], patients: dict | None = None) -> list[str]:
    caveats = []
    if recipe.task.caveat:
        caveats.append(recipe.task.caveat)
    if _phantom(cohort):
        caveats.append("Trained on glioscope's synthetic phantom only: these weights have never seen a real patient.")
    if min(counts.values(), default=0) < 30:
        caveats.append(
            f"Small training cohort ({sum(counts.values())} patients; the smallest class has "
            f"{min(counts.values(), default=0)}): the intervals above are wide, and performance on "
            "another site is unknown until it is tested there (`glioscope test`)."
        )
    if record.final:  # a final model on every patient: the figures above are its cross-validation's
        statement = record.final["statement"]
        caveats.append(f"{statement[0].upper()}{statement[1:]}.")
    if record.leaky:
        caveats.append("The cross-validation split was leaky (slice level): its metrics overestimate performance.")
    if not record.patient_ids:
        caveats.append("The training source had no patient ids: the metrics are per image and may overestimate.")
    caveats.append(_patient_words(patients))
    return caveats


def model_card(facts: PackageFacts) -> str:
    """README.md of a model package."""
    run, recipe, record, metrics, cohort = facts.run, facts.recipe, facts.record, facts.metrics, facts.cohort
    headline, torchscript, words, patients = facts.headline, facts.torchscript, facts.words, facts.patients
    names = list(record.class_names)
    counts = _counts(cohort, names)
    levels = {level: metrics.get("cv", {}).get(headline, {}).get(level) for level in ("patient", "image")}
    label = run.label()  # from the run's config.yaml: an earlier version's says nothing of --set
    rows = [
        ("accuracy", "Accuracy"),
        ("macro_f1", "Macro F1"),
        ("auc", "AUC"),
        ("brier", "Brier score"),
        ("ece", "Expected calibration error"),
    ]
    lines = [
        f"# {label.title}",
        "",
        f"A model package exported by glioscope {__version__} from the run `{run.path.name}` "
        f"on {datetime.date.today().isoformat()}.",
        "",
        "## Intended use",
        "",
        INTENDED_USE,
        "",
        "## Model",
        "",
        f"- Recipe `{recipe.name}`: {label.description}",
        f"- {words['network']}, {len(record.folds)} fold model(s); the prediction is the mean of "
        f"their probabilities (headline model `{headline}`).",
        f"- Input: {words['input']}.",
        f"- Output: one probability per class: {', '.join(names)}.",
        *_tta_lines(recipe),
        f"- Files: {words['files']}"
        + (f", {words.get('torchscript', f'fold<k>/{TORCHSCRIPT}')} (TorchScript)" if torchscript else "")
        + "; "
        f"{MANIFEST} lists every other file's SHA-256 and size, and glioscope refuses the package when a file "
        "differs, is missing or is extra.",
        "",
        "## Training data",
        "",
        f"{sum(counts.values())} patients: " + ", ".join(f"{name} {n}" for name, n in counts.items()) + ".",
        "",
        "## Evaluation",
        "",
        record.split_statement,
        "",
        f"Cross-validation, `{headline}`, pooled over folds with 95% bootstrap intervals over patients:",
        "",
        "| metric | patient level | image level |",
        "|---|---|---|",
        *[f"| {title} | {_metric(levels['patient'], key)} | {_metric(levels['image'], key)} |" for key, title in rows],
        "",
        "## Caveats",
        "",
        *[f"- {c}" for c in _caveats(recipe, record, cohort, counts, patients)],
        "",
        "## How to use",
        "",
        "```sh",
        "glioscope predict PACKAGE study-folder/            # one study: JSON",
        "glioscope predict PACKAGE worklist/ -o worklist.csv      # many studies: one row per patient",
        "glioscope test PACKAGE --cohort cohorts/other-site -o external   # an external test",
        "```",
        "",
    ]
    cited = references.for_run(recipe.name)
    return "\n".join(lines) + ("\n" + references.markdown(cited) if cited else "")


def _tta_lines(recipe) -> list[str]:
    """A deep recipe's test-time augmentation (evaluate.tta), which glioscope applies and a bare fold model does not."""
    from glioscope.models import tta  # torch: only here

    words = tta.WORDS.get(getattr(recipe.evaluate, "tta", "none"))
    if not words:
        return []
    return [
        f"- Test-time augmentation: each fold model's probability is the {words} (evaluate.tta: "
        f"{recipe.evaluate.tta}), in cross-validation as in glioscope's predictions; a fold model used alone "
        "predicts the image once."
    ]


def metadata(facts: PackageFacts) -> dict:
    """metadata.json of a model package, with the fields of a MONAI bundle's that apply."""
    run, recipe, record, metrics, cohort = facts.run, facts.recipe, facts.record, facts.metrics, facts.cohort
    headline, torchscript, words, patients = facts.headline, facts.torchscript, facts.words, facts.patients
    names = list(record.class_names)
    channels, shape, value = words["channels"], words["shape"], words["value"]
    patient = metrics.get("cv", {}).get(headline, {}).get("patient") or {}
    label = run.label()  # from the run's config.yaml: an earlier version's says nothing of --set
    return {
        "schema": f"glioscope model package 1 (fields after MONAI bundle {METADATA})",
        "version": "1.0.0",
        "glioscope_version": __version__,
        "changelog": {"1.0.0": f"exported from {run.path.name}"},
        "name": recipe.name,
        "title": label.title,
        "task": label.task,
        "description": label.description,
        "settings_changed": list(label.changed) if label.changed is not None else None,
        "intended_use": INTENDED_USE,
        "not_for": "diagnosis or any clinical decision",
        "data_type": "MR",
        "label": recipe.task.label,
        "caveat": recipe.task.caveat,
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": words["format"],
                    "modality": "MR",
                    "num_channels": words.get("num_channels") or len(channels),
                    "spatial_shape": shape,
                    "dtype": "float32",
                    "value_range": value,
                    "is_patch_data": False,
                    "channel_def": {str(k): c for k, c in enumerate(channels)},
                }
            },
            "outputs": {
                "pred": {
                    "type": "probabilities",
                    "format": "classes",
                    "num_channels": len(names),
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "channel_def": {str(k): name for k, name in enumerate(names)},
                }
            },
        },
        "ensemble": {
            "folds": [f"fold{k}" for k in record.folds],
            "combine": "mean of the probabilities",
            "headline_model": headline,
        },
        "training": {
            "patients_per_class": _counts(cohort, names),
            "split": record.split_statement,
            "precision": record.precision,
            "patient_ids": {**patients, "file": PATIENT_DIGESTS, "salted": True} if patients else None,
        },
        "metrics": {
            "cross_validation_patient_level": {
                key: {"value": patient.get("pooled", {}).get(key), "ci95": patient.get("ci", {}).get(key)}
                for key in ("accuracy", "macro_f1", "auc", "brier", "ece")
            }
        },
        "torchscript": torchscript,
        "references": references.as_json(references.for_run(recipe.name)),
    }
