"""pretrain(): a backbone trained on other cohorts, supervised or by SimCLR, written with its provenance.

    OUT/config.yaml     the recipe and the pretraining's own settings (a resume must repeat them)
    OUT/weights.pt      the backbone in torchvision's names, with its provenance (glioscope.pretrain.provenance)
    OUT/weights.json    the provenance: sources, patients, images, epochs, loss curve, wall time, leak checks
    OUT/metrics.csv     per-epoch loss (and accuracy: of the classes, or of SimCLR's pairs)
    OUT/loss.png        the loss curve
    OUT/checkpoint_last.pt  while it runs (atomic, every epoch): what --resume continues from

The recipe gives the data settings (slice size, channels, scaling), the augmentations, the
model (its 2D backbone; SDL: the member backbone), its initial weights (model.weights) and
the optimiser (train.*). A kill leaves either no weights.pt or a complete one.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from glioscope import __version__, leakcheck
from glioscope.errors import GlioscopeError, InputError
from glioscope.models.build import input_normalisation
from glioscope.models.weights import WeightsUnavailable
from glioscope.pretrain import backbone, leaks, provenance
from glioscope.pretrain.data import cohort_patients, load_data
from glioscope.pretrain.simclr import DropLast, SimCLRNet, SimCLRTrainer, TwoViews
from glioscope.rundir import CONFIG
from glioscope.train.checkpoint import LAST
from glioscope.util import atomic, schema

METHODS = ("supervised", "simclr")


@dataclasses.dataclass(frozen=True)
class SimCLRSettings:
    """temperature: NT-Xent's; projection: the projection head's output width (hidden: 512)."""

    temperature: float = 0.5
    projection: int = 128


def pretrain(
    recipe,
    cohorts: list[Path],
    out: Path,
    method: str = "supervised",
    excludes: list[Path] = (),
    resume: bool = False,
    progress: bool = True,
    simclr: SimCLRSettings = SimCLRSettings(),
) -> Path:
    """Pretrain the recipe's backbone on `cohorts`; returns OUT/weights.pt."""
    started = time.perf_counter()
    if method not in METHODS:
        raise GlioscopeError(f"pretraining method {method!r}: choose {' or '.join(METHODS)}")
    if simclr.temperature <= 0 or simclr.projection < 1:
        raise GlioscopeError("SimCLR needs a temperature > 0 and a projection width >= 1")
    arch = backbone.backbone_arch(recipe.model)
    out = Path(out)
    config = {
        "method": method,
        "architecture": arch,
        "cohorts": [str(c) for c in cohorts],
        "excludes": [str(e) for e in excludes],
        **({"simclr": dataclasses.asdict(simclr)} if method == "simclr" else {}),
        "recipe": recipe.to_dict(),
    }
    if _check_start(out, config, resume):
        print(f"{out / provenance.WEIGHTS}: pretraining already finished")
        return out / provenance.WEIGHTS
    leaks.check_patients(cohort_patients(cohorts, recipe.data), excludes)  # before any decoding
    data = load_data(cohorts, recipe.data, recipe.task.label if method == "supervised" else None, progress)
    for note in data.notes:
        print(f"note: {note}")
    fingerprints = leakcheck.Fingerprints.of(data.samples)
    leak_notes, excluded = leaks.check_images(fingerprints, list(excludes), recipe.data, progress)
    notes = data.notes + leak_notes
    atomic.write_text(out / CONFIG, yaml.safe_dump(config, sort_keys=False))

    settings = dataclasses.replace(
        recipe.train,
        validation="none",
        monitor="val_loss",
        keep_best=False,
        freeze="none",
        early_stopping=None,
        finetune=dataclasses.replace(recipe.train.finetune, epochs=0),
    )
    torch.manual_seed(settings.seed)
    samples = data.samples
    everything = np.ones(len(samples.table), dtype=bool)
    slices = samples.dataset(
        everything, data.targets(), recipe.augment, input_normalisation(recipe.model, recipe.data.normalize)
    )
    outputs = len(data.classes) if method == "supervised" else 1
    network, initial = _initial_network(arch, outputs, samples.channels, recipe.model, notes)
    name = f"pretrain-{method}-{arch}"
    if method == "supervised":
        trainer = DropLast(network, settings, data.classes, out, name=name, progress=progress)
        dataset = slices
    else:
        width = _backbone_width(network.backbone, samples.channels, samples.images.shape[-1])
        trainer = SimCLRTrainer(
            SimCLRNet(network.backbone, width, simclr.projection),
            settings,
            ["view"],
            out,
            name=name,
            progress=progress,
            temperature=simclr.temperature,
        )
        dataset = TwoViews(slices)
    history = trainer.fit(dataset, None, resume=resume)
    trained = trainer.raw_model if method == "supervised" else network  # SimCLRNet trained network's backbone
    state = backbone.torchvision_state(arch, trained, with_neck=method == "supervised")
    backbone.check_loads(arch, state)
    record = _provenance(method, arch, recipe, settings, data, history, initial, notes, excluded, simclr, trainer)
    record["wall_seconds"] = round(time.perf_counter() - started, 1)  # this invocation: decoding, checks, training
    record["summary"] = provenance.summary(record)
    path = provenance.write(out, state, record, provenance.pack_fingerprints(fingerprints))
    _loss_figure(out / "loss.png", history, method)
    (out / LAST).unlink(missing_ok=True)  # the weights are complete: nothing left to resume
    return path


def _check_start(out: Path, config: dict, resume: bool) -> bool:
    """True when a resumed pretraining has already finished; errors for a used folder or other settings."""
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file; give a folder for the pretraining's outputs")
    if out.is_dir() and any(out.iterdir()):
        if not resume:
            raise InputError(out, "already exists; pass --resume to continue it or choose another folder")
        if (out / CONFIG).is_file() and yaml.safe_load((out / CONFIG).read_text(encoding="utf-8")) != yaml.safe_load(
            yaml.safe_dump(config, sort_keys=False)
        ):
            raise InputError(
                out / CONFIG,
                "the pretraining being resumed had other settings; repeat the same "
                "recipe, --set, --method, --cohort and --exclude options",
            )
        return (out / provenance.WEIGHTS).is_file()
    return False


def _initial_network(arch: str, outputs: int, in_chans: int, spec, notes: list[str]):
    """The network to pretrain, from the recipe's model.weights (or from scratch, with a note, when they are missing)."""
    try:
        return backbone.classifier(arch, outputs, in_chans, spec.weights), spec.weights or "scratch"
    except WeightsUnavailable as exc:
        if spec.weights_fallback != "scratch":
            raise
        notes.append(f"{exc}. Pretraining from scratch instead (model.weights_fallback: scratch).")
        print(f"note: {notes[-1]}")
        return backbone.classifier(arch, outputs, in_chans, None), "scratch"


def _backbone_width(module: torch.nn.Module, channels: int, side: int) -> int:
    was_training = module.training
    module.eval()
    with torch.no_grad():
        width = int(module(torch.zeros(1, channels, side, side)).shape[1])
    module.train(was_training)
    return width


def _provenance(
    method, arch, recipe, settings, data, history: pd.DataFrame, initial, notes, excluded, simclr, trainer
) -> dict:
    sources = data.sources()
    train = {
        k: getattr(settings, k)
        for k in ("batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule", "seed")
    }
    return {
        "method": method,
        "architecture": arch,
        "naming": "torchvision",
        "recipe": recipe.name,
        "sources": sources,
        "patients": sum(s["patients"] for s in sources),
        "items": sum(s["items"] for s in sources),
        "images": int(len(data.samples.table)),
        "patient_ids": all(s["patient_ids"] for s in sources),
        "classes": data.classes,
        "label": recipe.task.label if method == "supervised" else None,
        "epochs": int(len(history)),
        "initialised_from": str(initial),
        "settings": {
            "train": train,
            "slices": schema.to_plain(data.samples.settings),
            "augment": schema.to_plain(recipe.augment),
            "in_chans": int(data.samples.channels),
            **({"simclr": dataclasses.asdict(simclr)} if method == "simclr" else {}),
        },
        "loss": [float(v) for v in history.get("train_loss", [])],
        "train_accuracy": [float(v) for v in history.get("train_accuracy", [])],
        "seconds_per_epoch": [round(float(v), 2) for v in history.get("seconds", [])],
        "training_seconds": round(float(history["seconds"].sum()) if "seconds" in history else 0.0, 1),
        "device": str(trainer.device),
        "threads": int(torch.get_num_threads()),
        "excluded": excluded,
        "notes": list(notes),
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "glioscope_version": __version__,
    }


def _loss_figure(path: Path, history: pd.DataFrame, method: str) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.2), dpi=100)
    axes = figure.add_subplot()
    axes.plot(history["epoch"], history["train_loss"], marker="o")
    axes.set_xlabel("epoch")
    axes.set_ylabel("NT-Xent loss" if method == "simclr" else "cross-entropy")
    axes.set_title(f"pretraining ({method}): training loss per epoch")
    figure.tight_layout()
    with atomic.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
