"""Leak checks of pretraining, in both directions.

- At pretraining (`glioscope pretrain --exclude COHORT_OR_RUN`): the pretraining cohorts may
  not hold a patient of an excluded cohort, run or model package (by id: refused); images
  identical or near-identical to theirs (glioscope.leakcheck's hashes) are a warning.
- At training (the runner, whenever model.weights is a pretraining output): the patients
  the run evaluates or validates on may not be among those pretrained on (by hashed id:
  refused); pretraining images identical or near-identical to the run's are a warning.

A refusal is a PatientLeakError (exit status 2) that names the shared patients.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from glioscope import cohort, leakcheck
from glioscope.errors import InputError, PatientLeakError
from glioscope.pretrain import provenance
from glioscope.rundir import (
    COHORT,
    CONFIG,
    FINGERPRINTS,
    MANIFEST,
    PATIENT_DIGESTS,
    PATIENT_HASHES,
    RunFolder,
    hash_patient,
)
from glioscope.samples import build_samples


def _named(ids, shown: int = 10) -> str:
    ids = sorted(map(str, ids))
    return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def _excluded_patients(path: Path, ids: set[str]) -> set[str]:
    """The `ids` that an excluded cohort folder, run folder or model package holds."""
    path = Path(path)
    package = any((path / name).is_file() for name in (PATIENT_DIGESTS, PATIENT_HASHES, MANIFEST))
    if (path / COHORT).is_file() and (path / CONFIG).is_file() or package:
        seen = RunFolder(path).seen_patients(ids)
        if seen is None:
            raise InputError(
                path,
                "--exclude: this model package holds no patient ids (exported with --no-patient-ids), so the "
                "pretraining patients cannot be checked against it; exclude the cohort it was trained on instead",
            )
        return seen
    return ids & set(cohort.load(path)["patient_id"].astype(str))


def _excluded_fingerprints(path: Path, data, progress: bool):
    path = Path(path)
    if (path / FINGERPRINTS).is_file() or ((path / COHORT).is_file() and (path / CONFIG).is_file()):
        return leakcheck.folder_fingerprints(path, data, progress)
    try:
        return leakcheck.Fingerprints.of(build_samples(cohort.load(path), data, data.cache_dir(), progress))
    except InputError:
        return None


def check_patients(ids: set[str], excludes: list[Path]) -> None:
    """Refuse pretraining patients (`ids`) that an excluded cohort, run folder or model package holds."""
    for path in map(Path, excludes):
        if not path.exists():
            raise InputError(path, "--exclude: no such cohort, run folder or model package")
        shared = _excluded_patients(path, ids)
        if shared:
            raise PatientLeakError(
                f"patient leak: {len(shared)} patient(s) of the pretraining data are in the excluded "
                f"{path}: {_named(shared)}; pretrain on cohorts without them (ingest --select, or "
                "another cohort)"
            )


def check_images(fingerprints, excludes: list[Path], data, progress: bool = True) -> tuple[list[str], list[dict]]:
    """Warnings for pretraining images identical or near-identical to an excluded one's; (notes, what was checked)."""
    notes, checked = [], []
    for path in map(Path, excludes):
        theirs = _excluded_fingerprints(path, data, progress)
        entry = {"excluded": path.name, "shared_patients": 0, "identical_images": None, "near_identical_images": None}
        if theirs is not None:
            found = leakcheck.compare(fingerprints, theirs)
            entry.update(identical_images=len(found.exact), near_identical_images=len(found.near))
            notes += _image_warnings(found, f"the excluded {path.name}")
        else:
            notes.append(f"the images of the excluded {path.name} could not be read: checked by patient id only")
        checked.append(entry)
    return notes, checked


def _image_warnings(found, other: str) -> list[str]:
    notes = []
    if found.exact:
        notes.append(
            f"warning: {len(found.exact)} pretraining image(s) identical to images of {other} "
            f"(e.g. {found.exact[0][1]})"
        )
    if found.near:
        notes.append(
            f"warning: {len(found.near)} pretraining image(s) near-identical to images of {other} "
            f"({found.words()}; e.g. {found.near[0][1]})"
        )
    for note in notes:
        warnings.warn(note[len("warning: ") :], stacklevel=3)
    if found.legacy:
        notes.append(leakcheck.LEGACY_NOTE)
    return notes


def check_run(weights: str | None, jobs, samples) -> list[str]:
    """The training-time check of a run whose model.weights is a pretraining output; notes for run.json.

    `jobs`: the run's plan (glioscope.plan.Job); `samples`: its SampleSet.
    """
    found = provenance.read(weights)
    if found is None or not found.get("fingerprints"):
        return []
    packed = found["fingerprints"]
    pretrained = set(packed["patients"])
    frames = [
        f for job in jobs for f in [*job.evaluate.values(), *([job.validation] if job.validation is not None else [])]
    ]
    held_out = set().union(*(set(frame["patient_id"].astype(str)) for frame in frames))
    shared = {p for p in held_out if hash_patient(p) in pretrained}
    if shared:
        raise PatientLeakError(
            f"patient leak: model.weights {weights} was pretrained on {len(shared)} patient(s) "
            f"this run evaluates or validates on: {_named(shared)}; pretrain again with "
            "--exclude <this cohort>, or use other weights"
        )
    if samples.kind != "slices" or not frames:
        return []
    mask = samples.mask(pd.concat(frames, ignore_index=True))
    held = SimpleNamespace(arrays=samples.arrays[mask], table=samples.table[mask], id_column=samples.id_column)
    duplicates = leakcheck.compare(provenance.unpack_fingerprints(packed), leakcheck.Fingerprints.of(held))
    return _image_warnings(duplicates, "the patients this run evaluates")
