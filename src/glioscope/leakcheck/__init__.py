"""Images shared by two cohorts: exact duplicates, and near duplicates a patient can hide behind.

The public 2D MRI sets are unions of one another, and one patient can appear under two
ids, so a check by patient id is not enough. Every sample (a preprocessed slice, or a
volume's middle axial slice) gets its fingerprints (glioscope.leakcheck.hashes):

- exact: SHA-256 of its decoded, preprocessed array: identical images, whatever the file;
- aligned: two 256-bit DCT sign hashes of the image with its background level taken off,
  centred on its foreground and turned upright or with its long axis vertical; two samples whose
  hashes (the closer of the two, the second one mirrored left-right, up-down or both if that
  brings it closer) differ in at most `NEAR_BITS` bits are near duplicates. Measured on real
  slices (benchmarks/leakcheck_recall.py, docs/test.md): a copy shifted by a few pixels, mirrored,
  turned by a few degrees, brighter, of other contrast, re-encoded as JPEG or resized is found,
  and slices of different patients or 10 slices apart are not.

Samples with little content (under `MIN_CONTENT` of their pixels above a tenth of their
maximum: slices past the head, blank images) look alike whatever their source and are left
out of both searches. Fingerprints made before the aligned hashes (a package exported by an
earlier version) are searched with their perceptual hash alone, and the result says so.

    found = compare(training_samples, external_samples)
    found.exact, found.near        # [(training sample id, external sample id, ...)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope.errors import InputError
from glioscope.leakcheck.fingerprints import Fingerprints
from glioscope.leakcheck.hashes import (
    LEGACY_NEAR_BITS,
    MIN_CONTENT,
    NEAR_BITS,
    aligned_distances,
    aligned_hashes,
    exact_hash,
    informative,
    legacy_distances,
    perceptual_hash,
)
from glioscope.rundir import COHORT, DUPLICATES, FINGERPRINTS, RunFolder
from glioscope.samples import build_samples

__all__ = [
    "LEGACY_NEAR_BITS",
    "LEGACY_NOTE",
    "MIN_CONTENT",
    "NEAR_BITS",
    "NOT_CHECKED",
    "NOT_STORED",
    "SEEN_BY_ID",
    "SEEN_BY_PIXELS",
    "Duplicates",
    "Fingerprints",
    "aligned_hashes",
    "check_cohorts",
    "compare",
    "exact_hash",
    "folder_fingerprints",
    "informative",
    "perceptual_hash",
    "stored_fingerprints",
    "training_matches",
]

_CHUNK = 1024
LEGACY_NOTE = (
    "fingerprints made by an earlier version of glioscope (before the aligned hash) were compared: near "
    "duplicates were looked for with their perceptual hash alone, which misses copies shifted by a few pixels, "
    "mirrored or turned by a few degrees; export the package (or pretrain) again to look for those"
)
NOT_CHECKED = (
    "Duplicate images were NOT checked: the images the run trained on are not available (a package exported "
    "without their fingerprints, or a run folder whose cohort files are gone), so an image identical or "
    "near-identical to a training image, under another patient id, would not have been found"
)

SEEN_BY_ID = "its patient id is in the training cohort"
SEEN_BY_PIXELS = "its pixels match a training image"
NOT_STORED = (
    "the run keeps no fingerprints of its training images (trained, or exported, by an earlier version of "
    "glioscope, or exported without them): seen_in_training is by patient id only, and an image copied from "
    "the training cohort under another id would not be recognised"
)


@dataclass
class Duplicates:
    """What two sample sets share: exact pairs and near pairs (first set's sample, second's, distance)."""

    exact: list[tuple[str, str]] = field(default_factory=list)
    near: list[tuple[str, str, int]] = field(default_factory=list)
    patients: list[tuple[str, str, int]] = field(default_factory=list)  # patient pairs with shared images, count
    legacy: bool = False  # searched with the perceptual hash of earlier fingerprints (see LEGACY_NOTE)

    @property
    def near_bits(self) -> int:
        return LEGACY_NEAR_BITS if self.legacy else NEAR_BITS

    def notes(self) -> list[str]:
        notes = []
        if self.exact:
            notes.append(f"{len(self.exact)} image(s) identical in both cohorts ({DUPLICATES})")
        if self.near:
            pairs = ", ".join(f"{a} ~ {b}" for a, b, _ in self.patients[:5])
            notes.append(
                f"warning: {len(self.near)} near-duplicate image pair(s) between the two cohorts "
                f"({self.words()}; patients {pairs}; {DUPLICATES})"
            )
        if self.legacy:
            notes.append(LEGACY_NOTE)
        return notes

    def words(self) -> str:
        """How near a near pair is, in words."""
        if self.legacy:
            return f"at most {LEGACY_NEAR_BITS} of 256 perceptual hash bits apart"
        return f"at most {NEAR_BITS} of 256 aligned hash bits apart, mirrored copies included"

    def frame(self) -> pd.DataFrame:
        rows = [{"kind": "exact", "first": a, "second": b, "distance": 0} for a, b in self.exact]
        rows += [{"kind": "near", "first": a, "second": b, "distance": d} for a, b, d in self.near]
        return pd.DataFrame(rows, columns=["kind", "first", "second", "distance"])


def stored_fingerprints(path: Path) -> Fingerprints | None:
    """The fingerprints a run folder (written at the end of training) or model package keeps; None without."""
    stored = RunFolder(path) / FINGERPRINTS
    return Fingerprints.load(stored) if stored.is_file() else None


def folder_fingerprints(path: Path, data, progress: bool = True) -> Fingerprints | None:
    """The fingerprints of the images a run folder trained on (those it stored, or made from its cohort with `data`,
    DataSettings), or a model package's own; None when neither is available (the cohort's files are gone)."""
    folder = RunFolder(path)
    stored = stored_fingerprints(path)
    if stored is not None and not (stored.legacy and (folder / COHORT).is_file()):
        return stored
    if not (folder / COHORT).is_file():
        return stored
    try:
        return Fingerprints.of(build_samples(folder.cohort(), data, data.cache_dir(), progress))
    except InputError:
        return stored


def compare(first, second, near_bits: int | None = None) -> Duplicates:
    """The images two sample sets (SampleSets, or their Fingerprints) share, by exact and aligned hash (the
    perceptual hash when either set's fingerprints are of an earlier version)."""
    a = first if isinstance(first, Fingerprints) else Fingerprints.of(first)
    b = second if isinstance(second, Fingerprints) else Fingerprints.of(second)
    found = Duplicates(legacy=a.legacy or b.legacy)
    limit = found.near_bits if near_bits is None else near_bits
    where = {}
    for index, digest in enumerate(a.exact):
        if a.informative[index]:
            where.setdefault(digest, index)
    pairs: list[tuple[int, int]] = []
    for j, digest in enumerate(b.exact):
        if b.informative[j] and digest in where:
            found.exact.append((a.ids[where[digest]], b.ids[j]))
            pairs.append((where[digest], j))
    exact_pairs = set(pairs)
    rows_a, rows_b = np.flatnonzero(a.informative), np.flatnonzero(b.informative)
    for start_a in range(0, len(rows_a), _CHUNK):  # all informative pairs, in blocks: XOR and bit counts
        for start_b in range(0, len(rows_b), _CHUNK):
            block_a, block_b = rows_a[start_a : start_a + _CHUNK], rows_b[start_b : start_b + _CHUNK]
            if found.legacy:
                distance = legacy_distances(a.perceptual[block_a], b.perceptual[block_b])
            else:
                distance = aligned_distances(a.aligned[block_a], b.aligned[block_b])
            for i, j in zip(*np.nonzero(distance <= limit)):
                x, y = int(block_a[i]), int(block_b[j])
                if (x, y) not in exact_pairs:
                    found.near.append((a.ids[x], b.ids[y], int(distance[i, j])))
                    pairs.append((x, y))
    counted = pd.Series([(str(a.patients[x]), str(b.patients[y])) for x, y in pairs], dtype=object)
    found.patients = [(p, q, int(n)) for (p, q), n in counted.value_counts().items()] if len(counted) else []
    found.exact = [(str(x), str(y)) for x, y in found.exact]
    found.near = [(str(x), str(y), d) for x, y, d in found.near]
    return found


def training_matches(
    folder: Path, new: Fingerprints | None, paths: list[str] | None = None
) -> tuple[dict[str, list[dict]], list[str]]:
    """The patients of `new` (fingerprints of new inputs) with an image identical or near-identical to one whose
    fingerprints a run folder or model package stores: {patient: [match, ...]} (closest first), and notes.

    `paths`: each new sample's input file, in `new`'s order, named in the matches. No stored fingerprints: no
    match, and a note.
    """
    if new is None:  # a method that reads no image
        return {}, []
    training = stored_fingerprints(folder)
    if training is None:
        return {}, [NOT_STORED]
    found = compare(training, new)
    patient_of = dict(zip(map(str, new.ids), map(str, new.patients)))
    path_of = dict(zip(map(str, new.ids), paths)) if paths is not None and len(paths) == len(new.ids) else {}
    pairs = [(a, b, "identical", 0) for a, b in found.exact] + [(a, b, "near-identical", d) for a, b, d in found.near]
    seen: dict[str, list[dict]] = {}
    for a, b, kind, bits in sorted(pairs, key=lambda pair: pair[3]):
        match = {"sample": b, "training_image": a, "match": kind, "bits_apart": bits}
        if b in path_of:
            match["input"] = path_of[b]
        seen.setdefault(patient_of[b], []).append(match)
    return seen, [LEGACY_NOTE] if found.legacy else []


def check_cohorts(first_path: Path, second_path: Path, recipe: str = "base") -> tuple[Duplicates, list[str]]:
    """The images (made with `recipe`'s data settings) and the patient ids two cohort folders share."""
    from glioscope import cohort, split
    from glioscope.errors import PatientLeakError
    from glioscope.recipe import load_recipe

    data = load_recipe(recipe).data
    frames = [cohort.load(path) for path in (first_path, second_path)]
    try:
        split.assert_disjoint({str(first_path): frames[0], str(second_path): frames[1]})
        shared = []
    except PatientLeakError:
        shared = sorted(set(frames[0]["patient_id"]) & set(frames[1]["patient_id"]))
    sets = [build_samples(frame, data, data.cache_dir(), progress=True) for frame in frames]
    return compare(*sets), shared
