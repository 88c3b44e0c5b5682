"""CSV files glioscope writes and reads back: safe to open in a spreadsheet, their ids kept as text.

A text cell that a spreadsheet would run as a formula, one beginning with =, +, -, @, a tab or a
carriage return (OWASP's rule against CSV injection), is written with a leading apostrophe,
unless it is a number; `read` takes that apostrophe off again, so that an id such as "=HYPERLINK"
round-trips. `read` reads every cell as text: "NA", "nan", "None" and "" are ids or labels, not
missing values; a caller converts its numeric columns (`numbers`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from glioscope.errors import InputError

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _neutral(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def _restored(value):
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def _text_columns(frame: pd.DataFrame) -> list:
    return [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c].dtype)]


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell that a spreadsheet would take for a formula prefixed with an apostrophe."""
    columns = _text_columns(frame)
    if not columns:
        return frame
    frame = frame.copy()
    for column in columns:
        frame[column] = frame[column].map(_neutral)
    return frame


def write(frame: pd.DataFrame, path: str | Path) -> None:
    """The frame as CSV, neutralised; a text cell holding a carriage return (which Python's csv writer leaves
    unquoted, so that a reader would break the row there) makes every text cell quoted."""
    frame = neutralised(frame)
    broken = any(frame[c].map(lambda v: isinstance(v, str) and "\r" in v).any() for c in _text_columns(frame))
    frame.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC if broken else csv.QUOTE_MINIMAL)


def read(path: str | Path, usecols=None) -> pd.DataFrame:
    """A CSV glioscope wrote, every cell as text (apostrophes added by `neutralised` taken off)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=usecols)
    for column in frame.columns:
        frame[column] = frame[column].map(_restored)
    return frame


def numbers(frame: pd.DataFrame, columns, path: str | Path | None = None) -> pd.DataFrame:
    """The frame with `columns` as numbers (an empty cell: NaN); an InputError naming the file for anything else."""
    for column in columns:
        text = frame[column].astype(str).str.strip()
        values = pd.to_numeric(text.where(text != "", None), errors="coerce")
        bad = values.isna() & (text != "")
        if bad.any():
            raise InputError(path, f"column {column!r} holds {text[bad].iloc[0]!r}, not a number")
        frame[column] = values
    return frame
