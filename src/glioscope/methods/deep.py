"""The deep method: a network per fold (glioscope.runner), applied to slices or volumes (glioscope.samples)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from glioscope import leakcheck
from glioscope.errors import InputError
from glioscope.methods.base import Method
from glioscope.methods.embeddings import deep_embeddings
from glioscope.models.build import build_model, input_normalisation, output_units, weightless
from glioscope.models.outputs import probabilities
from glioscope.models.tta import tta_probabilities
from glioscope.recipe import DEEP
from glioscope.runner import run
from glioscope.rundir import CONFIG, INFO, MODEL, TORCHSCRIPT, RunFolder
from glioscope.samples import build_samples, samples_of_study
from glioscope.util import atomic
from glioscope.util.progress import progress_bar

TOLERANCE = 1e-5  # largest difference in probability allowed between TorchScript and PyTorch
_BATCH = 64  # samples a fold model predicts at a time: memory stays small


class DeepMethod(Method):
    recipes = DEEP
    seed_setting = "train.seed"

    def validation_missing(self, recipe) -> str | None:
        """A deep recipe predicts its inner-validation patients only with train.validation: inner."""
        return None if recipe.train.validation == "inner" else "train.validation: inner"

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

    def check_folds(self, folder, recipe, record) -> dict:
        """Each fold's weights against config.yaml's network, its input channels and run.json's classes (the shapes
        only: the weights are mapped, not read)."""
        states = [(path, folder.model_state(path, mmap=True)) for _, path in self.fold_files(folder)]
        return check_weights(folder, states, recipe, record)

    def load_folds(self, folder, recipe, record, inputs) -> list[tuple[str, torch.nn.Module]]:
        models = []
        for fold, path in self.fold_files(folder):
            state = folder.model_state(path)
            if input_channels(state) != inputs.channels:
                raise InputError(
                    path,
                    f"takes {input_channels(state)} input channel(s), but the images given have "
                    f"{inputs.channels} ({CONFIG} data section: {_channel_words(_channels(recipe))})",
                )
            model = build_model(weightless(recipe.model), len(record.class_names), inputs.channels).model
            try:
                model.load_state_dict(state)
            except (RuntimeError, TypeError, KeyError) as exc:  # shapes or names of another model
                raise InputError(path, _misfit(recipe, record, exc)) from None
            models.append((fold, model.eval()))
        return models

    def probabilities(self, folds, inputs, recipe, record, progress) -> dict[str, np.ndarray]:
        """Each fold model's headline probabilities (SDL: its members' mean), a batch at a time, with the recipe's
        test-time augmentation (evaluate.tta) as cross-validation predicted."""
        normalisation = input_normalisation(recipe.model, recipe.data.normalize)
        dataset = inputs.dataset(np.ones(len(inputs), bool), np.zeros(len(inputs), np.int64), None, normalisation)
        parts: dict[str, list[np.ndarray]] = {fold: [] for fold, _ in folds}
        for start in progress_bar(range(0, len(inputs), _BATCH), desc="predicting", unit="batch", disable=not progress):
            batch = dataset.inputs(range(start, min(start + _BATCH, len(inputs))))
            for fold, model in folds:
                parts[fold].append(headline_probabilities(model, batch, recipe.evaluate.tta))
        return {fold: np.concatenate(chunks) for fold, chunks in parts.items()}

    def embeddings(self, folds, inputs, recipe, record, progress):
        return deep_embeddings(folds, inputs, recipe, progress)

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
def headline_probabilities(model: torch.nn.Module, inputs: torch.Tensor, tta: str = "none") -> np.ndarray:
    """The class probabilities a run reports first (SDL: its members' mean), as evaluated in training; `tta`:
    averaged over the mirrored copies of glioscope.models.tta."""
    return tta_probabilities(model, inputs, tta)[-1].numpy()


def _channels(recipe) -> list[str]:
    data = recipe.data
    if data.kind == "volumes":
        return list(data.volumes.channels)
    channels = data.slices.channels
    if isinstance(channels, tuple):
        return _with_context(list(channels), data.slices.context)
    sequence = dict(data.select).get("sequence")
    grey = f"{sequence if isinstance(sequence, str) else 'MR'} (grey)"
    if channels == "native":
        return [
            "the file's own channels"
            + (f", each at z-{data.slices.context}..z+{data.slices.context}" if data.slices.context else "")
        ]
    return _with_context([grey] * 3 if channels == "stack3" else [grey], data.slices.context)


def _with_context(channels: list[str], k: int) -> list[str]:
    """2.5D: each channel's name for each slice of its group (glioscope.samples.slices.context's order)."""
    if not k:
        return channels
    return [f"{name} at z{offset:+d}" if offset else f"{name} at z" for name in channels for offset in range(-k, k + 1)]


def _channel_words(channels: list[str]) -> str:
    if len(set(channels)) == 1 and len(channels) > 1:
        return f"one grey channel, {channels[0].replace(' (grey)', '')}, repeated {len(channels)} times"
    return f"channels {', '.join(channels)}"


def _misfit(recipe, record, exc: Exception) -> str:
    """Why a fold's weights do not fit the network its run's recipe builds, in words."""
    wanted = f"{recipe.model.name} for {len(record.class_names)} classes ({', '.join(record.class_names)})"
    return f"does not fit {wanted}: {str(exc).splitlines()[0][:300]}"


def input_channels(state: dict) -> int:
    """The number of input channels a model's weights expect (its first convolution's)."""
    for name, tensor in state.items():
        if name.endswith("weight") and tensor.dim() in (4, 5):
            return int(tensor.shape[1])
    raise InputError(None, "the model has no convolution to tell its input channels by")


def expected_channels(recipe) -> int | None:
    """The input channels the recipe's data section makes; None when they are the image files' own."""
    data = recipe.data
    if data.kind == "volumes":
        return len(data.volumes.channels)
    channels = data.slices.channels
    count = len(channels) if isinstance(channels, tuple) else {"stack3": 3, "single": 1}.get(channels)
    return None if count is None else count * data.slices.depth


def _shapes(spec, n_classes: int, in_chans: int) -> dict[str, tuple]:
    """The weights' shapes of the network `spec` builds, made on the meta device (nothing allocated) when it can."""
    try:
        with torch.device("meta"):
            model = build_model(spec, n_classes, in_chans).model
    except (NotImplementedError, RuntimeError):
        model = build_model(spec, n_classes, in_chans).model
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_weights(folder: RunFolder, states: list[tuple[Path, dict]], recipe, record) -> dict:
    """{"channels": the weights' input channels}; an InputError naming the file when a fold's weights do not fit
    config.yaml's network or input channels, or run.json's classes."""
    names, spec, expected = list(record.class_names), weightless(recipe.model), expected_channels(recipe)
    first_path, first = states[0][0], input_channels(states[0][1])
    for path, state in states:
        count = input_channels(state)
        if expected is not None and count != expected:
            raise InputError(
                folder / CONFIG,
                f"its data section gives {expected} input channel(s) ({_channel_words(_channels(recipe))}), "
                f"but the first convolution of {path.relative_to(folder.path)} takes {count}",
            )
        if count != first:
            raise InputError(path, f"takes {count} input channel(s), {first_path.relative_to(folder.path)} {first}")
    units, reference = output_units(spec, len(names)), _shapes(spec, len(names), first)
    for path, state in states:
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        missing, unexpected = sorted(reference.keys() - shapes.keys()), sorted(shapes.keys() - reference.keys())
        if missing or unexpected:
            raise InputError(
                path,
                f"does not hold the weights of {CONFIG}'s network `{spec.name}` (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]})",
            )
        wrong = [k for k in reference if shapes[k] != reference[k]]
        head = [k for k in wrong if reference[k][:1] == (units,) and shapes[k][1:] == reference[k][1:]]
        if head:
            raise InputError(
                folder / INFO,
                f"names {len(names)} class(es) ({', '.join(names)}), for which `{spec.name}` ends in {units} "
                f"output unit(s), but the output layer of {path.relative_to(folder.path)} ({head[0]}) has "
                f"{shapes[head[0]][0]}: the class names do not belong to these weights",
            )
        if wrong:
            raise InputError(
                path,
                f"{wrong[0]} has shape {list(shapes[wrong[0]])} where {CONFIG}'s network `{spec.name}` has "
                f"{list(reference[wrong[0]])}",
            )
    return {"channels": first}


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
