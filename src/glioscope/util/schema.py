"""Typed, immutable settings: frozen dataclasses checked against their annotations.

A settings class is a frozen dataclass whose fields are annotated with the types
below; `check(self)` in its `__post_init__` coerces and checks every field, and
`build(cls, mapping, "train")` makes one from a (YAML) mapping, refusing unknown keys
and naming the dotted key of any bad value:

    bool, int, float, str                 (an int or float is accepted where a str is asked)
    Literal["a", "b"]                     one of the choices (None stands for "none" where it is one)
    X | None, X | Y                       the first that fits
    tuple[T, ...], tuple[A, B]            from a list or tuple
    Mapping[str, T]                       from a mapping, kept read-only
    Annotated[int | float, Range(...)]    a number within bounds
    a nested settings class               from a mapping

Errors are `SettingError` (an InputError): "train.epochs: got 'abc', expected an integer".
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from glioscope.errors import InputError


class SettingError(InputError):
    """A setting has a value of the wrong type, outside its choices or its range, or does not exist."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(None, f"{key}: {message}" if key else message)

    @classmethod
    def unknown(cls, key: str, known) -> "SettingError":
        error = cls("", f"unknown setting {key!r}; settings here: {', '.join(sorted(known))}")
        error.key = key
        return error


@dataclass(frozen=True)
class Range:
    """Bounds of a number: low <= x <= high (strict with low_open / high_open); None: unbounded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def admits(self, x: float) -> bool:
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return not (self.high is not None and (x >= self.high if self.high_open else x > self.high))

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return " and ".join(parts)


def at_least(low: float) -> Range:
    return Range(low=low)


def fraction(open_low: bool = False, open_high: bool = False) -> Range:
    return Range(0.0, 1.0, open_low, open_high)


class _Mismatch(Exception):
    """A value does not fit an annotation; the text says what was expected."""


def describe(annotation) -> str:
    """What an annotation expects, in words."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        base = describe(args[0])
        bounds = [a.describe() for a in args[1:] if isinstance(a, Range)]
        return f"{base} {' '.join(bounds)}".strip()
    if origin in (Union, types.UnionType):
        names = [describe(a) for a in args if a is not type(None)]
        text = " or ".join(names)
        return f"{text} or null" if type(None) in args else text
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(describe(args[0]))}"
        return f"a list of {len(args)} ({', '.join(describe(a) for a in args)})"
    if origin in (Mapping, dict, typing.Mapping):
        return "a mapping"
    if dataclasses.is_dataclass(annotation):
        return "a mapping of settings"
    return {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a text",
        type(None): "null",
        Any: "any value",
    }.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _plural(text: str) -> str:
    for article in ("an ", "a "):
        if text.startswith(article):
            return text[len(article) :] + "s"
    return text


def _coerce(value, annotation, key: str):
    """`value` as `annotation` asks; _Mismatch or SettingError (nested keys) otherwise."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is Any:
        return value
    if origin is Annotated:
        result = _coerce(value, args[0], key)
        for bound in args[1:]:
            if isinstance(bound, Range) and not bound.admits(result):
                raise _Mismatch(describe(annotation))
        return result
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except _Mismatch:
                continue
        raise _Mismatch(describe(annotation))
    if origin is Literal:
        if value is None and "none" in args:
            return "none"  # YAML and --set read `none` as null
        if isinstance(value, bool) or value not in args:
            raise _Mismatch(describe(annotation))
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(describe(annotation))
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise _Mismatch(describe(annotation))
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if origin in (Mapping, dict, typing.Mapping):
        if not isinstance(value, Mapping):
            raise _Mismatch(describe(annotation))
        value_type = args[1] if len(args) == 2 else Any
        return types.MappingProxyType({str(k): _coerce(v, value_type, f"{key}.{k}") for k, v in value.items()})
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, Mapping):
            raise _Mismatch(describe(annotation))
        return build(annotation, value, key)
    return _scalar(value, annotation)


def _scalar(value, annotation):
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif annotation is type(None):
        if value is None:
            return None
    else:
        raise TypeError(f"unsupported settings annotation {annotation!r}")
    raise _Mismatch(describe(annotation))


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict:
    return typing.get_type_hints(cls, include_extras=True)


def _shown(value) -> str:
    if isinstance(value, types.MappingProxyType):
        value = dict(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def coerce_field(cls, name: str, value, key: str):
    """One field's value, coerced and checked; SettingError naming `key`."""
    annotation = _hints(cls)[name]
    try:
        return _coerce(value, annotation, key)
    except _Mismatch as exc:
        raise SettingError(key, f"got {_shown(value)}, expected {exc}") from None


def check(instance, label: str = "") -> None:
    """Coerce and check every field of a frozen settings dataclass in place (call it in __post_init__).

    `label` names the settings in messages ("slice settings: size: got 'x', expected ...").
    """
    for field in dataclasses.fields(instance):
        key = f"{label}: {field.name}" if label else field.name
        value = coerce_field(type(instance), field.name, getattr(instance, field.name), key)
        object.__setattr__(instance, field.name, value)


def build(cls, data: Mapping, prefix: str = ""):
    """A `cls` from a mapping: unknown keys are an error, missing ones take the field's default."""
    if not isinstance(data, Mapping):
        raise SettingError(prefix, f"got {_shown(data)}, expected a mapping of settings")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise SettingError.unknown(f"{prefix}.{unknown[0]}" if prefix else str(unknown[0]), names)
    values = {}
    for name in names:
        if name in data:
            values[name] = coerce_field(cls, name, data[name], f"{prefix}.{name}" if prefix else name)
    try:
        return cls(**values)  # every field is coerced already: what fails here is the class's own check
    except SettingError:
        raise
    except InputError as exc:
        raise SettingError(prefix, str(exc)) from None


def to_plain(value):
    """Settings as plain YAML/JSON values: dataclasses and mappings to dicts, tuples to lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        plain = {}
        for field in dataclasses.fields(value):
            convert = field.metadata.get("plain")
            item = getattr(value, field.name)
            plain[field.name] = convert(item) if convert else to_plain(item)
        return plain
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value
