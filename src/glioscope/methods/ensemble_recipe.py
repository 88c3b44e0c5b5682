"""Ensemble recipes: members (recipes of other kinds) and a combiner, typed and checked when they are loaded.

An ensemble recipe is a YAML file in recipes/ensemble/ (or your own) whose `base` chain ends in
ensemble.yaml, the schema and defaults of every ensemble setting; its task, cv and evaluate sections
are the deep recipes' own (glioscope.recipe). `ENSEMBLE` is its kind for the generic loader: the chain,
`quick` and `--set` work as for every recipe. A member's recipe given as a relative YAML path is read from
the folder of the file that names it. Which members exist is checked when the ensemble runs, before
anything is written (glioscope.methods.ensemble_run.resolve_members).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from glioscope import defaults
from glioscope.recipe import CVSettings, EvaluateSettings, RecipeKind, ResolvedRecipe, TaskSettings, read_recipe_file
from glioscope.samples.settings import CohortData
from glioscope.util import schema

ENSEMBLE_DIR = Path(__file__).resolve().parents[1] / "recipes" / "ensemble"
ROOT = ENSEMBLE_DIR / "ensemble.yaml"
COMBINERS = ("logistic", "mean")

_top, _data = defaults.of("", ROOT), defaults.of("data", ROOT)


@dataclass(frozen=True)
class EnsembleData(CohortData):
    """The cohort rows the ensemble's folds cover, and the cache of what its members decode when it is applied."""

    select: Mapping[str, str | tuple[str, ...]] = _data("select")
    cache: str | None = _data("cache")

    def __post_init__(self):
        schema.check(self, "data")


@dataclass(frozen=True)
class MemberSettings:
    """One member: its recipe (a shipped name or a YAML file), its name, its --set overrides, quick, and seeds (one
    member per seed). The defaults are ensemble.yaml's comments: no name, no overrides, not quick, one seed."""

    recipe: str = ""
    name: str | None = None
    set: tuple[str, ...] = ()
    quick: bool = False
    seeds: tuple[int, ...] | None = None

    def __post_init__(self):
        schema.check(self, "members")
        if not self.recipe.strip():
            raise schema.SettingError("members.recipe", "missing or empty, expected a recipe name or YAML file")
        if self.seeds is not None and not self.seeds:
            raise schema.SettingError("members.seeds", "got [], expected at least one seed (or null)")


@dataclass(frozen=True)
class EnsembleRecipe(ResolvedRecipe):
    """A resolved ensemble recipe; `to_dict()` is its run folder's config.yaml."""

    kind: Literal["ensemble"] = "ensemble"
    name: str = _top("name")
    description: str = _top("description")
    task: TaskSettings = field(default_factory=TaskSettings)
    data: EnsembleData = field(default_factory=EnsembleData)
    members: tuple[MemberSettings, ...] = ()
    combiner: Literal[COMBINERS] = _top("combiner")
    cv: CVSettings = field(default_factory=CVSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    quick: bool = False
    changed: tuple[str, ...] = ()  # the settings --quick and --set changed (glioscope.recipe.apply_settings)

    def __post_init__(self):
        schema.check(self)


class EnsembleKind(RecipeKind):
    """The ensemble recipes' kind: as every RecipeKind, and a member's relative YAML path is anchored at the file
    that names it (so that the run and a resumed run find it from any working folder)."""

    def resolve(self, path: Path, seen: tuple[Path, ...] = ()) -> dict:
        data = super().resolve(path, seen)
        own = read_recipe_file(path).get("members")
        if isinstance(own, list):
            data["members"] = [_anchored(member, Path(path).parent) for member in own]
        return data


def _anchored(member, folder: Path):
    """A member mapping whose `recipe` is a YAML file beside the ensemble recipe, with that file's full path."""
    if not isinstance(member, dict) or not isinstance(member.get("recipe"), str):
        return member
    given = Path(member["recipe"])
    if given.suffix in (".yaml", ".yml") and not given.is_absolute() and (folder / given).is_file():
        return {**member, "recipe": str((folder / given).resolve())}
    return member


ENSEMBLE = EnsembleKind("ensemble", ENSEMBLE_DIR, ROOT, EnsembleRecipe)
