"""Kaggle "LGG segmentation" (Buda et al.): kaggle_3m/<case>/<case>_<n>.tif, _mask.tif and data.csv."""

from __future__ import annotations

import re
from pathlib import Path

from glioscope.cohort import ReaderResult, Skip
from glioscope.io import labels
from glioscope.io.files import inside
from glioscope.io.formats.common import Census
from glioscope.io.images import read_image_headers
from glioscope.io.options import ReadOptions

NAME = "kaggle3m"
FOLDER = "kaggle_3m"
DATA_CSV = "data.csv"
# The three channels of every .tif: pre-contrast T1, FLAIR, post-contrast T1.
CHANNELS = "T1+FLAIR+T1c"
# neoplasm_histologic_grade codes, as the dataset's paper counts them (51 grade II, 58 grade III).
GRADE_CODES = {"1": "II", "2": "III"}
_SLICE = re.compile(r"^(?P<case>.+)_(?P<index>\d+)$")


def detect(source: Path, found: Census) -> str | None:
    """A reason when `source` is (or holds) a kaggle_3m folder."""
    root = _root(source)
    if root is None:
        return None
    return f"{root.name}/ with {DATA_CSV} and <case>/<case>_<n>_mask.tif files"


def _root(source: Path) -> Path | None:
    for candidate in (source, source / FOLDER):
        if not candidate.is_dir():
            continue
        if (candidate / DATA_CSV).is_file() or candidate.name == FOLDER:
            case = next((d for d in sorted(candidate.iterdir()) if d.is_dir()), None)
            if case is not None and any(case.glob("*_mask.tif")):
                return candidate
    return None


def read(source: Path, options: ReadOptions) -> ReaderResult:
    """One row per slice image; the grade (II/III) from data.csv is the label."""
    root = _root(source) or source
    result = ReaderResult()
    grades = _grades(root, result)
    slices, masks = [], []
    for case in sorted(d for d in root.iterdir() if d.is_dir()):
        for image in sorted(case.glob("*.tif")):
            if image.stem.endswith("_mask") or not inside(image, source):  # links out: listed by read_source
                continue
            match = _SLICE.match(image.stem)
            if match is None:
                result.skipped.append(Skip(str(image), "name is not <case>_<slice number>.tif"))
                continue
            mask = image.with_name(f"{image.stem}_mask.tif")
            mask = mask if mask.is_file() and inside(mask, source) else None
            slices.append((case, image, int(match["index"]), mask))
            masks += [mask] if mask is not None else []
    slices.sort(key=lambda s: (s[0].name, s[2]))
    headers, skips = read_image_headers([s[1] for s in slices] + masks, options.workers, options.progress)
    result.skipped += skips
    unpaired = 0
    for case, image, index, mask in slices:
        header = headers.get(str(image))
        if header is None:
            continue
        patient = "_".join(case.name.split("_")[:3])
        mask_path = str(mask) if mask is not None and str(mask) in headers else ""
        unpaired += not mask_path
        grade = grades.get(labels.match_key(patient), "")
        result.rows.append(
            {
                "patient_id": patient,
                "study_id": case.name,
                "kind": "image",
                "sequence": CHANNELS,
                "plane": "axial",
                "label": grade,
                "grade": grade,
                "path": str(image),
                "mask_path": mask_path,
                "slice_index": index,
                "rows": header["rows"],
                "cols": header["cols"],
                "source_format": NAME,
            }
        )
    if unpaired:
        result.notes.append(f"{unpaired} slice(s) have no readable _mask.tif")
    return result


def _grades(root: Path, result: ReaderResult) -> dict[str, str]:
    csv = root / DATA_CSV
    if not csv.is_file():
        result.notes.append(f"no {DATA_CSV} in {root}: slices are unlabelled")
        return {}
    table = labels.read_table(csv)
    patient_col = labels.find_column(table, "Patient", (), csv, "patient id")
    grade_col = labels.find_column(table, "neoplasm_histologic_grade", (), csv, "label")
    grades = {}
    for patient, code in zip(table[patient_col], table[grade_col]):
        grades[labels.match_key(patient)] = GRADE_CODES.get(labels.normalise_value(code), "")
    missing = sorted(p for p in table[patient_col] if not grades[labels.match_key(p)])
    note = f"grades from {csv} (neoplasm_histologic_grade 1 = II, 2 = III)"
    result.notes.append(note + (f"; no grade for {', '.join(missing[:5])}" if missing else ""))
    return grades
