"""Radiomics recipes: typed, immutable settings, checked when they are loaded.

A radiomics recipe is a YAML file in recipes/radiomics/ (or your own) whose `base` chain ends
in radiomics.yaml, the schema and defaults of every radiomics setting, as base.yaml is for the
deep recipes; its task, cv and evaluate sections are the deep recipes' own (glioscope.recipe),
with base.yaml's defaults. `RADIOMICS` is its kind for the generic loader (glioscope.recipe.RecipeKind,
used by glioscope.methods.load_recipe): the chain, `quick` and `--set key=value` work as for every
recipe, and every value is checked for type, choice and range before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from glioscope import defaults
from glioscope.recipe import CVSettings, EvaluateSettings, RecipeKind, ResolvedRecipe, TaskSettings
from glioscope.samples.settings import CohortData
from glioscope.util import schema
from glioscope.util.schema import Range, SettingError, at_least, fraction

RADIOMICS_DIR = Path(__file__).resolve().parents[1] / "recipes" / "radiomics"
ROOT = RADIOMICS_DIR / "radiomics.yaml"
FEATURE_CLASSES = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
_positive = Range(low=0.0, low_open=True)


_data, _features, _classifier = (defaults.of(section, ROOT) for section in ("data", "features", "classifier"))


@dataclass(frozen=True)
class RadiomicsData(CohortData):
    """Which cohort rows, channels and mask voxels are featurised, and where features are cached (its radiomics/)."""

    select: Mapping[str, str | tuple[str, ...]] = _data("select")
    channels: tuple[str, ...] | None = _data("channels")
    mask_labels: tuple[int, ...] | None = _data("mask_labels")
    min_voxels: Annotated[int, at_least(1)] = _data("min_voxels")
    cache: str | None = _data("cache")
    workers: Annotated[int, at_least(1)] | None = _data("workers")

    def __post_init__(self):
        schema.check(self, "data")


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
        settings = {
            "binWidth": self.bin_width,
            "normalize": self.normalize,
            "normalizeScale": self.normalize_scale,
            "interpolator": self.interpolator,
            "correctMask": True,
            "label": 1,
            "additionalInfo": False,
        }
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
    max_features: tuple[Literal["sqrt", "log2"] | Annotated[float, fraction(open_low=True)], ...] = _classifier(
        "max_features"
    )
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
    task: TaskSettings = field(default_factory=TaskSettings)
    data: RadiomicsData = field(default_factory=RadiomicsData)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    cv: CVSettings = field(default_factory=CVSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    quick: bool = False
    changed: tuple[str, ...] = ()  # the settings --quick and --set changed (glioscope.recipe.apply_settings)

    def __post_init__(self):
        schema.check(self)


RADIOMICS = RecipeKind("radiomics", RADIOMICS_DIR, ROOT, RadiomicsRecipe)
