"""volume_from_file: one new study (NIfTI file, folder of NIfTI files, DICOM series or study) for `predict`."""

from __future__ import annotations

from pathlib import Path

from glioscope import cohort
from glioscope.errors import InputError
from glioscope.io import nifti
from glioscope.io.files import walk_files
from glioscope.io.sequences import classify_file_name, patient_from_file_name
from glioscope.preprocess.single import dicom_rows
from glioscope.preprocess3d.build import build_volumes
from glioscope.preprocess3d.settings import VolumeSettings
from glioscope.preprocess3d.volume_set import VolumeSet


def volume_from_file(path: Path, settings: VolumeSettings, select: dict[str, list[str]] | None = None) -> VolumeSet:
    """The volume of a NIfTI file, a folder of one study's NIfTI files (a BraTS case), or a DICOM series or study.

    Sequences are told from file names (NIfTI) or series descriptions (DICOM); with one channel,
    a single file or series is used whatever its name says (a note says so when it names another
    sequence). No cache is used: each call preprocesses again.
    `select` keeps rows as `glioscope.cohort.select` does, e.g. {"plane": ["axial"]}.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(path, "does not exist")
    if path.is_file() and nifti.is_nifti(path):
        rows, skipped = [_nifti_row(path, patient_from_file_name(path.name))], []
    else:
        volumes = [p for p in walk_files(path) if nifti.is_nifti(p)] if path.is_dir() else []
        volumes = [p for p in volumes if classify_file_name(p.name)[0] in ("image", "unknown")]  # not masks
        if volumes:
            rows, skipped = [_nifti_row(p, path.name) for p in volumes], []
        else:
            rows, skipped = dicom_rows(path, "a NIfTI file, a folder of NIfTI files or a DICOM series")
    frame = cohort.to_frame(rows)
    if select:
        frame = cohort.select(frame, select)
        if frame.empty:
            raise InputError(path, f"nothing matches {select}")
    patients = sorted(set(frame["patient_id"]))
    if len(patients) > 1:
        raise InputError(path, f"holds {len(patients)} patients ({', '.join(patients[:3])} ...); give one study")
    notes = []
    if len(frame) == 1 and len(settings.channels) == 1 and frame.loc[0, "sequence"] != settings.channels[0]:
        if frame.loc[0, "sequence"] != "unknown":
            notes.append(f"the one volume given, named {frame.loc[0, 'sequence']}, is used as {settings.channels[0]}")
        frame.loc[0, "sequence"] = settings.channels[0]  # the user pointed at it: it is the channel
    result = build_volumes(frame, settings, cache_dir=None, workers=1, progress=False)
    result.skipped[:0] = skipped
    result.notes[:0] = notes
    return result


def _nifti_row(path: Path, patient: str) -> dict:
    info = nifti.check_volume(path, check_data=False)
    if isinstance(info, cohort.Skip):
        raise InputError(path, info.reason)
    role, sequence, _ = classify_file_name(path.name)
    x, y, z = info["shape"]
    return {
        "patient_id": patient,
        "study_id": patient,
        "kind": "volume",
        "path": str(path),
        "sequence": sequence if role == "image" else "unknown",
        "plane": info["plane"],
        "n_slices": z,
        "rows": y,
        "cols": x,
        "source_format": "nifti",
    }
