"""The default of every setting, read from recipes/base.yaml: the one place where defaults live.

Each stage's settings class takes its field defaults from its section of base.yaml:

    _default = defaults.of("train")
    epochs: int = _default("epochs")
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path

import yaml

BASE = Path(__file__).parent / "recipes" / "base.yaml"


@functools.lru_cache(maxsize=1)
def base() -> dict:
    """base.yaml as a mapping (read once)."""
    return yaml.safe_load(BASE.read_text(encoding="utf-8"))


def section(dotted: str) -> dict:
    """A copy of one section of base.yaml, e.g. "train" or "data.slices" ("" for the whole file)."""
    node = base()
    for key in dotted.split(".") if dotted else ():
        node = node[key]
    return copy.deepcopy(node)


def of(dotted: str):
    """A function giving the dataclass field default of a setting in section `dotted`."""
    values = section(dotted)

    def default(name: str, **field_options):
        value = values[name]
        if isinstance(value, (list, dict)):
            return dataclasses.field(default_factory=lambda: copy.deepcopy(value), **field_options)
        return dataclasses.field(default=value, **field_options)

    return default
