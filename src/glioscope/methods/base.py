"""What a kind of method provides: how its recipes are found and run, and how its trained folds are applied.

A kind of method (deep networks, radiomics, ...) is one `Method`: its recipes (a
glioscope.recipe.RecipeKind), the runner that trains its folds into a run folder, and what
applying a trained run needs: the inputs of cohort rows or of one new study (a SampleSet, or
any object with the same table, keys, skipped and notes), the fold models, their
probabilities, the fingerprints of the images for the leak check, and the fold models' files
for a model package. glioscope.trained.TrainedRun applies every kind through this.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope.io.study import Study
from glioscope.recipe import RecipeKind
from glioscope.rundir import CONFIG, RunFolder, RunRecord
from glioscope.util import atomic

# Schema files that hold every default but are no recipe to run: base.yaml chooses no task of its own (every deep
# recipe extends it) and ensemble.yaml names no members. They stay loadable by name (leakcheck's --recipe base).
SCHEMAS_ONLY = ("base", "ensemble")


class Method(ABC):
    """One kind of method (see the module docstring)."""

    recipes: RecipeKind
    seed_setting: str | None = None  # the dotted setting that seeds a recipe's training (an ensemble's `seeds`)

    @property
    def kind(self) -> str:
        return self.recipes.name

    def bind(self, folder: RunFolder) -> Method:
        """The method that applies the run in `folder`: itself, or (a kind whose fold models are other runs, as an
        ensemble's members) one that knows the folder."""
        return self

    def validation_missing(self, recipe) -> str | None:
        """None when a run of `recipe` writes out-of-fold predictions of every fold's training patients
        (fold<k>/validation_predictions.csv, what a stacking combiner is fit on); else the setting that would."""
        return None

    def recipe_from_config(self, config: dict):
        """A run folder's or package's recipe, from its config.yaml."""
        return self.recipes.recipe_class.from_dict(config)

    @abstractmethod
    def run(
        self,
        recipe,
        cohort: Path,
        out: Path,
        splits: Path | None = None,
        folds: list[int] | None = None,
        resume: bool = False,
        progress: bool = True,
        report: bool = True,
        cache_dir: Path | None = None,
    ) -> Path:
        """Train and evaluate `recipe` on every fold (or `folds`) into the run folder `out`; returns it."""

    # --- applying a trained run -------------------------------------------------------------------------

    @abstractmethod
    def fold_files(self, folder: RunFolder) -> list[tuple[str, Path]]:
        """(fold name, file) of every trained fold model; an InputError when there is none."""

    @abstractmethod
    def inputs(self, recipe, record: RunRecord, frame: pd.DataFrame, cache_dir: Path | None, progress: bool):
        """The model inputs of cohort rows (`cache_dir` None: no cache where the method has one per run)."""

    @abstractmethod
    def study_inputs(self, recipe, record: RunRecord, study: Study):
        """The model inputs of one new study (glioscope.io.study)."""

    def check_folds(self, folder: RunFolder, recipe, record: RunRecord) -> dict:
        """What the fold models take, as their files say ({"channels": n}), checked against the recipe and run.json's
        classes: an InputError naming the file that disagrees. A kind that does not override it checks nothing."""
        return {}

    @abstractmethod
    def load_folds(self, folder: RunFolder, recipe, record: RunRecord, inputs) -> list[tuple[str, object]]:
        """(fold name, model) of every fold, ready to predict `inputs`."""

    @abstractmethod
    def probabilities(
        self, folds: list[tuple[str, object]], inputs, recipe, record: RunRecord, progress: bool
    ) -> dict[str, np.ndarray]:
        """Each fold model's class probabilities (N, classes) of every input, in the inputs' order."""

    def explain(self, inputs, per_fold: dict[str, np.ndarray], top: int = 5) -> dict[str, list[dict]] | None:
        """What weighed most in each patient's prediction, where the kind's models can say: {patient_id: its `top`
        samples, most weighed first, each a dict of rank, attention (a weight; a patient's weights sum to at most
        1), slice_index, source_path, slice_id and "image" (a uint8 (h, w) thumbnail, not for JSON)}, after
        `probabilities` on the same inputs. None (this default): the kind's models cannot say."""
        return None

    def embeddings(self, folds, inputs, recipe, record: RunRecord, progress: bool) -> dict[str, np.ndarray] | None:
        """Each fold model's feature vector (N, D) of every input, in the inputs' order, where glioscope.typicality
        measures how unlike the training data an input is. None (this default): the kind cannot say."""
        return None

    @abstractmethod
    def fingerprints(self, inputs):
        """The leak check's fingerprints of the inputs (glioscope.leakcheck.Fingerprints)."""

    @abstractmethod
    def training_fingerprints(self, folder: RunFolder, recipe, record: RunRecord, progress: bool):
        """The fingerprints of what the run trained on (a package: those it carries); None when unavailable."""

    @abstractmethod
    def export_folds(
        self, run: RunFolder, package: RunFolder, recipe, record: RunRecord, torchscript: bool = False
    ) -> dict:
        """Write the fold models into a model package; returns what was checked."""

    def export_model(
        self, run: RunFolder, package: RunFolder, recipe, record: RunRecord, torchscript: bool = False
    ) -> dict:
        """Write what applying the run takes into a package folder: the recipe (config.yaml) and the fold models
        (`export_folds`); returns what was checked. glioscope.export adds run.json and the rest of a package; an
        ensemble writes each member's this way."""
        atomic.write_text(package / CONFIG, recipe.dump())
        return self.export_folds(run, package, recipe, record, torchscript)

    @abstractmethod
    def input_words(self, recipe, record: RunRecord) -> dict:
        """What the model takes, for the model card: {"channels": [...], "input": words, "value": words, "files":
        words}, and "torchscript" where a package's TorchScript files are not fold<k>/model.ts."""
