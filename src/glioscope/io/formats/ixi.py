"""Healthy NIfTI volumes: IXI<nnn>-<Site>-<nnnn>-<contrast>.nii.gz, or any NIfTI file as its own subject.

A file not named like IXI is its own patient, with the file name (without
.nii/.nii.gz) as patient id: nothing else tells which files belong together.
"""

from __future__ import annotations

import re
from pathlib import Path

from glioscope.cohort import ReaderResult, Skip
from glioscope.io.files import walk_files
from glioscope.io.formats.common import Census, split_of
from glioscope.io.nifti import check_volumes, is_nifti
from glioscope.io.options import ReadOptions
from glioscope.io.sequences import classify_file_name, strip_nifti_suffix

NAME = "ixi"
HEALTHY = "healthy"
IXI_NAME = re.compile(
    r"^(?P<patient>IXI\d+)-(?P<site>[A-Za-z]+)-(?P<scan>\d+)-(?P<contrast>T1|T2|PD|MRA|DTI)(-\d+)?$", re.IGNORECASE
)
_IXI_SEQUENCES = {"T1": "T1", "T2": "T2", "PD": "PD"}


def detect(source: Path, found: Census) -> str | None:
    """A reason when most NIfTI files are named like IXI."""
    named = [p for p in found.nifti if IXI_NAME.match(strip_nifti_suffix(p.name))]
    if named and len(named) * 2 >= len(found.nifti) and not found.images and not found.dicom:
        return f"{len(named)} NIfTI file(s) named IXI<nnn>-<site>-<nnnn>-<contrast> (healthy subjects)"
    return None


def read(source: Path, options: ReadOptions) -> ReaderResult:
    """Rows of kind 'volume' labelled healthy."""
    result = ReaderResult()
    subjects: dict[Path, tuple[str, str, str]] = {}  # path -> (patient, study, sequence)
    own_patients = []
    for path in (p for p in walk_files(source) if is_nifti(p)):
        stem = strip_nifti_suffix(path.name)
        match = IXI_NAME.match(stem)
        if match:
            contrast = match["contrast"].upper()
            if contrast not in _IXI_SEQUENCES:
                result.skipped.append(Skip(str(path), f"IXI {contrast} is not a structural image (T1, T2 or PD)"))
                continue
            study = f"{match['patient'].upper()}-{match['site']}-{match['scan']}"
            subjects[path] = (match["patient"].upper(), study, _IXI_SEQUENCES[contrast])
            continue
        role, sequence, _ = classify_file_name(path.name)
        if role in ("mask", "brainmask"):
            result.skipped.append(Skip(str(path), "a mask, not an image of a healthy subject"))
            continue
        subjects[path] = (stem, stem, sequence)
        own_patients.append(stem)
    infos, skips = check_volumes(list(subjects), options.check_data, options.workers, options.progress)
    result.skipped += skips
    for path, (patient, study, sequence) in subjects.items():
        info = infos.get(str(path))
        if info is None:
            continue
        x, y, z = info["shape"]
        result.rows.append(
            {
                "patient_id": patient,
                "study_id": study,
                "kind": "volume",
                "sequence": sequence,
                "plane": info["plane"],
                "label": HEALTHY,
                "grade": HEALTHY,
                "path": info["path"],
                "n_slices": z,
                "rows": y,
                "cols": x,
                "spacing": ",".join(f"{s:.6g}" for s in info["spacing"]),
                "source_format": NAME,
                "source_split": split_of(path, source),
            }
        )
    if own_patients:
        result.notes.append(
            f"{len(own_patients)} NIfTI file(s) not named like IXI: each is treated as its own "
            f"patient, named after the file ({', '.join(own_patients[:5])})"
        )
    return result
