"""The ingest stage: read sources, join labels, select rows, check, summarise, save a cohort folder."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from glioscope import cohort
from glioscope.errors import InputError
from glioscope.io import labels as label_table
from glioscope.io.files import inside
from glioscope.io.formats import FORMATS, ReadOptions, detect_format, read_source
from glioscope.util import atomic

_SOURCE = "_source"  # which source a row came from, while sources are combined


def ingest(
    sources: Sequence[Path],
    out: Path | None,
    format: str = "auto",
    labels: Path | None = None,
    select: dict[str, list[str]] | None = None,
    id_column: str | None = None,
    label_column: str | None = None,
    patient_regex: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] | None = print,
    modalities: Sequence[str] | None = ("MR",),
) -> tuple[pd.DataFrame, dict]:
    """Build one cohort table from `sources`; write it to `out` (atomically) when given: (frame, summary).

    `modalities`: the DICOM modalities kept (default MR; None: any); other series are skipped with the reason.
    """
    if not sources:
        raise InputError(None, "no source given")
    if format != "auto" and format not in FORMATS:
        raise InputError(None, f"unknown format {format!r}; choose one of auto, {', '.join(FORMATS)}")
    say = echo or (lambda message: None)
    options = ReadOptions(
        labels=Path(labels) if labels else None,
        id_column=id_column,
        label_column=label_column,
        patient_regex=patient_regex,
        workers=workers,
        progress=progress,
        echo=say,
        modalities=None if modalities is None else tuple(m.upper() for m in modalities),
    )
    if out is not None:
        _refuse_output_inside(Path(out), [Path(s) for s in sources])
    # Entering the output folder first refuses an existing output before a long scan,
    # and a failure anywhere below leaves nothing behind.
    target = atomic.atomic_dir(out, overwrite) if out is not None else contextlib.nullcontext()
    with target as folder:
        frame, summary = _build([Path(s) for s in sources], format, options, select)
        say(cohort.format_summary(summary))
        if folder is not None:
            cohort.save(folder, frame, summary)
    return frame, summary


def _build(sources: list[Path], format: str, options: ReadOptions, select) -> tuple[pd.DataFrame, dict]:
    frames, skipped, notes, patient_ids = [], [], [], True
    for source in sources:
        chosen = format
        if chosen == "auto":
            chosen, reason = detect_format(source)
            prefix = f"{source}: " if len(sources) > 1 else ""
            options.say(f"{prefix}detected format: {chosen} ({reason})")
        result = read_source(source, chosen, options)
        if not result.rows:
            raise InputError(source, "no images found" + _skip_hint(result.skipped))
        if not result.patient_ids:
            options.say(f"WARNING: {cohort.NO_PATIENT_IDS}")
        patient_ids = patient_ids and result.patient_ids
        # An empty item_id column stops to_frame from numbering each source from zero.
        frame = cohort.to_frame([{"item_id": "", **row} for row in result.rows])
        frame[_SOURCE] = str(source)
        frames.append(frame)
        skipped += result.skipped
        notes += result.notes
    frame = pd.concat(frames, ignore_index=True)
    if options.labels is not None:
        frame, join_notes = label_table.join_labels(frame, options.labels, options.id_column, options.label_column)
        notes += join_notes
    notes += _check_patients(frame)
    frame = _assign_item_ids(frame.drop(columns=[_SOURCE]))
    if select:
        frame = _select(frame, select)
    frame = cohort.normalise(frame.fillna(""))
    cohort.validate(frame, sources[0] if len(sources) == 1 else "cohort")
    if skipped:
        options.say(f"warning: {len(skipped)} file(s) skipped; reasons below and in skipped.csv")
    summary = cohort.summarise(
        frame, skipped, notes, sources=[s.expanduser().resolve() for s in sources], patient_ids=patient_ids
    )
    return frame, summary


def _refuse_output_inside(out: Path, sources: list[Path]) -> None:
    """An output folder inside a source would be read as data by the next ingest of that source."""
    for source in sources:
        if source.is_dir() and inside(out, source):
            raise InputError(
                out, f"is inside the source {source}: a later ingest would read it as data; write the cohort elsewhere"
            )


def _skip_hint(skipped) -> str:
    if not skipped:
        return ""
    first = skipped[0]
    return f"; {len(skipped)} file(s) could not be used, e.g. {first.path}: {first.reason}"


def _check_patients(frame: pd.DataFrame) -> list[str]:
    """InputError when one patient id has different labels in two sources; notes for softer overlaps."""
    notes = []
    labelled = frame[frame["label"] != ""]
    label_count = labelled.groupby("patient_id")["label"].nunique()
    source_count = frame.groupby("patient_id")[_SOURCE].nunique()
    shared = source_count[source_count > 1].index
    for patient in shared:
        if label_count.get(patient, 0) > 1:
            rows = labelled[labelled["patient_id"] == patient]
            listing = "; ".join(f"{s}: {', '.join(sorted(set(g['label'])))}" for s, g in rows.groupby(_SOURCE))
            raise InputError(
                None,
                f"patient id {patient!r} appears in several sources with different labels "
                f"({listing}); patient ids must identify one person across sources",
            )
    if len(shared):
        notes.append(
            f"{len(shared)} patient id(s) appear in more than one source with the same label: "
            "treated as one patient each"
        )
    several = label_count[label_count > 1]
    if len(several):
        notes.append(
            f"{len(several)} patient(s) have items with different labels (e.g. {', '.join(several.index[:5])})"
        )
    return notes


def _assign_item_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep item ids a manifest gave; number the others item000000, item000001 ..."""
    frame = frame.copy()
    given = frame["item_id"].astype(str).str.strip() if "item_id" in frame else pd.Series("", index=frame.index)
    numbered = pd.Series([f"item{i:06d}" for i in range(len(frame))], index=frame.index)
    frame["item_id"] = given.where(given != "", numbered)
    return frame


def _select(frame: pd.DataFrame, selection: dict[str, list[str]]) -> pd.DataFrame:
    kept = cohort.select(frame, selection)
    if kept.empty:
        present = "; ".join(f"{key}: {', '.join(sorted(set(frame[key].astype(str))))}" for key in selection)
        wanted = ",".join(f"{k}={'|'.join(v)}" for k, v in selection.items())
        raise InputError(None, f"--select {wanted} keeps no rows; the sources have {present}")
    return kept
