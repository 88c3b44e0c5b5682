"""Recipes: the settings of one method, typed and immutable, checked when they are loaded.

A recipe is a YAML file that names a `base` recipe to extend (in the end base.yaml, whose
values are the defaults of every setting and whose comments say what each one means), and
may carry a `quick` block of dotted overrides that `--quick` applies to shorten it for a
CPU. `load_recipe` resolves the chain, applies `quick` and the command line's `--set
key=value` overrides, and returns a `Recipe`: frozen dataclasses whose schema is
base.yaml's. Every value is checked for type, choice and range there, before anything is
written: an unknown key, `train.epochs=abc`, `train.optimizer=adamm` or malformed YAML is
a SettingError (exit status 2) naming the key, the value and what is expected. So is a
sample size, volume shape or batch whose arrays would be over the input limits
(glioscope.io.limits: data.slices.size, data.volumes.shape, train.batch_size).

Each stage receives only its own section: `recipe.data` (glioscope.samples.settings.DataSettings),
`recipe.model` (glioscope.models.spec.ModelSpec), `recipe.augment` (AugmentSettings),
`recipe.train` (TrainSettings), `recipe.cv` (CVSettings), `recipe.evaluate` (EvaluateSettings; a deep recipe's
DeepEvaluateSettings adds its test-time augmentation).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Literal

import yaml

from glioscope import defaults, references
from glioscope.augment.settings import AugmentSettings
from glioscope.errors import InputError
from glioscope.io import limits
from glioscope.models.spec import ModelSpec
from glioscope.samples.settings import DataSettings
from glioscope.train.settings import TrainSettings
from glioscope.util import schema
from glioscope.util.schema import SettingError, at_least, fraction

RECIPE_DIR = defaults.RECIPE_DIR

_task, _cv, _evaluate, _top = (defaults.of(s) for s in ("task", "cv", "evaluate", ""))


@dataclass(frozen=True)
class TaskSettings:
    """name: what is predicted, in words (None: the classes, see glioscope.rundir.labels); label: the cohort column
    holding the class; caveat: a warning the report shows first; classes: the class order (None:
    the sorted labels present)."""

    name: str | None = _task("name")
    label: str = _task("label")
    caveat: str | None = _task("caveat")
    classes: tuple[str, ...] | None = _task("classes")

    def __post_init__(self):
        schema.check(self, "task")


@dataclass(frozen=True)
class CVSettings:
    """How the cohort is split when no --splits are given: always by patient unless leaky_slice_level."""

    mode: Literal["kfold", "holdout", "source"] = _cv("mode")
    folds: Annotated[int, at_least(2)] = _cv("folds")
    test_fraction: Annotated[float, fraction(open_high=True)] = _cv("test_fraction")
    seed: int = _cv("seed")
    leaky_slice_level: bool = _cv("leaky_slice_level")

    def __post_init__(self):
        schema.check(self, "cv")


@dataclass(frozen=True)
class EvaluateSettings:
    """bootstrap: resamples of patients for the intervals; gradcam_per_class: held-out patients per
    class shown with Grad-CAM; tables: result tables in the layout of these papers; permutations: retrainings
    with shuffled labels after `cv` (glioscope.permutation), 0 for none."""

    bootstrap: Annotated[int, at_least(1)] = _evaluate("bootstrap")
    gradcam_per_class: Annotated[int, at_least(0)] = _evaluate("gradcam_per_class")
    tables: tuple[Literal["sdl", "spatiospatial", "autoaugment"], ...] = _evaluate("tables")
    permutations: Annotated[int, at_least(0)] = _evaluate("permutations")

    def __post_init__(self):
        schema.check(self, "evaluate")


@dataclass(frozen=True)
class DeepEvaluateSettings(EvaluateSettings):
    """A deep recipe's evaluate section adds tta: the test-time augmentation of every prediction of its fold
    models, in cross-validation and wherever the run is applied (glioscope.models.tta)."""

    tta: Literal["none", "hflip", "flips"] = _evaluate("tta")


class ResolvedRecipe:
    """What every resolved recipe (deep, or radiomics in glioscope.radiomics.settings) shares: its
    run folder's config.yaml is `dump()`, and `from_dict` reads it back."""

    @classmethod
    def from_dict(cls, data: Mapping):
        """The recipe from a resolved mapping (a config.yaml); unknown keys and bad values are SettingErrors.
        evaluate.tables' earlier names (seed000, ...) are read as the names they have now; the settings --set changed
        (`changed`, from apply_settings) are kept only by a recipe class with that field."""
        if "changed" in data and "changed" not in {f.name for f in fields(cls)}:
            data = {k: v for k, v in data.items() if k != "changed"}  # a kind whose recipe does not keep them
        evaluate = data.get("evaluate")
        if isinstance(evaluate, Mapping) and isinstance(evaluate.get("tables"), (list, tuple)):
            data = {**data, "evaluate": {**evaluate, "tables": references.table_names(evaluate["tables"])}}
        return schema.build(cls, data)

    def to_dict(self) -> dict:
        return schema.to_plain(self)

    def dump(self) -> str:
        """config.yaml's text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


@dataclass(frozen=True)
class Recipe(ResolvedRecipe):
    """A resolved recipe. `to_dict()` is what a run folder's config.yaml holds, `from_dict` reads it back."""

    name: str = _top("name")
    description: str = _top("description")
    task: TaskSettings = _top("task")
    data: DataSettings = _top("data")
    model: ModelSpec = _top("model")
    augment: AugmentSettings = _top("augment")
    train: TrainSettings = _top("train")
    cv: CVSettings = _top("cv")
    evaluate: DeepEvaluateSettings = _top("evaluate")
    quick: bool = False  # the recipe's quick block was applied
    changed: tuple[str, ...] = ()  # the settings --quick and --set changed (apply_settings)

    def __post_init__(self):
        schema.check(self)
        from glioscope.models import list_models, model_entry  # the registry imports torchvision: only here

        if self.model.name not in list_models():
            raise SettingError("model.name", f"got {self.model.name!r}, expected one of {', '.join(list_models())}")
        reads = model_entry(self.model.name).kind
        if reads != self.data.kind:
            raise SettingError("data.kind", f"got {self.data.kind!r}, but model {self.model.name} reads {reads}")
        network = self.model.backbone if self.model.name == "sdl" and self.model.backbone else self.model.name
        smallest = model_entry(network).min_size if network in list_models() else 1
        if self.data.kind == "slices" and self.data.slices.size < smallest:
            raise SettingError(
                "data.slices.size", f"got {self.data.slices.size}, but {network} needs images of at least {smallest} px"
            )
        batch = (self.train.batch_size, *self.data.sample_shape())
        too_large = limits.current().problem(f"a batch of {limits.dims(batch)}", limits.count(batch))
        if too_large:
            raise SettingError("train.batch_size", f"got {self.train.batch_size}: {too_large}")


@dataclass(frozen=True)
class RecipeKind:
    """One kind of method's recipes: the folder its shipped recipes are in, the schema file (the defaults of
    every setting) that each of its recipes' `base` chains ends in, and the class a resolved recipe is."""

    name: str
    folder: Path
    schema: Path
    recipe_class: type
    bare: bool = False  # a recipe file that names neither a base nor a kind is of this kind (its base: the schema)

    def find(self, name_or_path: str | Path) -> Path | None:
        """A YAML file, or the file of a recipe of this kind shipped with glioscope; None when neither."""
        return find_recipe_file(name_or_path, self.folder)

    def names(self) -> list[str]:
        """The recipes of this kind shipped with glioscope (the schema file is one too: every default)."""
        return sorted(p.stem for p in self.folder.glob("*.yaml"))

    def owns(self, path: Path, seen: tuple[Path, ...] = ()) -> bool:
        """Whether a recipe file is of this kind: it is the schema, says `kind: <name>`, or its base chain is."""
        path = Path(path).resolve()
        if path == self.schema.resolve():
            return True
        if path in seen:
            return False
        try:
            data = read_recipe_file(path)
        except InputError:
            return False
        if data.get("kind"):
            return data["kind"] == self.name
        if not data.get("base"):
            return self.bare
        parent = self.find(data["base"])
        return parent is not None and self.owns(parent, seen + (path,))

    def resolve(self, path: Path, seen: tuple[Path, ...] = ()) -> dict:
        """The recipe at `path` merged onto its bases; the chain ends in the schema file."""
        if path.resolve() in seen:
            raise InputError(path, "recipe extends itself (base: loop)")
        data = read_recipe_file(path)
        base = data.pop("base", None)
        if path.resolve() == self.schema.resolve():
            return data
        parent = self.find(base or self.schema.stem)
        if parent is None or not self.owns(parent):
            raise InputError(
                path, f"base {base!r} is not a {self.name} recipe ({', '.join(self.names())} or a file extending them)"
            )
        return merge_onto_base(self.resolve(parent, seen + (path.resolve(),)), data)

    def load(self, path: Path, overrides: Sequence[str] = (), quick: bool = False):
        """The resolved, checked recipe of the file `path`: its bases merged, `quick` applied if asked, then the
        `--set` overrides, onto every setting's default (so that --set may name any setting)."""
        config = self.resolve(Path(path))
        config["name"] = read_recipe_file(path).get("name") or Path(path).stem
        config = merge(self.recipe_class().to_dict(), config)
        return self.recipe_class.from_dict(apply_settings(config, overrides, quick))


def find_recipe_file(name_or_path: str | Path, folder: Path) -> Path | None:
    """A YAML file, or the file of a recipe shipped in `folder`; None when neither."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    shipped = folder / f"{path.stem}.yaml"
    return shipped if path.suffix in ("", ".yaml", ".yml") and shipped.is_file() else None


def read_recipe_file(path: Path) -> dict:
    """A recipe file's mapping, as written (its `base` not yet resolved)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, f"is not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, "a recipe must be a YAML mapping")
    return data


def merge_onto_base(parent: dict, data: dict) -> dict:
    """A recipe's own mapping merged onto its resolved base; their quick blocks merge key by key."""
    quick = {**parent.pop("quick", {}), **data.pop("quick", {})}
    merged = merge(parent, data)
    if quick:
        merged["quick"] = quick
    return merged


def merge(base: dict, update: dict) -> dict:
    """Deep merge: mappings merge key by key, everything else replaces; an empty mapping clears."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and value and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_value(text: str, key: str = ""):
    """YAML scalar parsing, so '3' -> 3, '1e-4' -> 0.0001, 'none' -> None, '[1,2]' -> [1, 2]."""
    if text.strip().lower() == "none":
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", "") or exc).splitlines()[0]
        raise SettingError(key, f"got {text!r}, which is not valid YAML ({problem})") from None
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in "eE.") else value
        except ValueError:
            return value
    return value


def set_dotted(config: dict, dotted: str, value) -> None:
    """config['a']['b'] = value for 'a.b'; the setting must exist (base.yaml has every one)."""
    keys = dotted.split(".")
    node = config
    for i, key in enumerate(keys[:-1]):
        if key not in node or not isinstance(node[key], dict):
            raise SettingError("", f"unknown setting {dotted!r}: {'.'.join(keys[: i + 1])} is not a section")
        node = node[key]
    if keys[-1] not in node:
        raise SettingError.unknown(dotted, node)
    node[keys[-1]] = value


DEEP = RecipeKind("deep", RECIPE_DIR, defaults.BASE, Recipe, bare=True)


def load_recipe(name_or_path: str | Path, overrides: Sequence[str] = (), quick: bool = False) -> Recipe:
    """A deep recipe, resolved and checked (every kind of method: glioscope.methods.load_recipe)."""
    path = DEEP.find(name_or_path)
    if path is None or not DEEP.owns(path):
        shipped = [name for name in DEEP.names() if name != DEEP.schema.stem]  # base.yaml: the schema, no recipe
        raise InputError(
            name_or_path,
            f"is not a deep recipe (one that trains a network); give a YAML file or one of: {', '.join(shipped)}",
        )
    return DEEP.load(path, overrides, quick)


def apply_settings(config: dict, overrides: Sequence[str] = (), quick: bool = False) -> dict:
    """A resolved recipe mapping with its quick block applied if asked (else dropped), then `--set` KEY=VALUE; its
    `changed` lists every setting that differs from the recipe as written (and those a `changed` given had), so that
    a run's labels (glioscope.rundir.labels) know whether the recipe's description still describes it."""
    quick_block = config.pop("quick", {}) or {}
    earlier = list(config.pop("changed", None) or [])
    written = copy.deepcopy(config)
    if quick:
        for dotted, value in quick_block.items():
            set_dotted(config, dotted, value)
    config["quick"] = bool(quick)
    for item in overrides:
        if "=" not in item:
            raise InputError(None, f"--set expects KEY=VALUE, got {item!r}")
        dotted, text = (part.strip() for part in item.split("=", 1))
        set_dotted(config, dotted, parse_value(text, dotted))
    before, after = _leaves(written), _leaves(config)
    now = [key for key in sorted(set(before) | set(after)) if key != "quick" and before.get(key) != after.get(key)]
    config["changed"] = earlier + [key for key in now if key not in earlier]
    return config


def _leaves(config, prefix: str = "") -> dict:
    """{dotted key: value} of every setting below mappings (a list is one value): what `changed` compares."""
    if not isinstance(config, Mapping):
        return {prefix: config}
    found = {}
    for key, value in config.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        found.update(_leaves(value, dotted) if isinstance(value, Mapping) and value else {dotted: value})
    return found
