"""Deep-feature recipes: typed, immutable settings, checked when they are loaded.

A deep-feature recipe is a YAML file in recipes/deepfeatures/ (or your own) whose `base` chain
ends in deepfeatures.yaml, the schema and defaults of every setting (its comments say what each
one means). Its `data.slices` are the deep recipes' slice settings (glioscope.samples.slices),
its classifier grid the radiomics recipes' (glioscope.radiomics.settings) plus the patient-level
attention model; task, cv and evaluate are every recipe's (glioscope.recipe).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

from glioscope import defaults
from glioscope.radiomics.settings import ClassifierSettings as PooledClassifier
from glioscope.recipe import CVSettings, EvaluateSettings, RecipeKind, ResolvedRecipe, TaskSettings
from glioscope.samples.settings import CohortData
from glioscope.samples.slices.settings import SliceSettings
from glioscope.util import schema
from glioscope.util.schema import Range, SettingError, at_least, fraction

FOLDER = defaults.RECIPE_DIR / "deepfeatures"
ROOT = FOLDER / "deepfeatures.yaml"
STATS = ("mean", "std", "max")
_positive = Range(low=0.0, low_open=True)

_data, _backbone, _pooling, _classifier, _attention = (
    defaults.of(section, ROOT) for section in ("data", "backbone", "pooling", "classifier", "attention")
)


def _slices() -> SliceSettings:
    """base.yaml's slice defaults under this schema's data.slices."""
    return schema.build(SliceSettings, {**defaults.section("data.slices"), **defaults.section("data.slices", ROOT)})


@dataclass(frozen=True)
class FeatureData(CohortData):
    """Which cohort rows, and the slices made of them (glioscope.samples.slices.SliceSettings)."""

    select: Mapping[str, str | tuple[str, ...]] = _data("select")
    cache: str | None = _data("cache")
    normalize: Literal["model", "imagenet", "none"] = _data("normalize")
    slices: SliceSettings = field(default_factory=_slices)
    kind: Literal["slices"] = "slices"  # what glioscope.samples builds: always slices

    def __post_init__(self):
        schema.check(self, "data")


@dataclass(frozen=True)
class BackboneSettings:
    """The frozen network whose pooled last feature map embeds a slice."""

    name: str = _backbone("name")
    weights: str | None = _backbone("weights")  # None or "none": the network as initialised (seeded)
    taps: tuple[str, ...] | None = _backbone("taps")
    flip: bool = _backbone("flip")
    batch_size: Annotated[int, at_least(1)] = _backbone("batch_size")
    seed: int = _backbone("seed")

    def __post_init__(self):
        schema.check(self, "backbone")


@dataclass(frozen=True)
class PoolingSettings:
    """The per-patient statistics of the slice embeddings that logistic and forest classifiers take."""

    stats: tuple[Literal[STATS], ...] = _pooling("stats")
    weighted: bool = _pooling("weighted")

    def __post_init__(self):
        schema.check(self, "pooling")
        if not self.stats:
            raise SettingError("pooling.stats", "got [], expected at least one of " + ", ".join(STATS))


@dataclass(frozen=True)
class ClassifierSettings(PooledClassifier):
    """The radiomics recipes' classifier grid (logistic, forest), or the patient-level attention model."""

    model: Literal["logistic", "forest", "attention"] = _classifier("model")
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
        if self.model != "attention":
            super().__post_init__()


@dataclass(frozen=True)
class AttentionSettings:
    """The patient-level attention model (glioscope.deepfeatures.mil)."""

    hidden: Annotated[int, at_least(1)] = _attention("hidden")
    dropout: Annotated[float, Range(0.0, 1.0, high_open=True)] = _attention("dropout")
    epochs: Annotated[int, at_least(1)] = _attention("epochs")
    lr: Annotated[float, _positive] = _attention("lr")
    weight_decay: tuple[Annotated[float, at_least(0.0)], ...] = _attention("weight_decay")
    batch_patients: Annotated[int, at_least(1)] = _attention("batch_patients")
    members: Annotated[int, at_least(1)] = _attention("members")

    def __post_init__(self):
        schema.check(self, "attention")
        if not self.weight_decay:
            raise SettingError("attention.weight_decay", "got [], expected at least one value")


@dataclass(frozen=True)
class DeepFeatureRecipe(ResolvedRecipe):
    """A resolved deep-feature recipe; `to_dict()` is its run folder's config.yaml."""

    kind: Literal["deepfeatures"] = "deepfeatures"
    name: str = "deepfeatures"
    description: str = ""
    task: TaskSettings = field(default_factory=TaskSettings)
    data: FeatureData = field(default_factory=FeatureData)
    backbone: BackboneSettings = field(default_factory=BackboneSettings)
    pooling: PoolingSettings = field(default_factory=PoolingSettings)
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    attention: AttentionSettings = field(default_factory=AttentionSettings)
    cv: CVSettings = field(default_factory=CVSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    quick: bool = False
    changed: tuple[str, ...] = ()  # the settings --quick and --set changed (glioscope.recipe.apply_settings)

    def __post_init__(self):
        schema.check(self)
        from glioscope.models import list_models, model_entry  # the registry imports torchvision: only here

        if self.backbone.name not in list_models() or model_entry(self.backbone.name).kind != "slices":
            known = [m for m in list_models() if model_entry(m).kind == "slices"]
            raise SettingError("backbone.name", f"got {self.backbone.name!r}, expected a 2D model: {', '.join(known)}")


DEEPFEATURES = RecipeKind("deepfeatures", FOLDER, ROOT, DeepFeatureRecipe)
