"""BraTS-style NIfTI cases (2015 to 2023 naming, brainles outputs): one row per (case, sequence).

The case id is the file-name part before the sequence token (`BraTS2021_00006` of
`BraTS2021_00006_t1ce.nii.gz`); files whose names carry no case (BraTS 2015's
`Flair_subtrMeanDivStd.nii.gz`), or whose prefixes all differ while their
sequences do too (raw TCIA conversions), take their folder's name.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from glioscope.cohort import ReaderResult, Skip
from glioscope.io import labels
from glioscope.io.files import walk_files
from glioscope.io.formats.common import Census, find_nearby, split_of
from glioscope.io.nifti import check_volumes, is_nifti
from glioscope.io.options import ReadOptions
from glioscope.io.sequences import case_prefix, classify_file_name

NAME = "brats"
NAME_MAPPING = "name_mapping.csv"
_GRADE_FOLDERS = {"hgg": "HGG", "lgg": "LGG"}
_UNKNOWN_NAME = "cannot tell the sequence from the file name (expected a token such as t1, t1ce, t2, flair, t2f or seg)"


@dataclass(frozen=True)
class _File:
    path: Path
    role: str  # image | mask | brainmask
    sequence: str
    prefix: str


def detect(source: Path, found: Census) -> str | None:
    """A reason when the tree holds NIfTI volumes only."""
    if found.nifti and not found.images and not found.dicom:
        return f"NIfTI volumes not named like IXI (e.g. {found.nifti[0].name}); read as BraTS-style tumour cases"
    return None


def read(source: Path, options: ReadOptions) -> ReaderResult:
    """Rows of kind 'volume' with the case's segmentation as mask and the grade as label."""
    all_files = walk_files(source)
    result = ReaderResult()
    entries = _classify([p for p in all_files if is_nifti(p)], result)
    infos, skips = check_volumes([e.path for e in entries], options.check_data, options.workers, options.progress)
    result.skipped += skips
    grades = _grade_table(source, [p for p in all_files if p.name.lower() == NAME_MAPPING], result)
    ungraded = []
    for (folder, case), files in sorted(_cases(entries).items()):
        grade = grades.get(labels.match_key(case)) or _folder_grade(folder, source)
        rows = _case_rows(source, case, files, infos, grade, result)
        if rows and not grade and case not in ungraded:
            ungraded.append(case)
        result.rows += rows
    if ungraded:
        result.notes.append(
            f"{len(ungraded)} case(s) have no grade (no {NAME_MAPPING} entry or HGG/LGG folder), "
            f"so no label: {', '.join(ungraded[:5])}{' ...' if len(ungraded) > 5 else ''}"
        )
    return result


def _classify(paths: list[Path], result: ReaderResult) -> list[_File]:
    entries, brain_masks = [], 0
    for path in paths:
        role, sequence, index = classify_file_name(path.name)
        if role == "unknown":
            result.skipped.append(Skip(str(path), _UNKNOWN_NAME))
        elif role == "brainmask":
            brain_masks += 1
        else:
            entries.append(_File(path, role, sequence, case_prefix(path.name)))
    if brain_masks:
        result.notes.append(f"ignored {brain_masks} brain mask file(s) (not tumour segmentations)")
    return entries


def _cases(entries: list[_File]) -> dict[tuple[Path, str], list[_File]]:
    by_folder: dict[Path, list[_File]] = defaultdict(list)
    for entry in entries:
        by_folder[entry.path.parent].append(entry)
    cases: dict[tuple[Path, str], list[_File]] = defaultdict(list)
    for folder, files in by_folder.items():
        counts = defaultdict(int)
        for entry in files:
            counts[entry.prefix] += 1
        singles = [e for e in files if e.prefix and counts[e.prefix] == 1]
        distinct = len({(e.role, e.sequence) for e in singles}) == len(singles)
        merge_singles = len(singles) > 1 and distinct and len(singles) == len([e for e in files if e.prefix])
        for entry in files:
            case = folder.name if not entry.prefix or (merge_singles and entry in singles) else entry.prefix
            cases[(folder, case)].append(entry)
    return cases


def _case_rows(
    source: Path, case: str, files: list[_File], infos: dict, grade: str, result: ReaderResult
) -> list[dict]:
    masks = [e for e in files if e.role == "mask" and str(e.path) in infos]
    if len(masks) > 1:
        result.notes.append(f"case {case}: {len(masks)} segmentations, using {masks[0].path.name}")
    mask = infos[str(masks[0].path)] if masks else None
    rows = []
    for entry in sorted((e for e in files if e.role == "image"), key=lambda e: (e.sequence, e.path.name)):
        info = infos.get(str(entry.path))
        if info is None:
            continue  # skipped by the volume check, with its reason
        mask_path = ""
        if mask is not None and mask["shape"] == info["shape"]:
            mask_path = mask["path"]
        elif mask is not None:
            shapes = f"{mask['shape']} vs {info['shape']}"
            result.notes.append(
                f"case {case}: segmentation and {entry.path.name} differ in shape ({shapes}); not paired"
            )
        x, y, z = info["shape"]
        rows.append(
            {
                "patient_id": case,
                "study_id": case,
                "kind": "volume",
                "sequence": entry.sequence,
                "plane": info["plane"],
                "label": grade,
                "grade": grade,
                "path": info["path"],
                "mask_path": mask_path,
                "n_slices": z,
                "rows": y,
                "cols": x,
                "spacing": ",".join(f"{s:.6g}" for s in info["spacing"]),
                "source_format": NAME,
                "source_split": split_of(entry.path, source),
            }
        )
    return rows


def _grade_table(source: Path, inside: list[Path], result: ReaderResult) -> dict[str, str]:
    """Grade by case id from name_mapping.csv files in the tree or up to two folders above it."""
    nearby = find_nearby(source, NAME_MAPPING, up=2)
    grades: dict[str, str] = {}
    for csv in dict.fromkeys(inside + ([nearby] if nearby else [])):
        table = labels.read_table(csv)
        grade_col = labels.optional_column(table, labels.GRADE_COLUMNS)
        if grade_col is None:
            result.notes.append(f"{csv} has no Grade column; not used")
            continue
        for record in table.to_dict("records"):
            grade = labels.normalise_grade(record[grade_col])
            for column, value in record.items():
                if column != grade_col and value.lower() not in labels.MISSING:
                    grades[labels.match_key(value)] = grade
        result.notes.append(f"grades from {csv}")
    return grades


def _folder_grade(folder: Path, source: Path) -> str:
    for part in reversed([source.name, *folder.relative_to(source).parts]):
        if part.lower() in _GRADE_FOLDERS:
            return _GRADE_FOLDERS[part.lower()]
    return ""
