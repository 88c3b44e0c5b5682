"""Radiomics recipes: typed, immutable settings, checked when they are loaded.

A radiomics recipe is a YAML file in recipes/radiomics/ (or your own) whose `base` chain ends
in radiomics.yaml, the schema and defaults of every radiomics setting, as base.yaml is for the
deep recipes; its task, cv and evaluate sections are the deep recipes' own (glioscope.recipe),
with base.yaml's defaults. `load_radiomics_recipe` resolves the chain, applies `quick` and
`--set key=value` the same way `glioscope.recipe.load_recipe` does, and every value is checked
for type, choice and range before anything is read or written.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml

from glioscope.errors import InputError
from glioscope.recipe import (CVSettings, EvaluateSettings, ResolvedRecipe, TaskSettings, apply_settings,
                              find_recipe_file, merge, merge_onto_base, read_recipe_file)
from glioscope.util import schema
from glioscope.util.schema import Range, SettingError, at_least, fraction

RADIOMICS_DIR = Path(__file__).resolve().parents[1] / "recipes" / "radiomics"
ROOT = RADIOMICS_DIR / "radiomics.yaml"
FEATURE_CLASSES = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
_positive = Range(low=0.0, low_open=True)


@functools.lru_cache(maxsize=1)
def _root() -> dict:
    return yaml.safe_load(ROOT.read_text(encoding="utf-8"))


def _default(section: str):
    """Field defaults of one section of radiomics.yaml (the one place where they live)."""
    values = _root()[section]

    def default(name: str):
        value = values[name]
        if isinstance(value, (list, dict)):
            return dataclasses.field(default_factory=lambda: copy.deepcopy(value))
        return dataclasses.field(default=value)

    return default


_data, _features, _classifier = _default("data"), _default("features"), _default("classifier")


@dataclass(frozen=True)
class RadiomicsData:
    """Which cohort rows, channels and mask voxels are featurised, and where features are cached."""

    select: Mapping[str, str | tuple[str, ...]] = _data("select")
    channels: tuple[str, ...] | None = _data("channels")
    mask_labels: tuple[int, ...] | None = _data("mask_labels")
    min_voxels: Annotated[int, at_least(1)] = _data("min_voxels")
    cache: str | None = _data("cache")
    workers: Annotated[int, at_least(1)] | None = _data("workers")

    def __post_init__(self):
        schema.check(self, "data")

    def selection(self) -> dict[str, list[str]]:
        """data.select as glioscope.cohort.select takes it: every value a list."""
        return {k: list(v) if isinstance(v, tuple) else [v] for k, v in self.select.items()}

    def cache_dir(self) -> Path:
        """data.cache, else $GLIOSCOPE_CACHE, else ~/.cache/glioscope; features go in its radiomics/ folder."""
        return Path(self.cache or os.environ.get("GLIOSCOPE_CACHE") or Path.home() / ".cache" / "glioscope")


@dataclass(frozen=True)
class FeatureSettings:
    """PyRadiomics' settings: feature classes, binning, normalisation, resampling."""

    classes: tuple[Literal[FEATURE_CLASSES], ...] = _features("classes")
    bin_width: Annotated[float, _positive] = _features("bin_width")
    normalize: bool = _features("normalize")
    normalize_scale: Annotated[float, _positive] = _features("normalize_scale")
    resampled_spacing: tuple[float, float, float] | None = _features("resampled_spacing")
    interpolator: Literal["sitkNearestNeighbor", "sitkLinear", "sitkBSpline"] = _features("interpolator")
    spacing_2d: tuple[float, float, float] = _features("spacing_2d")

    def __post_init__(self):
        schema.check(self, "features")
        if not self.classes:
            raise SettingError("features.classes", "got [], expected at least one feature class")

    def pyradiomics(self) -> dict:
        """The extractor's settings, in PyRadiomics' own names."""
        settings = {"binWidth": self.bin_width, "normalize": self.normalize, "normalizeScale": self.normalize_scale,
                    "interpolator": self.interpolator, "correctMask": True, "label": 1,
                    "additionalInfo": False}
        if self.resampled_spacing is not None:
            settings["resampledPixelSpacing"] = list(self.resampled_spacing)
        return settings


@dataclass(frozen=True)
class ClassifierSettings:
    """The model and the grid its inner CV chooses from (see glioscope.radiomics.classifier)."""

    model: Literal["logistic", "forest"] = _classifier("model")
    penalties: tuple[Literal["l1", "l2"], ...] = _classifier("penalties")
    C: tuple[Annotated[float, _positive], ...] = _classifier("C")
    correlation: tuple[Annotated[float, fraction(open_low=True)] | None, ...] = _classifier("correlation")
    trees: Annotated[int, at_least(1)] = _classifier("trees")
    max_features: tuple[Literal["sqrt", "log2"] | Annotated[float, fraction(open_low=True)], ...] = \
        _classifier("max_features")
    min_samples_leaf: tuple[Annotated[int, at_least(1)], ...] = _classifier("min_samples_leaf")
    class_weight: Literal["balanced", "none"] = _classifier("class_weight")
    inner_folds: Annotated[int, at_least(2)] = _classifier("inner_folds")
    seed: int = _classifier("seed")

    def __post_init__(self):
        schema.check(self, "classifier")
        grids = {"logistic": ("penalties", "C", "correlation"), "forest": ("max_features", "min_samples_leaf")}
        for name in grids[self.model]:
            if not getattr(self, name):
                raise SettingError(f"classifier.{name}", f"got [], expected at least one value for the {self.model}")


@dataclass(frozen=True)
class RadiomicsRecipe(ResolvedRecipe):
    """A resolved radiomics recipe; `to_dict()` is its run folder's config.yaml."""

    kind: Literal["radiomics"] = "radiomics"
    name: str = "radiomics"
    description: str = ""
    task: TaskSettings = dataclasses.field(default_factory=TaskSettings)
    data: RadiomicsData = dataclasses.field(default_factory=RadiomicsData)
    features: FeatureSettings = dataclasses.field(default_factory=FeatureSettings)
    classifier: ClassifierSettings = dataclasses.field(default_factory=ClassifierSettings)
    cv: CVSettings = dataclasses.field(default_factory=CVSettings)
    evaluate: EvaluateSettings = dataclasses.field(default_factory=EvaluateSettings)
    quick: bool = False

    def __post_init__(self):
        schema.check(self)


def _file(name_or_path: str | Path) -> Path | None:
    return find_recipe_file(name_or_path, RADIOMICS_DIR)


def is_radiomics_recipe(name_or_path: str | Path) -> bool:
    """Whether a recipe name or file is a radiomics recipe (its `base` chain reaches radiomics.yaml)."""
    seen: set[Path] = set()
    path = _file(name_or_path)
    while path is not None and path.resolve() not in seen:
        seen.add(path.resolve())
        if path.resolve() == ROOT:
            return True
        try:
            data = read_recipe_file(path)
        except InputError:
            return False
        if data.get("kind") == "radiomics":
            return True
        path = _file(data["base"]) if data.get("base") else None
    return False


def _resolve(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if path.resolve() in seen:
        raise InputError(path, "recipe extends itself (base: loop)")
    data = read_recipe_file(path)
    base = data.pop("base", None)
    if path.resolve() == ROOT:
        return data
    parent_path = _file(base or "radiomics")
    if parent_path is None or not is_radiomics_recipe(parent_path):
        raise InputError(path, f"base {base!r} is not a radiomics recipe (radiomics, radiomics-rf or a file "
                               "extending them)")
    return merge_onto_base(_resolve(parent_path, seen + (path.resolve(),)), data)


def load_radiomics_recipe(name_or_path: str | Path, overrides: Sequence[str] = (),
                          quick: bool = False) -> RadiomicsRecipe:
    """The resolved, checked radiomics recipe: its bases merged, `quick` applied if asked, then the overrides."""
    path = _file(name_or_path)
    if path is None:
        known = ", ".join(sorted(p.stem for p in RADIOMICS_DIR.glob("*.yaml")))
        raise InputError(name_or_path, f"no such radiomics recipe; give a YAML file or one of: {known}")
    config = _resolve(path)
    config["name"] = read_recipe_file(path).get("name") or path.stem
    config.setdefault("kind", "radiomics")
    template = RadiomicsRecipe().to_dict()  # every setting, so that --set may name any of them
    config = merge(template, config)
    return RadiomicsRecipe.from_dict(apply_settings(config, overrides, quick))
