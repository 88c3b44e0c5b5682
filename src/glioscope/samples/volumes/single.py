"""The volume of one new study (glioscope.io.study.read_study) for `predict`, batch prediction and the web app."""

from __future__ import annotations

from pathlib import Path

from glioscope import cohort
from glioscope.errors import InputError
from glioscope.io.study import Study, read_study
from glioscope.samples.volumes.build import build_volumes
from glioscope.samples.volumes.settings import VolumeSettings
from glioscope.samples.volumes.volume_set import VolumeSet


def volume_of_study(study: Study, settings: VolumeSettings, select: dict[str, list[str]] | None = None) -> VolumeSet:
    """The one volume of a study's rows (a NIfTI file, one study's NIfTI files, a DICOM series or study), uncached.

    With one channel, a single file or series is used whatever its name says (a note says so when it
    names another sequence). `select` keeps rows as `glioscope.cohort.select` does, e.g. {"plane": ["axial"]}.
    """
    frame = study.frame
    if (frame["kind"] == "image").any():
        raise InputError(
            study.path,
            "is a 2D image: a 3D recipe takes a volume (a NIfTI file, a folder of one "
            "study's NIfTI files, or a DICOM series)",
        )
    if select:
        frame = cohort.select(frame, select)
        if frame.empty:
            raise InputError(study.path, f"nothing matches {select}")
    patients = sorted(set(frame["patient_id"]))
    if len(patients) > 1:
        raise InputError(study.path, f"holds {len(patients)} patients ({', '.join(patients[:3])} ...); give one study")
    notes = []
    if len(frame) == 1 and len(settings.channels) == 1 and frame.loc[0, "sequence"] != settings.channels[0]:
        if frame.loc[0, "sequence"] != "unknown":
            notes.append(f"the one volume given, named {frame.loc[0, 'sequence']}, is used as {settings.channels[0]}")
        frame.loc[0, "sequence"] = settings.channels[0]  # the user pointed at it: it is the channel
    result = build_volumes(frame, settings, cache_dir=None, workers=1, progress=False)
    result.skipped[:0] = study.skipped
    result.notes[:0] = notes
    return result


def volume_from_file(path: Path, settings: VolumeSettings, select: dict[str, list[str]] | None = None) -> VolumeSet:
    """The volume of a NIfTI file, a folder of one study's NIfTI files (a BraTS case), or a DICOM series or study."""
    return volume_of_study(read_study(path), settings, select)
