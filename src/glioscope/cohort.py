"""The canonical cohort table: one row per image, volume or DICOM series.

Every reader produces rows with these columns; every later stage reads only this
table. A cohort is saved as a folder:

    cohort.csv      the table
    skipped.csv     files that were not used, with the reason
    summary.json    counts (patients, items per class, sequences, planes, skips)
    summary.txt     the same for a person
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from glioscope.errors import InputError
from glioscope.util import atomic, csvfiles

# Column order of cohort.csv. `files` holds, for a DICOM series, a JSON list of the
# slice files relative to `path` (the series folder), sorted along the slice normal.
COLUMNS = [
    "item_id",  # unique per row
    "patient_id",
    "study_id",
    "series_id",
    "kind",  # series | volume | image
    "sequence",  # T1 | T1c | T2 | FLAIR | PD | unknown; channels joined by '+'
    "plane",  # axial | sagittal | coronal | oblique | unknown
    "label",  # the task's class, as a string; empty when unknown
    "grade",  # II | III | IV | LGG | HGG | healthy | '' (as the source states it)
    "mgmt",  # 1 methylated | 0 unmethylated | '' unknown
    "path",
    "files",
    "mask_path",
    "slice_index",  # position of a 2D image within its volume, -1 when not applicable
    "n_slices",
    "rows",
    "cols",
    "spacing",  # "x,y,z" in mm, as read
    "modality",  # DICOM Modality (MR ...); '' for NIfTI and 2D images, which do not say
    "transfer_syntax",  # DICOM TransferSyntaxUID of the series' files; '' for other formats
    "source_format",
    "source_split",  # a split the source itself defines (Training/Testing...), else ''
    "institution",  # DICOM InstitutionName of a series, else '' (glioscope.sites reads a site from it)
    "scanner",  # DICOM ManufacturerModelName of a series, else ''
]

KINDS = ("series", "volume", "image")
SEQUENCES = ("T1", "T1c", "T2", "FLAIR", "PD", "unknown")
PLANES = ("axial", "sagittal", "coronal", "oblique", "unknown")

_DEFAULTS = {
    "study_id": "",
    "series_id": "",
    "sequence": "unknown",
    "plane": "unknown",
    "label": "",
    "grade": "",
    "mgmt": "",
    "files": "",
    "mask_path": "",
    "slice_index": -1,
    "n_slices": 1,
    "rows": 0,
    "cols": 0,
    "spacing": "",
    "modality": "",
    "transfer_syntax": "",
    "source_split": "",
    "institution": "",
    "scanner": "",
}
_STRING_COLUMNS = [c for c in COLUMNS if c not in ("slice_index", "n_slices", "rows", "cols")]


COHORT_FILE = "cohort.csv"  # a cohort folder's table (and a run folder's copy of the rows it used)

# What a reader notes when its source names no patients (glioscope.io.formats.imagefolder without a regex). The
# note is read by ingest and by predict and test on a folder, and only ingest takes --patient-regex.
NO_PATIENT_IDS = (
    "no patient ids: each image is treated as its own patient, so patient-level separation "
    "cannot be guaranteed (`glioscope ingest --format imagefolder --patient-regex REGEX` takes them from the file "
    "names; predict and test take the cohort folder it writes)"
)
# The same note as cohorts ingested by earlier versions recorded it.
EARLIER_NO_PATIENT_IDS = (
    "no patient ids: each image is treated as its own patient, so patient-level separation "
    "cannot be guaranteed (give --patient-regex to extract them from file names)"
)


@dataclass
class Skip:
    """A file (or series) left out of the cohort, and why."""

    path: str
    reason: str


@dataclass
class ReaderResult:
    """What a reader returns: rows for the table, skipped files, notes for the summary."""

    rows: list[dict] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    format: str = ""
    patient_ids: bool = True  # False when the source names no patients (each image its own patient)


def to_frame(rows: list[dict]) -> pd.DataFrame:
    """Build a cohort table from reader rows, filling defaults and checking the schema."""
    frame = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in frame:
            if column in _DEFAULTS:
                frame[column] = _DEFAULTS[column]
            elif column == "item_id" and len(frame):
                frame[column] = [f"item{i:06d}" for i in range(len(frame))]
            else:
                frame[column] = ""
    frame = frame[COLUMNS + [c for c in frame.columns if c not in COLUMNS]]
    return normalise(frame)


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Give every column its dtype: strings without NaN, integers for counts."""
    frame = frame.copy()
    for column in _STRING_COLUMNS:
        if column in frame:  # a missing value is "", a patient called "nan" or "NA" keeps its name
            frame[column] = frame[column].map(lambda value: "" if _missing(value) else str(value)).astype(str)
    for column in ("slice_index", "n_slices", "rows", "cols"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(_DEFAULTS[column]).astype(int)
    return frame.reset_index(drop=True)


def validate(frame: pd.DataFrame, source: str | Path = "cohort") -> None:
    """Raise InputError when the table breaks the schema."""
    missing = [c for c in ("item_id", "patient_id", "kind", "path") if c not in frame]
    if missing:
        raise InputError(source, f"cohort table lacks column(s) {', '.join(missing)}")
    if frame.empty:
        raise InputError(source, "cohort table has no rows")
    if (frame["patient_id"].astype(str).str.strip() == "").any():
        raise InputError(source, "some rows have no patient_id")
    duplicated = frame["item_id"][frame["item_id"].duplicated()]
    if len(duplicated):
        raise InputError(source, f"item_id is not unique, e.g. {duplicated.iloc[0]!r}")
    bad_kind = set(frame["kind"]) - set(KINDS)
    if bad_kind:
        raise InputError(source, f"unknown kind(s) {sorted(bad_kind)}; expected one of {KINDS}")


def series_files(row) -> list[Path]:
    """The files of one row, in slice order: a series' slices, else the single path."""
    base = Path(row["path"])
    if row.get("files"):
        return [base / name for name in json.loads(row["files"])]
    return [base]


def select(frame: pd.DataFrame, selection: dict[str, list[str]]) -> pd.DataFrame:
    """Keep rows whose columns match: {'plane': ['sagittal'], 'sequence': ['T1']}.

    Matching is case-insensitive; several values for one key mean 'any of'.
    """
    keep = pd.Series(True, index=frame.index)
    for key, values in selection.items():
        if key not in frame:
            raise InputError(None, f"--select: unknown column {key!r}; columns are {', '.join(frame.columns)}")
        wanted = {str(v).lower() for v in values}
        keep &= frame[key].astype(str).str.lower().isin(wanted)
    return frame[keep].reset_index(drop=True)


def parse_selection(text: str | None) -> dict[str, list[str]]:
    """Parse 'plane=sagittal,sequence=T1|T1c' into {'plane': [...], 'sequence': [...]}."""
    selection: dict[str, list[str]] = {}
    if not text:
        return selection
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise InputError(None, f"--select expects KEY=VALUE pairs separated by commas, got {part!r}")
        key, value = (s.strip() for s in part.split("=", 1))
        selection.setdefault(key, []).extend(v for v in value.split("|") if v)
    return selection


# --- summary -----------------------------------------------------------------


def summarise(
    frame: pd.DataFrame, skipped: list[Skip] = (), notes: list[str] = (), sources=(), patient_ids: bool = True
) -> dict:
    """Counts a person checks before training: patients, classes, sequences, planes, skips; `patient_ids` False
    when a source named no patients (each image counted as its own patient)."""
    labelled = frame[frame["label"] != ""]
    per_class = {}
    for label, group in labelled.groupby("label"):
        per_class[str(label)] = {"items": int(len(group)), "patients": int(group["patient_id"].nunique())}
    return {
        "sources": [str(s) for s in sources],
        "patients": int(frame["patient_id"].nunique()),
        "items": int(len(frame)),
        "kinds": dict(Counter(frame["kind"])),
        "classes": per_class,
        "unlabelled_items": int((frame["label"] == "").sum()),
        "sequences": dict(Counter(frame["sequence"])),
        "planes": dict(Counter(frame["plane"])),
        "modalities": dict(Counter(m or "not stated" for m in frame["modality"])),
        "formats": dict(Counter(frame["source_format"])),
        "source_splits": dict(Counter(s for s in frame["source_split"] if s)),
        "skipped": [asdict(s) for s in skipped],
        "notes": list(notes),
        "patient_ids": bool(patient_ids),
    }


def format_summary(summary: dict) -> str:
    """Render a summary dict as plain text for the terminal and summary.txt."""
    lines = [
        f"Cohort: {summary['patients']} patients, {summary['items']} items "
        f"({', '.join(f'{n} {k}' for k, n in sorted(summary['kinds'].items()))})",
    ]
    if summary.get("sources"):
        lines.append("Sources: " + ", ".join(summary["sources"]))
    if summary.get("formats"):
        lines.append("Formats: " + _counts(summary["formats"]))
    lines.append("Classes:")
    if summary["classes"]:
        width = max(len(k) for k in summary["classes"])
        for label, counts in sorted(summary["classes"].items()):
            lines.append(f"  {label:<{width}}  {counts['patients']:>5} patients  {counts['items']:>7} items")
    if summary["unlabelled_items"]:
        lines.append(f"  (unlabelled)  {summary['unlabelled_items']} items")
    lines.append("Sequences: " + _counts(summary["sequences"]))
    lines.append("Planes: " + _counts(summary["planes"]))
    if summary.get("modalities"):
        lines.append("Modalities: " + _counts(summary["modalities"]))
    if summary.get("source_splits"):
        lines.append("Splits given by the source: " + _counts(summary["source_splits"]))
    for note in summary.get("notes", []):
        lines.append(f"Note: {note}")
    skipped = summary.get("skipped", [])
    kinds = sorted(_reasons(skipped).items(), key=lambda kv: -kv[1])
    lines.append(f"Skipped: {len(skipped)}" + (" (" + "; ".join(f"{n} {k}" for k, n in kinds) + ")" if skipped else ""))
    for skip in skipped[:50]:
        lines.append(f"  {skip['path']}: {skip['reason']}")
    if len(skipped) > 50:
        lines.append(f"  ... and {len(skipped) - 50} more (see skipped.csv)")
    return "\n".join(lines)


def _reasons(skipped: list[dict]) -> dict[str, int]:
    """Skips by kind of reason: the reason's words before any detail in brackets or after a colon."""
    kinds = Counter()
    for skip in skipped:
        reason = skip["reason"]
        reason = reason.split(": ", 1)[1] if reason.startswith("series ") and ": " in reason else reason
        kinds[re.split(r" \(|: | as /", reason)[0][:60]] += 1
    return dict(kinds)


def _counts(counter: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0]))))


# --- saving and loading ------------------------------------------------------


def save(out_dir: Path, frame: pd.DataFrame, summary: dict) -> None:
    """Write cohort.csv, skipped.csv, summary.json and summary.txt into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_csv(out_dir / COHORT_FILE, frame)
    atomic.write_csv(out_dir / "skipped.csv", pd.DataFrame(summary["skipped"], columns=["path", "reason"]))
    atomic.write_json(out_dir / "summary.json", summary)
    atomic.write_text(out_dir / "summary.txt", format_summary(summary) + "\n")


def load(path: str | Path) -> pd.DataFrame:
    """Read a cohort table from its folder or its CSV file, and check it."""
    path = Path(path)
    csv = path / COHORT_FILE if path.is_dir() else path
    if not csv.is_file():
        raise InputError(path, "no cohort table here; expected a folder written by `glioscope ingest` or a cohort.csv")
    try:
        frame = csvfiles.read(csv)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(csv, f"cannot be read as a CSV table ({exc})") from None
    frame = normalise(frame)
    validate(frame, csv)
    return frame


def has_patient_ids(path: str | Path) -> bool:
    """False when the cohort's summary says that a source had no patient ids (each image its own patient)."""
    summary = Path(path) / "summary.json"
    if not summary.is_file():
        return True
    found = json.loads(summary.read_text(encoding="utf-8"))
    if "patient_ids" in found:
        return bool(found["patient_ids"])
    notes = found.get("notes", [])  # a cohort ingested before the summary had the field
    return NO_PATIENT_IDS not in notes and EARLIER_NO_PATIENT_IDS not in notes
