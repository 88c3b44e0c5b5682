"""Every kind of method in one table: a recipe's kind -> the method that runs it and applies its runs.

    method, recipe = load_recipe("radiomics-rf", ["classifier.trees=100"], quick=True)
    run_dir = method.run(recipe, Path("cohorts/brats"), Path("runs/rf"), splits=Path("splits/brats"))
    method_of_config(RunFolder(run_dir).config())          # the same method, from a run folder or package

| kind | recipes | a run trains | a fold model is | it reads |
|---|---|---|---|---|
| deep | recipes/*.yaml (schema base.yaml) | glioscope.runner | a network (fold<k>/model.pt) | slices or volumes |
| radiomics | recipes/radiomics/*.yaml (schema radiomics.yaml) | glioscope.radiomics.run | a classifier (fold<k>/classifier.npz) | PyRadiomics features in the mask |
| deepfeatures | recipes/deepfeatures/*.yaml (schema deepfeatures.yaml) | glioscope.deepfeatures.run | a classifier (classifier.npz) or an attention model (attention.pt) | a frozen network's embeddings of slices |
| ensemble | recipes/ensemble/*.yaml (schema ensemble.yaml) | methods.ensemble_run: its members, each by its own method, on the same folds | a combiner (fold<k>/combiner.npz) of the members' fold models | what each member reads |

`glioscope cv` and `train` load any recipe here and call its method's `run`; predict, batch
prediction, `test`, `serve` and `export` apply any trained run through glioscope.trained, which
asks its method for the inputs, the fold models and their probabilities. A new kind of method
is one module in this package: a `Method` (methods/base.py) with its recipes' RecipeKind, listed in
METHODS.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from glioscope.errors import InputError
from glioscope.methods.base import SCHEMAS_ONLY, Method
from glioscope.methods.deep import DeepMethod
from glioscope.methods.deepfeatures import DeepFeatureMethod
from glioscope.methods.ensemble import EnsembleMethod
from glioscope.methods.radiomics import RadiomicsMethod

METHODS: dict[str, Method] = {method.kind: method for method in (DeepMethod(), RadiomicsMethod(), DeepFeatureMethod())}
METHODS["ensemble"] = EnsembleMethod(METHODS)  # its members: recipes of every other kind listed here

__all__ = ["METHODS", "Method", "find", "load_recipe", "method_of_config", "recipe_names"]


def recipe_names() -> list[str]:
    """Every recipe shipped with glioscope, of every kind (not the schemas that are no recipe: SCHEMAS_ONLY)."""
    names = {name for method in METHODS.values() for name in method.recipes.names()}
    return sorted(names - set(SCHEMAS_ONLY))


def find(name_or_path: str | Path) -> tuple[Method, Path]:
    """The method of a recipe (a shipped recipe's name or a YAML file) and its file."""
    for method in METHODS.values():
        path = method.recipes.find(name_or_path)
        if path is not None and method.recipes.owns(path):
            return method, path
    raise InputError(name_or_path, f"no such recipe; give a YAML file or one of: {', '.join(recipe_names())}")


def load_recipe(name_or_path: str | Path, overrides: Sequence[str] = (), quick: bool = False):
    """(method, recipe): the resolved, checked recipe of any kind (its bases, `quick` if asked, then `overrides`)."""
    method, path = find(name_or_path)
    return method, method.recipes.load(path, overrides, quick)


def method_of_config(config: dict, where: Path | str | None = None) -> Method:
    """The method of a run folder's or package's config.yaml (its `kind`; deep when it names none)."""
    if "inputs" in config:  # glioscope fuse: the runs it combines are applied, not the fused folder
        raise InputError(where, "is a fused run (glioscope fuse): it has no models of its own to apply")
    kind = config.get("kind") or "deep"
    if kind not in METHODS:
        raise InputError(
            where, f"was made by a kind of method this version does not know ({kind!r}; known: {', '.join(METHODS)})"
        )
    return METHODS[kind]
