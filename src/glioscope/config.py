"""Recipes: YAML files with the settings of one method, overridable from the command line.

A recipe names a `base` recipe to extend, and may carry a `quick` block of dotted
overrides that `--quick` applies to shorten it for a CPU. Command-line overrides
(`--set train.epochs=3`) must name keys that exist: a typo is an error, not a
silently ignored setting.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from glioscope.errors import InputError

RECIPE_DIR = Path(__file__).parent / "recipes"


def recipe_path(name_or_path: str | Path) -> Path:
    """A recipe file: a path, or the name of a recipe shipped with glioscope."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    shipped = RECIPE_DIR / f"{path.stem}.yaml"
    if shipped.is_file() and (path.suffix in ("", ".yaml", ".yml")):
        return shipped
    known = ", ".join(sorted(p.stem for p in RECIPE_DIR.glob("*.yaml")))
    raise InputError(name_or_path, f"no such recipe; give a YAML file or one of: {known}")


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(path, f"is not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, "a recipe must be a YAML mapping")
    return data


def _resolve(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if path in seen:
        raise InputError(path, "recipe extends itself (base: loop)")
    data = _read(path)
    base = data.pop("base", None)
    if base is None:
        return data
    parent = _resolve(recipe_path(base if Path(base).suffix else base), seen + (path,))
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


def parse_value(text: str):
    """YAML scalar parsing, so '3' -> 3, '1e-4' -> 0.0001, 'none' -> None, '[1,2]' -> [1, 2]."""
    if text.strip().lower() == "none":
        return None
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in "eE.") else value
        except ValueError:
            return value
    return value


def set_dotted(config: dict, dotted: str, value, strict: bool = True) -> None:
    """config['a']['b'] = value for 'a.b'; with strict, the key must already exist."""
    keys = dotted.split(".")
    node = config
    for i, key in enumerate(keys[:-1]):
        if key not in node or not isinstance(node[key], dict):
            if strict:
                raise InputError(None, f"unknown setting {dotted!r}: {'.'.join(keys[: i + 1])} is not a section")
            node = node.setdefault(key, {})
            continue
        node = node[key]
    if strict and keys[-1] not in node:
        choices = ", ".join(sorted(node)) if isinstance(node, dict) else ""
        raise InputError(None, f"unknown setting {dotted!r}; settings here: {choices}")
    node[keys[-1]] = value


def get_dotted(config: dict, dotted: str, default=None):
    node = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def load_recipe(name_or_path: str | Path, overrides: list[str] = (), quick: bool = False) -> dict:
    """The resolved recipe: base recipes merged, `quick` applied if asked, then overrides."""
    path = recipe_path(name_or_path)
    config = _resolve(path)
    config.setdefault("name", path.stem)
    quick_block = config.pop("quick", {}) or {}
    if quick:
        for dotted, value in quick_block.items():
            set_dotted(config, dotted, value)
        config["quick"] = True
    else:
        config["quick"] = False
    for item in overrides:
        if "=" not in item:
            raise InputError(None, f"--set expects KEY=VALUE, got {item!r}")
        dotted, text = item.split("=", 1)
        set_dotted(config, dotted.strip(), parse_value(text))
    return config


def dump(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)
