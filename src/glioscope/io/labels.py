"""Join a clinical CSV onto cohort rows by patient id."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from glioscope.errors import InputError
from glioscope.io.files import SPECIAL, is_special

# Checked in this order, case-insensitively, when --id-column / --label-column are not given.
ID_COLUMNS = (
    "PatientID",
    "patient_id",
    "Patient",
    "ID",
    "Sample",
    "BraTS21ID",
    "subject_id",
    "Subject",
    "case_id",
    "case",
)
LABEL_COLUMNS = ("label", "Grade", "MGMT_value", "class", "diagnosis", "neoplasm_histologic_grade", "target")
GRADE_COLUMNS = ("Grade", "grade", "WHO_grade", "tumor_grade")
MGMT_COLUMNS = ("MGMT_value", "mgmt", "MGMT", "MGMT_status")

# Cells that mean "no value" in clinical tables (BraTS name_mapping.csv writes NA).
MISSING = {"", "na", "n/a", "nan", "none", "null", "-"}
_ROMAN = {"1": "I", "2": "II", "3": "III", "4": "IV", "i": "I", "ii": "II", "iii": "III", "iv": "IV"}


def read_table(csv: Path) -> pd.DataFrame:
    """A CSV as text columns (ids such as 00012 keep their zeros); InputError when unreadable."""
    csv = Path(csv)
    if is_special(csv):
        raise InputError(csv, f"is {SPECIAL}")
    if not csv.is_file():
        raise InputError(csv, "CSV file not found")
    with open(csv, "rb") as handle:
        if b"\0" in handle.read(4096):
            raise InputError(csv, "cannot be read as a CSV table: it is a binary file")
    # utf-8-sig drops the byte-order mark Excel writes; latin-1 reads any older export.
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            table = pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True, encoding=encoding)
            break
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(csv, f"cannot be read as a CSV table ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    return table.apply(lambda column: column.str.strip())


def find_column(table: pd.DataFrame, given: str | None, candidates, csv: Path, what: str) -> str:
    """The column named `given`, else the first candidate present (case-insensitive)."""
    by_lower = {c.lower(): c for c in table.columns}
    if given:
        if given in table.columns:
            return given
        if given.lower() in by_lower:
            return by_lower[given.lower()]
        raise InputError(csv, f"has no column {given!r} for the {what}; columns are {', '.join(table.columns)}")
    for name in candidates:
        if name.lower() in by_lower:
            return by_lower[name.lower()]
    raise InputError(
        csv,
        f"no {what} column found (tried {', '.join(candidates)}); columns are "
        f"{', '.join(table.columns)}; name it with --{'id' if what == 'patient id' else 'label'}-column",
    )


def optional_column(table: pd.DataFrame, candidates) -> str | None:
    """The first candidate column present (case-insensitive), else None."""
    by_lower = {c.lower(): c for c in table.columns}
    return next((by_lower[n.lower()] for n in candidates if n.lower() in by_lower), None)


def match_key(patient_id) -> str:
    """Id as compared between CSV and images: case, '-' vs '_' and leading zeros of numbers ignored."""
    text = str(patient_id).strip().upper().replace("-", "_")
    if re.fullmatch(r"\d+(\.0+)?", text):
        return str(int(float(text)))
    return text


def normalise_grade(value) -> str:
    """'2', 'G2', 'Grade II', 'ii' -> 'II'; 'hgg' -> 'HGG'; 'normal' -> 'healthy'; else as given."""
    text = str(value).strip()
    lower = re.sub(r"^(who\s*)?(grade|g)\s*", "", text.lower()).strip()
    lower = re.sub(r"\.0+$", "", lower)
    if lower in _ROMAN:
        return _ROMAN[lower]
    if lower in ("hgg", "lgg"):
        return lower.upper()
    if lower in ("healthy", "normal", "control"):
        return "healthy"
    return text


def normalise_value(value) -> str:
    """Label text: stripped, '1.0' -> '1' so that numeric codes compare as strings."""
    text = str(value).strip()
    if re.fullmatch(r"-?\d+\.0+", text):
        return text.split(".")[0]
    return "" if text.lower() in MISSING else text


def join_labels(
    frame: pd.DataFrame,
    csv: Path,
    id_column: str | None = None,
    label_column: str | None = None,
    required: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    """Fill label (and grade, mgmt) of rows whose patient is in the CSV: (frame, notes).

    Patients missing from the CSV keep the label their source gave them. When no id
    matches, raise InputError (or, with `required=False`, return the frame with a note).
    """
    csv = Path(csv)
    table = read_table(csv)
    id_col = find_column(table, id_column, ID_COLUMNS, csv, "patient id")
    label_col = find_column(table, label_column, LABEL_COLUMNS, csv, "label")
    grade_col, mgmt_col = optional_column(table, GRADE_COLUMNS), optional_column(table, MGMT_COLUMNS)
    records = _records(table, id_col, csv)
    keys = frame["patient_id"].map(match_key)
    matched = keys.isin(records.keys())
    if not matched.any():
        message = (
            f"no id in column {id_col!r} matches a patient of the images: CSV ids look like "
            f"{_examples(table[id_col])}, image patient ids like {_examples(frame['patient_id'])}"
        )
        if required:
            raise InputError(csv, message)
        return frame, [f"{csv}: {message}; labels not used"]
    frame = frame.copy()
    for column in ("label", "grade", "mgmt"):
        if column not in frame:
            frame[column] = ""
    for column, source in (("label", label_col), ("grade", grade_col), ("mgmt", mgmt_col)):
        if source is None:
            continue
        clean = normalise_grade if source == grade_col else normalise_value
        frame.loc[matched, column] = [clean(records[key][source]) for key in keys[matched]]
    return frame, _join_notes(frame, matched, records, keys, csv, label_col)


def _records(table: pd.DataFrame, id_col: str, csv: Path) -> dict[str, dict]:
    records: dict[str, dict] = {}
    for record in table.to_dict("records"):
        if record[id_col].lower() in MISSING:
            continue
        key = match_key(record[id_col])
        if key in records and records[key] != record:
            raise InputError(csv, f"patient {record[id_col]!r} has two different rows; keep one row per patient")
        records[key] = record
    return records


def _join_notes(frame, matched, records, keys, csv: Path, label_col: str) -> list[str]:
    notes = [f"labels from {csv} (column {label_col!r}) joined by patient id"]
    unmatched_patients = sorted(set(frame.loc[~matched, "patient_id"]))
    if unmatched_patients:
        notes.append(
            f"{len(unmatched_patients)} patient(s) have no row in {csv.name} and keep their source's label "
            f"(often none), e.g. {', '.join(unmatched_patients[:5])}"
        )
    unused = len(set(records) - set(keys))
    if unused:
        notes.append(f"{unused} row(s) of {csv.name} match no patient of the images")
    return notes


def _examples(values, count: int = 3) -> str:
    unique = list(dict.fromkeys(str(v) for v in values if str(v)))
    return ", ".join(repr(v) for v in unique[:count]) or "(none)"
