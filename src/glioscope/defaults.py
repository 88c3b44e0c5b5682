"""The default of every setting, read from the recipes' schema files: the one place where defaults live.

base.yaml is the schema of the deep recipes (and of the `task`, `cv` and `evaluate` sections every
recipe shares); another kind of method has its own (recipes/radiomics/radiomics.yaml). Each
settings class takes its field defaults from its section of its schema file:

    _default = defaults.of("train")                    # base.yaml
    epochs: int = _default("epochs")
    _data = defaults.of("data", RADIOMICS_SCHEMA)       # another schema file
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path

import yaml

RECIPE_DIR = Path(__file__).parent / "recipes"
BASE = RECIPE_DIR / "base.yaml"


@functools.lru_cache(maxsize=None)
def _read(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def base() -> dict:
    """base.yaml as a mapping (read once)."""
    return _read(BASE)


def section(dotted: str, schema: Path = BASE) -> dict:
    """A copy of one section of a schema file, e.g. "train" or "data.slices" ("" for the whole file)."""
    node = _read(Path(schema))
    for key in dotted.split(".") if dotted else ():
        node = node[key]
    return copy.deepcopy(node)


def of(dotted: str, schema: Path = BASE):
    """A function giving the dataclass field default of a setting in section `dotted` of `schema`."""
    values = section(dotted, schema)

    def default(name: str, **field_options):
        value = values[name]
        if isinstance(value, (list, dict)):
            return dataclasses.field(default_factory=lambda: copy.deepcopy(value), **field_options)
        return dataclasses.field(default=value, **field_options)

    return default
