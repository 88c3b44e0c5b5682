"""A model package: a trained run's models, settings and card, without the run folder and its patients.

    PACKAGE/README.md          the model card (model_card.py): intended use, data, split, metrics, caveats
    PACKAGE/metadata.json      machine-readable, after MONAI bundles' metadata.json: inputs, outputs, use
    PACKAGE/config.yaml        the recipe: preprocessing and model, as the run had them
    PACKAGE/run.json           classes, models, split statement, precision, the CV operating point (binary)
    PACKAGE/metrics.json       the run's cross-validation metrics
    PACKAGE/fold<k>/model.pt   each fold's weights (tensors only: torch.load(weights_only=True))
    PACKAGE/fold<k>/model.ts   with torchscript=True: the fold model in TorchScript, checked against PyTorch
    PACKAGE/patients.sha256    the training patients' ids, hashed: predict and test flag a patient seen in training
    PACKAGE/fingerprints.npz   the training images' hashes (glioscope.leakcheck): test finds duplicates

The package is a run-like folder: `glioscope predict PACKAGE study/` and `glioscope test
PACKAGE --cohort ...` load it as they load a run. It holds no image and no patient id.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from glioscope import __version__
from glioscope.errors import InputError
from glioscope.evaluate.run import load_metrics
from glioscope.external import operating_point
from glioscope.model_card import metadata, model_card
from glioscope.models.build import build_model, reported_names, weightless
from glioscope.models.outputs import probabilities
from glioscope.rundir import FINGERPRINTS, PATIENT_HASHES, RunFolder, hash_patient
from glioscope.util import atomic

TOLERANCE = 1e-5  # largest difference in probability allowed between TorchScript and PyTorch


def export_run(run_dir: str | Path, out: str | Path, torchscript: bool = False, overwrite: bool = False,
               progress: bool = True) -> dict:
    """Write the model package of a finished run to `out` (atomically); returns what was checked."""
    run = RunFolder(run_dir)
    recipe, info = run.recipe(), run.info()
    metrics = load_metrics(run_dir, evaluate_if_missing=True, n_boot=recipe.evaluate.bootstrap)
    names = list(info["class_names"])
    headline = reported_names(recipe.model, recipe.name)[-1]
    checks: dict = {"torchscript_max_difference": {}}
    with atomic.atomic_dir(out, overwrite=overwrite) as tmp:
        package = RunFolder(tmp)
        atomic.write_text(tmp / "config.yaml", recipe.dump())
        for fold, path in run.model_files():
            state = run.load_model(path)
            package.save_model(fold, state["model"], state.get("best_epoch", -1), state.get("precision") or {})
            if torchscript:
                checks["torchscript_max_difference"][fold] = _torchscript(recipe, names, state["model"],
                                                                          tmp / fold / "model.ts")
        cohort = run.cohort()
        patients = sorted({hash_patient(p) for p in cohort["patient_id"]})
        atomic.write_text(tmp / PATIENT_HASHES, "\n".join(patients) + "\n")
        prints = run.training_fingerprints(recipe.data, progress)
        notes = []
        if prints is not None:
            prints.patients = np.array([hash_patient(p) for p in prints.patients])
            prints.ids = np.array([f"training sample {k}" for k in range(len(prints.ids))])
            prints.save(tmp / FINGERPRINTS)
        else:
            notes.append("the training images were not available at export: `glioscope test` cannot look for "
                         "duplicate images with this package")
        trimmed = {key: info[key] for key in ("recipe", "task", "label", "class_names", "models", "folds", "leaky",
                                              "split_statement", "seed_tables", "caveat", "patient_ids", "precision",
                                              "samples") if key in info}
        package.write_info({**trimmed, "notes": list(info.get("notes", [])) + notes,
                            "operating_point": operating_point(run, names, headline),
                            "package": {"exported_from": run.path.name, "glioscope_version": __version__,
                                        "checks": checks}})
        atomic.write_json(tmp / "metrics.json", metrics)
        card_facts = {"run": run, "recipe": recipe, "info": info, "metrics": metrics, "cohort": cohort,
                      "headline": headline, "torchscript": torchscript}
        atomic.write_text(tmp / "README.md", model_card(**card_facts))
        atomic.write_json(tmp / "metadata.json", metadata(**card_facts))
    return checks


def _example_input(recipe, in_chans: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    if recipe.data.kind == "volumes":
        shape = (2, in_chans, *recipe.data.volumes.shape)
    else:
        shape = (2, in_chans, recipe.data.slices.size, recipe.data.slices.size)
    return torch.rand(shape, generator=generator)


def input_channels(state: dict) -> int:
    """The number of input channels a model's weights expect (its first convolution's)."""
    for name, tensor in state.items():
        if name.endswith("weight") and tensor.dim() in (4, 5):
            return int(tensor.shape[1])
    raise InputError(None, "the model has no convolution to tell its input channels by")


def _torchscript(recipe, names: list[str], state: dict, path: Path) -> float:
    """Trace the fold model to TorchScript; the largest difference in probability from PyTorch's, refused above TOLERANCE."""
    in_chans = input_channels(state)
    model = build_model(weightless(recipe.model), len(names), in_chans).model
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
