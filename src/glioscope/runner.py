"""Run a recipe: slices (2D) or volumes (3D) from a cohort, patient-level folds, one training per fold,
predictions on each fold's held-out patients, then evaluation and the report.

    RUN/config.yaml run.json cohort.csv splits.csv slices.csv (or volumes.csv)
    RUN/fold<k>/     metrics.csv checkpoint_*.pt tensorboard/ predictions.csv
    RUN/predictions.csv metrics.json report.html
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from glioscope import __version__, cohort, split
from glioscope.augment.augment2d import build_batch_affine, build_train_transform, normalisation
from glioscope.config import dump
from glioscope.errors import GlioscopeError, InputError
from glioscope.interpret import save_gradcam
from glioscope.models import create_model
from glioscope.models.weights import WeightsUnavailable
from glioscope.preprocess import SliceSet, SliceSettings, build_slices
from glioscope.preprocess3d import VolumeSettings, augmentation, build_volumes
from glioscope.train.checkpoint import save_checkpoint
from glioscope.train.data import BatchPrep, SliceDataset, VolumeDataset, fixed_expansion
from glioscope.train import ddp
from glioscope.train.loop import Trainer
from glioscope.train.sdl import SDLTrainer
from glioscope.util import atomic


MODEL_FILE = "model.pt"  # the weights each fold's predictions were made with


@dataclass
class Job:
    """One training: its name, and the items it trains, validates and is evaluated on."""

    name: str  # "fold0", ... or "test" (a source-defined train/test split)
    train: pd.DataFrame
    validation: pd.DataFrame | None
    evaluate: dict[str, pd.DataFrame] = field(default_factory=dict)  # fold label -> held-out items


def _cache_dir(recipe: dict) -> Path:
    """data.cache, else $GLIOSCOPE_CACHE, else ~/.cache/glioscope (slices and volumes in subfolders)."""
    import os

    return Path(recipe["data"].get("cache") or os.environ.get("GLIOSCOPE_CACHE") or Path.home() / ".cache" / "glioscope")


def volume_settings(recipe: dict) -> VolumeSettings:
    options = dict(recipe["data"]["volumes"])
    for key in ("channels", "percentiles", "shape"):
        options[key] = tuple(options[key])
    options["skull_strip"] = options.get("skull_strip") or "none"  # `--set ...skull_strip=none` reads as None
    return VolumeSettings(**options)


def is_3d(recipe: dict) -> bool:
    return recipe["data"].get("kind", "slices") == "volumes"


def build_samples(recipe: dict, frame: pd.DataFrame, cache_dir: Path, progress: bool):
    """The recipe's samples from the cohort rows: a SliceSet (2D) or a VolumeSet (3D)."""
    if is_3d(recipe):
        volumes = build_volumes(frame, volume_settings(recipe), cache_dir / "volumes", progress=progress)
        # One volume per patient: it stands for all its cohort rows in the prediction tables.
        volumes.table["slice_id"] = volumes.table["volume_id"]
        volumes.table["item_id"] = volumes.table["volume_id"]
        return volumes
    return build_slices(frame, slice_settings(recipe), cache_dir / "slices", progress=progress)


def sample_mask(recipe: dict, samples, items: pd.DataFrame) -> np.ndarray:
    """Which samples belong to a partition's cohort items (by item; by patient for volumes).

    A sample of sequences stacked as channels comes from several cohort rows of one
    patient (item id "a+b+..."): it belongs where its first row does.
    """
    if is_3d(recipe):
        return samples.table["patient_id"].isin(set(items["patient_id"])).to_numpy()
    first = samples.table["item_id"].astype(str).str.split("+", regex=False).str[0]
    return first.isin(set(items["item_id"].astype(str))).to_numpy()


def slice_settings(recipe: dict) -> SliceSettings:
    options = dict(recipe["data"]["slices"])
    if isinstance(options.get("channels"), list):
        options["channels"] = tuple(options["channels"])
    options["percentiles"] = tuple(options.get("percentiles", (0.5, 99.5)))
    return SliceSettings(**options)


def class_names(recipe: dict, frame: pd.DataFrame) -> list[str]:
    column = recipe["task"]["label"]
    present = sorted({str(v) for v in frame[column] if str(v) != ""})
    names = [str(c) for c in recipe["task"].get("classes") or present]
    unknown = sorted(set(present) - set(names))
    if unknown:
        raise InputError(None, f"labels {unknown} are not among task.classes {names}")
    return names


def load_cohort(recipe: dict, cohort_path: Path) -> pd.DataFrame:
    """The cohort rows this recipe uses: its selection, labelled rows only."""
    frame = cohort.load(cohort_path)
    if recipe["data"].get("select"):
        frame = cohort.select(frame, {k: v if isinstance(v, list) else [v] for k, v in recipe["data"]["select"].items()})
    column = recipe["task"]["label"]
    if column not in frame:
        raise InputError(cohort_path, f"cohort has no column {column!r} (task.label)")
    frame = frame[frame[column].astype(str) != ""].reset_index(drop=True)
    if frame.empty:
        raise InputError(cohort_path, f"no labelled rows left after data.select {recipe['data'].get('select')}")
    if column != "label":
        frame["label"] = frame[column]
    return frame


def make_or_load_splits(recipe: dict, frame: pd.DataFrame, splits_path: Path | None) -> tuple[pd.DataFrame, dict]:
    cv = recipe["cv"]
    if splits_path is not None:
        table, meta = split.load(splits_path, allow_leaky=bool(cv.get("leaky_slice_level")))
        missing = set(frame["item_id"]) - set(table["item_id"])
        if missing:
            raise InputError(splits_path, f"{len(missing)} cohort items have no fold, e.g. {sorted(missing)[:3]}")
        table = table[table["item_id"].isin(set(frame["item_id"]))].reset_index(drop=True)
        return table, meta
    if cv.get("mode", "kfold") == "source":
        return _source_split(frame)
    if cv.get("mode") == "holdout":
        return split.make_holdout(frame, float(cv.get("test_fraction") or 0.1), seed=int(cv.get("seed", 0)))
    return split.make_splits(
        frame, folds=int(cv["folds"]), test_fraction=float(cv.get("test_fraction", 0.0)), seed=int(cv.get("seed", 0)),
        leaky_slice_level=bool(cv.get("leaky_slice_level")),
    )


def _source_split(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The split a source defines (Training/Testing folders): train = fold 0, test held out."""
    given = frame["source_split"].str.lower()
    if not given.isin(["test", "testing"]).any():
        raise InputError(None, "cv.mode 'source' needs a source split with a Test/Testing part (see source_split)")
    table = pd.DataFrame({"item_id": frame["item_id"], "patient_id": frame["patient_id"], "label": frame["label"]})
    table["partition"] = np.where(given.isin(["test", "testing"]), "test", "cv")
    table["fold"] = np.where(table["partition"] == "test", -1, 0)
    table["leaky"] = False
    split.assert_disjoint({"train": table[table["partition"] == "cv"], "test": table[table["partition"] == "test"]})
    meta = {"folds": 1, "mode": "source", "leaky": False, "statement": "Split given by the source (train/test folders); "
            "no patient in both.", "counts": split.fold_counts(table), "notes": [], "test_fraction": None, "seed": None}
    return table, meta


def plan_jobs(recipe: dict, table: pd.DataFrame, only: list[int] | None = None, mode: str | None = None) -> list[Job]:
    """One job per fold (or one for a source or holdout split); validation is an inner patient split if asked.

    `mode` is the splits' own (split.json), which wins over the recipe's cv.mode: k-fold
    splits given with --splits run every fold even for a holdout recipe.
    """
    test = table[table["partition"] == "test"]
    folds = sorted(int(k) for k in table.loc[table["partition"] == "cv", "fold"].unique())
    jobs = []
    mode = mode or recipe["cv"].get("mode", "kfold")
    source_mode = mode in ("source", "holdout")  # one training, tested on `test`
    if source_mode and test.empty:
        raise InputError(None, f"a {mode} split trains once and evaluates on its test patients, but this split has none")
    for k in folds:
        if only is not None and k not in only:
            continue
        parts = split.fold_partitions(table, k)
        train, held_out = (parts["train"], None) if not source_mode else (table[table["partition"] == "cv"], None)
        if not source_mode:
            held_out = parts["validation"]
        train, validation = _inner_validation(recipe, train)
        evaluate = {} if held_out is None else {str(k): held_out}
        if len(test):
            evaluate["test"] = test
        name = f"fold{k}" if not source_mode else "train"
        job = Job(name, train, validation, evaluate)
        named = {"train": job.train, **({"validation": validation} if validation is not None else {}),
                 **{f"evaluate:{n}": t for n, t in evaluate.items()}}
        if not bool(table["leaky"].any()):
            split.assert_disjoint(named)
        jobs.append(job)
    return jobs


def _inner_validation(recipe: dict, train: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    settings = recipe["train"]
    if settings.get("validation", "none") != "inner":
        return train, None
    fraction = float(settings.get("validation_fraction", 0.15))
    units = train.drop_duplicates("patient_id")
    folds = max(2, round(1 / fraction))
    if units["label"].value_counts().min() < folds:
        folds = max(2, int(units["label"].value_counts().min()))
    inner, _ = split.make_splits(train, folds=folds, seed=int(settings.get("seed", 0)) + 17)
    validation_ids = set(inner.loc[inner["fold"] == 0, "item_id"])
    is_validation = train["item_id"].isin(validation_ids)
    return train[~is_validation], train[is_validation]


# --- building blocks -----------------------------------------------------------------


def input_channels(samples) -> int:
    array = samples.volumes if hasattr(samples, "volumes") else samples.images
    return int(array.shape[1])


def build_model(recipe: dict, num_classes: int, in_chans: int, notes: list[str]) -> torch.nn.Module:
    model_cfg = recipe["model"]
    if model_cfg.get("sigmoid") and num_classes == 2:
        num_classes = 1  # one sigmoid unit for the second class, trained with binary cross-entropy
    kwargs = {k: model_cfg[k] for k in ("head", "hidden") if model_cfg.get(k) is not None}
    kwargs.update(model_cfg.get("options") or {})
    if model_cfg["name"] == "sdl":
        kwargs.update(backbone=model_cfg["backbone"], members=int(model_cfg["members"]))
    weights = model_cfg.get("weights")
    try:
        return create_model(model_cfg["name"], num_classes, in_chans, weights, **kwargs)
    except WeightsUnavailable as exc:
        if model_cfg.get("weights_fallback", "scratch") != "scratch":
            raise
        message = f"{exc}. Training from scratch instead (model.weights_fallback: scratch)."
        if message not in notes:
            notes.append(message)
            print(f"note: {message}")
        if recipe["train"].get("freeze") == "backbone":
            # A frozen backbone without its pretrained weights would stay random: train it too.
            recipe["train"]["freeze"] = "none"
            message = "train.freeze: backbone dropped, since the backbone starts from scratch"
            notes.append(message)
            print(f"note: {message}")
        return create_model(model_cfg["name"], num_classes, in_chans, None, **kwargs)


def class_weights(recipe: dict, targets: np.ndarray, n_classes: int) -> torch.Tensor | None:
    """none | complement (W_c = 1 - n_c / N) | inverse (N / (C n_c))."""
    mode = str(recipe["train"].get("class_weights") or "none").lower()
    if mode in ("none", "false"):
        return None
    counts = np.bincount(targets, minlength=n_classes).astype(float)
    if mode == "complement":
        weights = 1.0 - counts / counts.sum()
    elif mode in ("inverse", "true", "balanced"):
        weights = counts.sum() / (n_classes * np.maximum(counts, 1))
    else:
        raise GlioscopeError(f"train.class_weights: choose none, complement or inverse, got {mode!r}")
    return torch.tensor(weights, dtype=torch.float32)


def batch_prep(recipe: dict, channels: int, train: bool) -> BatchPrep:
    """How a uint8 batch becomes model input for this recipe (augmented when training)."""
    affine = build_batch_affine(recipe.get("augment", {})) if train else None
    return BatchPrep(normalisation(recipe["data"].get("normalize"), channels), channels, affine)


def make_dataset(recipe: dict, samples, targets: np.ndarray, mask: np.ndarray, train: bool):
    """The samples under `mask`: augmented (and expanded) for training, as they are otherwise."""
    if is_3d(recipe):
        preset = recipe.get("augment", {}).get("volume", "none") if train else "none"
        transform = augmentation(preset, spacing=float(recipe["data"]["volumes"]["spacing"]))
        return VolumeDataset(torch.from_numpy(samples.volumes[mask]), targets[mask], transform)
    slices = samples
    channels = slices.images.shape[1]
    # stack3 slices hold one grey channel three times: keep one, repeat it per batch as a view.
    images = slices.images[mask, :1] if slices.settings.channels == "stack3" else slices.images[mask]
    images = torch.from_numpy(np.ascontiguousarray(images))
    prep = batch_prep(recipe, channels, train)
    if not train:
        return SliceDataset(images, targets[mask], None, prep)
    augment = recipe.get("augment", {})
    return SliceDataset(images, targets[mask], build_train_transform(augment), prep,
                        variants=fixed_expansion(augment.get("expand")))


def trainer_for(recipe: dict, model, names: list[str], out: Path, weights, progress: bool,
                context: ddp.DistContext | None = None) -> Trainer:
    cls = SDLTrainer if recipe["model"]["name"] == "sdl" else Trainer
    return cls(model, recipe["train"], names, out, name=recipe["name"], class_weights=weights, progress=progress,
               context=context)


def prediction_rows(probs: dict[str, np.ndarray], table: pd.DataFrame, targets: np.ndarray, fold: str, names) -> pd.DataFrame:
    frames = []
    for model_name, p in probs.items():
        frame = table[["slice_id", "item_id", "patient_id"]].copy()
        frame.insert(0, "model", model_name)
        frame.insert(0, "fold", fold)
        frame["target"] = targets
        for k, name in enumerate(names):
            frame[f"prob_{name}"] = p[:, k]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# --- the run ---------------------------------------------------------------------


def run(recipe: dict, cohort_path: Path, out: Path, splits_path: Path | None = None, folds: list[int] | None = None,
        resume: bool = False, progress: bool = True, cache_dir: Path | None = None, report: bool = True) -> Path:
    """Train and evaluate `recipe` on every fold (or `folds`); returns the run folder.

    `cache_dir` overrides the recipe's data.cache, where decoded slices are kept.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not resume:
        raise InputError(out, "run folder already exists; pass --resume to continue it or choose another folder")
    if resume and (out / "config.yaml").is_file():
        if yaml.safe_load((out / "config.yaml").read_text()) != yaml.safe_load(dump(recipe)):
            raise InputError(out / "config.yaml", "the recipe differs from the run being resumed; give the same recipe and --set/--quick options")
        splits_path = splits_path or out  # the folds the run started with
    frame = load_cohort(recipe, cohort_path)
    names = class_names(recipe, frame)
    table, meta = make_or_load_splits(recipe, frame, splits_path)
    slices = build_samples(recipe, frame, Path(cache_dir) if cache_dir else _cache_dir(recipe), progress)
    notes = list(slices.notes)
    if slices.skipped:
        notes.append(f"{len(slices.skipped)} item(s) could not be used and were left out (see samples_skipped.csv)")
    # Under torchrun every process trains; the first one writes the files.
    context = ddp.init_distributed(recipe["train"].get("device"))
    if context.is_main:
        _write_inputs(out, recipe, frame, table, meta, slices, names, notes)
    targets = slices.table["label"].map({n: i for i, n in enumerate(names)}).to_numpy()
    jobs = plan_jobs(recipe, table, folds, mode=meta.get("mode") or ("kfold" if splits_path else None))
    for k, job in enumerate(jobs):
        _run_job(recipe, job, slices, targets, names, out, resume, progress and context.is_main, notes, context,
                 first=k == 0)
    if context.is_main:
        _write_run_json(out, recipe, names, table, meta, notes, slices, _patient_ids_known(cohort_path))
        _merge_predictions(out, [job.name for job in jobs])
        if report:
            finish(out)
    ddp.barrier(context)
    return out


def _run_job(recipe, job: Job, slices: SliceSet, targets, names, out: Path, resume, progress, notes,
             context: ddp.DistContext, first: bool = False) -> None:
    job_dir = out / job.name
    if (job_dir / "predictions.csv").is_file():
        print(f"{job.name}: already finished, skipped")
        return
    train_mask = sample_mask(recipe, slices, job.train)
    val_mask = sample_mask(recipe, slices, job.validation) if job.validation is not None else None
    if not train_mask.any():
        raise GlioscopeError(f"{job.name}: no training slices")
    train_set = make_dataset(recipe, slices, targets, train_mask, train=True)
    val_set = make_dataset(recipe, slices, targets, val_mask, train=False) if val_mask is not None else None
    torch.manual_seed(int(recipe["train"].get("seed", 0)))
    model = build_model(recipe, len(names), input_channels(slices), notes)
    weights = class_weights(recipe, targets[train_mask], len(names))
    trainer = _train_phases(recipe, model, names, job_dir, weights, progress, context, train_set, val_set, resume)
    if context.is_main:
        save_checkpoint(job_dir / MODEL_FILE, model=trainer.raw_model.state_dict(), best_epoch=trainer.best_epoch)
        if val_set is not None:  # for combiners fit on validation patients only (glioscope fuse)
            fold = job.name[len("fold"):] if job.name.startswith("fold") else "0"
            rows = prediction_rows(trainer.predict(val_set), slices.table[val_mask], targets[val_mask], fold, names)
            atomic.write_csv(job_dir / "validation_predictions.csv", rows)
    frames = []
    for k, (fold_label, held_out) in enumerate(job.evaluate.items()):
        mask = sample_mask(recipe, slices, held_out)
        if not mask.any():
            continue
        eval_set = make_dataset(recipe, slices, targets, mask, train=False)
        probs = trainer.predict(eval_set)
        frames.append(prediction_rows(probs, slices.table[mask], targets[mask], fold_label, names))
        if k == 0 and first and context.is_main:
            save_gradcam(trainer.raw_model, eval_set, slices.table[mask], targets[mask], names,
                         job_dir / "gradcam", int(recipe["evaluate"].get("gradcam_per_class", 2)))
    if context.is_main:
        atomic.write_csv(job_dir / "predictions.csv", pd.concat(frames, ignore_index=True))
    ddp.barrier(context)


def phases(recipe: dict) -> list[tuple[str, dict]]:
    """(folder, settings) of each training phase: one, or two when `train.finetune` has epochs.

    Seed 003: first the head alone on a frozen backbone, then everything but the
    BatchNorm layers at a lower learning rate, from the first phase's best weights.
    """
    settings = recipe["train"]
    finetune = settings.get("finetune") or {}
    if not finetune.get("epochs"):
        return [("", settings)]
    first = {k: v for k, v in settings.items() if k != "finetune"}
    second = {**first, **finetune}
    return [("phase1", first), ("phase2", second)]


def _train_phases(recipe, model, names, job_dir: Path, weights, progress, context, train_set, val_set, resume):
    """Fit each phase in turn; the fold's metrics.csv joins their histories."""
    histories = []
    for folder, settings in phases(recipe):
        phase_recipe = {**recipe, "train": settings}
        trainer = trainer_for(phase_recipe, model, names, job_dir / folder, weights, progress, context)
        history = trainer.fit(train_set, val_set, resume=resume)
        model = trainer.raw_model  # the phase's kept weights go on to the next phase
        if folder:
            histories.append(history.assign(phase=folder))
    if histories and context.is_main:
        joined = pd.concat(histories, ignore_index=True)
        joined["epoch"] = np.arange(1, len(joined) + 1)
        atomic.write_csv(job_dir / "metrics.csv", joined)
    return trainer


def _write_inputs(out: Path, recipe, frame, table, meta, slices: SliceSet, names, notes) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "config.yaml", dump(recipe))
    atomic.write_csv(out / "cohort.csv", frame)
    atomic.write_csv(out / "splits.csv", table)
    atomic.write_json(out / "split.json", meta)
    atomic.write_csv(out / ("volumes.csv" if is_3d(recipe) else "slices.csv"), slices.table)
    if slices.skipped:
        atomic.write_csv(out / "samples_skipped.csv", pd.DataFrame([s.__dict__ for s in slices.skipped]))


def _write_run_json(out: Path, recipe, names, table, meta, notes, slices: SliceSet, has_ids: bool) -> None:
    atomic.write_json(out / "run.json", {
        "recipe": recipe["name"],
        "task": recipe["task"].get("name") or recipe.get("description") or recipe["task"]["label"],
        "label": recipe["task"]["label"],
        "class_names": names,
        "models": _model_names(recipe),
        "folds": sorted(int(k) for k in table.loc[table["partition"] == "cv", "fold"].unique()),
        "leaky": bool(meta.get("leaky", False)),
        "split_statement": meta.get("statement", ""),
        "seed_tables": recipe["evaluate"].get("tables"),
        "caveat": recipe["task"].get("caveat"),
        "patient_ids": has_ids,
        "notes": notes,
        "samples": {"kind": recipe["data"].get("kind", "slices"), "count": int(len(slices.table)),
                    "settings": slices.settings.__dict__},
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "glioscope_version": __version__,
        "cohort": str(out / "cohort.csv"),
    })


def _patient_ids_known(cohort_path: Path) -> bool:
    """False when ingest noted that the source has no patient ids (each image its own patient)."""
    from glioscope.io.formats.imagefolder import NO_PATIENT_IDS

    summary = Path(cohort_path) / "summary.json"
    if not summary.is_file():
        return True
    return NO_PATIENT_IDS not in json.loads(summary.read_text()).get("notes", [])


def _model_names(recipe: dict) -> list[str]:
    name = recipe["name"]
    if recipe["model"]["name"] == "sdl":
        return [f"{name}/net{m + 1}" for m in range(int(recipe["model"]["members"]))] + [f"{name}/mean"]
    return [name]


def _merge_predictions(out: Path, job_names: list[str]) -> None:
    types = {"fold": str, "patient_id": str, "item_id": str}
    validation = [pd.read_csv(out / name / "validation_predictions.csv", dtype=types) for name in job_names
                  if (out / name / "validation_predictions.csv").is_file()]
    if validation:
        atomic.write_csv(out / "validation_predictions.csv", pd.concat(validation, ignore_index=True))
    frames = [pd.read_csv(out / name / "predictions.csv", dtype=types)
              for name in job_names if (out / name / "predictions.csv").is_file()]
    merged = pd.concat(frames, ignore_index=True)
    test = merged[merged["fold"] == "test"]
    if len(test) and len(job_names) > 1:
        # Every fold's model predicts the held-out test patients: report their mean (an ensemble).
        probs = [c for c in test.columns if c.startswith("prob_")]
        keys = ["model", "slice_id", "item_id", "patient_id", "target"]
        test = test.groupby(keys, sort=False)[probs].mean().reset_index()
        test.insert(0, "fold", "test")
        merged = pd.concat([merged[merged["fold"] != "test"], test], ignore_index=True)
    atomic.write_csv(out / "predictions.csv", merged)


def finish(out: Path) -> None:
    """Evaluate the predictions and write the report."""
    from glioscope.evaluate.run import evaluate_run
    from glioscope.report import write_report

    recipe = yaml.safe_load((out / "config.yaml").read_text())
    evaluate_run(out, n_boot=int(recipe["evaluate"].get("bootstrap", 1000)))
    write_report(out, gradcam_panels=gradcam_panels(out))


def gradcam_panels(out: Path):
    """Grad-CAM overlays of a few held-out patients per class, for the report."""
    from glioscope.interpret import gradcam_for_run

    return gradcam_for_run(out)
