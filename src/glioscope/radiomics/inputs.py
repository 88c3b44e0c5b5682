"""What each patient's features are computed from: its channels (sequences) and tumour masks, from the cohort table.

A channel is one sequence of one patient: a NIfTI volume with its segmentation (BraTS, the
phantom, a manifest's mask_path), or 2D images stacked into a volume in slice order (kaggle_3m:
<case>_<n>.tif with <case>_<n>_mask.tif; a file holding several sequences as channels, such as
kaggle_3m's pre-contrast T1, FLAIR and post-contrast T1, gives one channel each). Every patient
must have every channel; one that cannot be featurised is left out with its reason, and a
cohort without any mask is an error that says where masks come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from glioscope.cohort import SEQUENCES
from glioscope.errors import InputError

NO_MASKS = (
    "has no tumour masks (mask_path is empty in every row used): a radiomics recipe computes its features "
    "inside each patient's tumour mask. Ingest a layout that has them: BraTS (<case>_seg.nii.gz), the "
    "phantom's brats layout (glioscope synth ... --layouts brats), kaggle_3m (<case>_<n>_mask.tif) or a "
    "manifest with a mask_path column"
)


@dataclass(frozen=True)
class Channel:
    """One sequence of one patient: a volume (one path) or 2D images in slice order, each with its mask ('' = none)."""

    name: str
    kind: str  # volume | slices
    paths: tuple[str, ...]
    masks: tuple[str, ...]
    index: int | None = None  # the channel of a multi-channel image file (kaggle_3m: 0 T1, 1 FLAIR, 2 T1c)


@dataclass(frozen=True)
class PatientInput:
    """A patient's label and channels, in the run's channel order."""

    patient_id: str
    label: str
    channels: tuple[Channel, ...]

    def files(self) -> list[str]:
        """Every file the features depend on (images and masks)."""
        return sorted({p for c in self.channels for p in (*c.paths, *c.masks) if p})


@dataclass
class Inputs:
    """The patients to featurise, those left out (patient_id, reason), notes, and the channel order."""

    patients: list[PatientInput]
    skipped: list[dict]
    notes: list[str]
    channels: list[str]


def _channel_order(names) -> list[str]:
    """Sequences in the usual order (T1, T1c, T2, FLAIR, PD), then any others alphabetically."""
    known = [s for s in SEQUENCES if s in names]
    return known + sorted(set(names) - set(known))


def _entries(frame: pd.DataFrame, skipped: list[dict]) -> pd.DataFrame:
    """One row per (cohort row, channel): a file with several sequences ('T1+FLAIR+T1c') gives one per sequence."""
    rows = []
    for row in frame.itertuples(index=False):
        if row.kind == "series":
            skipped.append(
                {
                    "patient_id": row.patient_id,
                    "path": row.path,
                    "reason": "a DICOM series: radiomics reads NIfTI volumes and 2D images with masks "
                    "(convert the series to NIfTI, or list it in a manifest as NIfTI)",
                }
            )
            continue
        names = [n for n in str(row.sequence or "unknown").split("+") if n]
        for k, name in enumerate(names):
            rows.append(
                {
                    "patient_id": str(row.patient_id),
                    "label": str(row.label),
                    "study_id": str(row.study_id),
                    "channel": name,
                    "kind": "volume" if row.kind == "volume" else "slices",
                    "index": k if len(names) > 1 else None,
                    "path": str(row.path),
                    "mask": str(row.mask_path or ""),
                    "slice_index": int(row.slice_index),
                }
            )
    return pd.DataFrame(
        rows, columns=["patient_id", "label", "study_id", "channel", "kind", "index", "path", "mask", "slice_index"]
    )


def _channel(rows: pd.DataFrame, notes: list[str]) -> Channel:
    """A patient's rows of one sequence as one channel: the first volume, or the first study's slices in order."""
    first = rows.iloc[0]
    volumes = rows[rows["kind"] == "volume"].sort_values("path")
    if len(volumes):
        volume = volumes.iloc[0]
        if len(volumes) > 1:
            notes.append(
                f"patient {first['patient_id']}: {len(volumes)} {first['channel']} volumes, "
                f"using {Path(volume['path']).name}"
            )
        return Channel(volume["channel"], "volume", (volume["path"],), (volume["mask"],), _index(volume["index"]))
    studies = sorted(rows["study_id"].unique())
    if len(studies) > 1:
        notes.append(
            f"patient {first['patient_id']}: {len(studies)} studies of {first['channel']} slices, using {studies[0]}"
        )
    slices = rows[rows["study_id"] == studies[0]].sort_values(["slice_index", "path"])
    return Channel(first["channel"], "slices", tuple(slices["path"]), tuple(slices["mask"]), _index(first["index"]))


def _index(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def patient_inputs(frame: pd.DataFrame, data, cohort_path: Path | str | None = None) -> Inputs:
    """The patients of the cohort rows `frame` (plan.load_cohort's) and their channels; `data`: RadiomicsData."""
    if not (frame["mask_path"].astype(str) != "").any():
        raise InputError(cohort_path, NO_MASKS)
    skipped: list[dict] = []
    notes: list[str] = []
    entries = _entries(frame, skipped)
    present = _channel_order(entries["channel"].unique())
    channels = list(data.channels) if data.channels else present
    unknown = [c for c in channels if c not in present]
    if unknown:
        raise InputError(
            cohort_path,
            f"data.channels {unknown} are not in the cohort, whose sequences are {', '.join(present) or 'none'}",
        )
    patients = []
    for patient, rows in entries.groupby("patient_id", sort=True):
        label = rows["label"].iloc[0]
        lacking = [c for c in channels if not (rows["channel"] == c).any()]
        if lacking:
            skipped.append(
                {
                    "patient_id": patient,
                    "path": rows["path"].iloc[0],
                    "reason": f"no {', '.join(lacking)} (every patient needs the channels "
                    f"{', '.join(channels)}; set data.channels to use fewer)",
                }
            )
            continue
        made = [_channel(rows[rows["channel"] == c], notes) for c in channels]
        if not any(m for c in made for m in c.masks):
            skipped.append(
                {"patient_id": patient, "path": made[0].paths[0], "reason": "no tumour mask (mask_path is empty)"}
            )
            continue
        patients.append(PatientInput(str(patient), str(label), tuple(made)))
    if unused := sorted(set(present) - set(channels)):
        notes.append(f"sequence(s) {', '.join(unused)} not featurised (data.channels is {', '.join(channels)})")
    return Inputs(patients, skipped, notes, channels)
