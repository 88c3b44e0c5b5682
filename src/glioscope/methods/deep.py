"""The deep method: a network per fold (glioscope.runner), applied to slices or volumes (glioscope.samples)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from glioscope import leakcheck
from glioscope.errors import InputError
from glioscope.methods.base import Method
from glioscope.models.build import build_model, input_normalisation, weightless
from glioscope.models.outputs import probabilities
from glioscope.recipe import DEEP
from glioscope.runner import run
from glioscope.rundir import CONFIG, MODEL, TORCHSCRIPT, RunFolder
from glioscope.samples import build_samples, samples_of_study
from glioscope.util import atomic
from glioscope.util.progress import progress_bar

TOLERANCE = 1e-5  # largest difference in probability allowed between TorchScript and PyTorch
_BATCH = 64  # samples a fold model predicts at a time: memory stays small


class DeepMethod(Method):
    recipes = DEEP

    def run(
        self, recipe, cohort, out, splits=None, folds=None, resume=False, progress=True, report=True, cache_dir=None
    ) -> Path:
        return run(
            recipe,
            cohort,
            out,
            splits_path=splits,
            folds=folds,
            resume=resume,
            progress=progress,
            cache_dir=cache_dir,
            report=report,
        )

    def fold_files(self, folder: RunFolder) -> list[tuple[str, Path]]:
        return folder.model_files()

    def inputs(self, recipe, record, frame, cache_dir, progress):
        return build_samples(frame, recipe.data, cache_dir, progress)

    def study_inputs(self, recipe, record, study):
        return samples_of_study(study, recipe.data)

    def load_folds(self, folder, recipe, record, inputs) -> list[tuple[str, torch.nn.Module]]:
        models = []
        for fold, path in self.fold_files(folder):
            model = build_model(weightless(recipe.model), len(record.class_names), inputs.channels).model
            state = folder.model_state(path)
            try:
                model.load_state_dict(state)
            except (RuntimeError, TypeError, KeyError) as exc:  # shapes or names of another model
                raise InputError(path, _misfit(state, recipe, record, inputs, exc)) from None
            models.append((fold, model.eval()))
        return models

    def probabilities(self, folds, inputs, recipe, record, progress) -> dict[str, np.ndarray]:
        """Each fold model's headline probabilities (SDL: its members' mean), a batch at a time."""
        normalisation = input_normalisation(recipe.model, recipe.data.normalize)
        dataset = inputs.dataset(np.ones(len(inputs), bool), np.zeros(len(inputs), np.int64), None, normalisation)
        parts: dict[str, list[np.ndarray]] = {fold: [] for fold, _ in folds}
        for start in progress_bar(range(0, len(inputs), _BATCH), desc="predicting", unit="batch", disable=not progress):
            batch = dataset.inputs(range(start, min(start + _BATCH, len(inputs))))
            for fold, model in folds:
                parts[fold].append(headline_probabilities(model, batch))
        return {fold: np.concatenate(chunks) for fold, chunks in parts.items()}

    def fingerprints(self, inputs):
        return leakcheck.Fingerprints.of(inputs)

    def training_fingerprints(self, folder, recipe, record, progress):
        return leakcheck.folder_fingerprints(folder.path, recipe.data, progress)

    def export_folds(self, run, package, recipe, record, torchscript=False) -> dict:
        checks = {"torchscript_max_difference": {}}
        for fold, path in self.fold_files(run):
            state = run.load_model(path)
            package.save_model(fold, state["model"], state.get("best_epoch", -1), state.get("precision") or {})
            if torchscript:
                checks["torchscript_max_difference"][fold] = _torchscript(
                    recipe, len(record.class_names), state["model"], package.fold(fold) / TORCHSCRIPT
                )
        return checks

    def input_words(self, recipe, record) -> dict:
        data = recipe.data
        channels = _channels(recipe)
        if data.kind == "volumes":
            shape = list(data.volumes.shape)
            value = "[0, 1], each channel scaled between the 0.5 and 99.5 percentiles of the brain"
        else:
            shape = [data.slices.size, data.slices.size]
            value = f"uint8 0..255 scaled to [0, 1], then the model's normalisation ({CONFIG} data.normalize)"
        return {
            "network": f"Network `{recipe.model.name}`",
            "channels": channels,
            "shape": shape,
            "value": value,
            "input": f"{data.kind} of MR images, {_channel_words(channels)}; the preprocessing is the recipe's "
            f"`data` section in {CONFIG} (glioscope applies it)",
            "files": f"fold<k>/{MODEL} (weights, read with `weights_only=True`)",
            "format": "magnitude",
        }


@torch.no_grad()
def headline_probabilities(model: torch.nn.Module, inputs: torch.Tensor) -> np.ndarray:
    """The class probabilities a run reports first (SDL: its members' mean), as evaluated in training."""
    return probabilities(model(inputs))[-1].numpy()


def _channels(recipe) -> list[str]:
    data = recipe.data
    if data.kind == "volumes":
        return list(data.volumes.channels)
    channels = data.slices.channels
    if isinstance(channels, tuple):
        return list(channels)
    sequence = dict(data.select).get("sequence")
    grey = f"{sequence if isinstance(sequence, str) else 'MR'} (grey)"
    return [grey] * 3 if channels == "stack3" else [grey] if channels == "single" else ["the file's own channels"]


def _channel_words(channels: list[str]) -> str:
    if len(set(channels)) == 1 and len(channels) > 1:
        return f"one grey channel, {channels[0].replace(' (grey)', '')}, repeated {len(channels)} times"
    return f"channels {', '.join(channels)}"


def _misfit(state: dict, recipe, record, inputs, exc: Exception) -> str:
    """Why a fold's weights do not fit the network its run's recipe builds, in words."""
    wanted = f"{recipe.model.name} for {len(record.class_names)} classes ({', '.join(record.class_names)})"
    try:
        channels = input_channels(state)
    except InputError:
        channels = None
    if channels is not None and channels != inputs.channels:
        return f"its first convolution takes {channels} channels, but the study gives {inputs.channels} ({wanted})"
    return f"does not fit {wanted}: {str(exc).splitlines()[0][:300]}"


def input_channels(state: dict) -> int:
    """The number of input channels a model's weights expect (its first convolution's)."""
    for name, tensor in state.items():
        if name.endswith("weight") and tensor.dim() in (4, 5):
            return int(tensor.shape[1])
    raise InputError(None, "the model has no convolution to tell its input channels by")


def _example_input(recipe, in_chans: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    if recipe.data.kind == "volumes":
        shape = (2, in_chans, *recipe.data.volumes.shape)
    else:
        shape = (2, in_chans, recipe.data.slices.size, recipe.data.slices.size)
    return torch.rand(shape, generator=generator)


def _torchscript(recipe, n_classes: int, state: dict, path: Path) -> float:
    """Trace the fold model to TorchScript; the largest difference in probability from PyTorch's, refused above
    TOLERANCE."""
    in_chans = input_channels(state)
    model = build_model(weightless(recipe.model), n_classes, in_chans).model
    model.load_state_dict(state)
    model.eval()
    example = _example_input(recipe, in_chans)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # PyTorch 2.14 deprecates TorchScript; its files still load
        traced = torch.jit.trace(model, example)
        expected = probabilities(model(example))[-1]
        got = probabilities(traced(example))[-1]
    difference = float((expected - got).abs().max())
    if difference > TOLERANCE:
        raise InputError(path, f"the TorchScript model differs from PyTorch by {difference:.2e} in probability")
    with atomic.atomic_path(path) as tmp:
        traced.save(str(tmp))
    return difference
