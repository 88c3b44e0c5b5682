"""Images shared by two cohorts: exact duplicates, and near duplicates a patient can hide behind.

The public 2D MRI sets are unions of one another, and one patient can appear under two
ids, so a check by patient id is not enough. Every sample (a preprocessed slice, or a
volume) gets two fingerprints:

- exact: SHA-256 of its decoded, preprocessed array: identical images, whatever the file;
- perceptual: a 256-bit DCT hash (pHash: the signs of the 16 x 16 lowest frequencies of the
  sample downsampled to 32 x 32, against their median; a volume: its middle axial slice),
  which survives re-encoding, rescaling and mild noise. Two samples whose hashes differ in
  at most `NEAR_BITS` bits are near duplicates. Measured on the phantom: a copy with 10%
  more intensity and noise of 8 grey levels differs in 2-8 bits, the closest unrelated
  slices of two sites in 30-42. Samples with little content (under `MIN_CONTENT` of
  their pixels above a tenth of their maximum: slices past the head, blank images) look
  alike whatever their source and are left out of both searches.

    found = compare(training_samples, external_samples)
    found.exact, found.near        # [(training sample id, external sample id, ...)]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.fft import dctn

from glioscope.errors import InputError
from glioscope.rundir import COHORT, DUPLICATES, FINGERPRINTS, RunFolder
from glioscope.samples import build_samples
from glioscope.util import atomic

NEAR_BITS = 20  # of 256
MIN_CONTENT = 0.15
_SIDE, _LOW = 32, 16
_CHUNK = 1024


def exact_hash(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _image(array: np.ndarray) -> np.ndarray:
    """The first channel of a (C, H, W) slice, or the middle axial slice of a (C, D, H, W) volume."""
    image = np.asarray(array, np.float32)[0]
    return image[image.shape[0] // 2] if image.ndim == 3 else image


def perceptual_hash(array: np.ndarray) -> np.ndarray:
    """pHash of a slice or volume, 256 bits as four uint64 words."""
    low = dctn(_downsample(_image(array), _SIDE), norm="ortho")[:_LOW, :_LOW].ravel()[1:]  # no DC: brightness
    bits = np.append(low > np.median(low), False)
    return np.packbits(bits).view(">u8").astype(np.uint64)


def informative(array: np.ndarray) -> bool:
    """Whether a sample has enough content for its perceptual hash to say something."""
    image = _image(array)
    top = float(image.max())
    return top > 0 and float((image > 0.1 * top).mean()) >= MIN_CONTENT


def _downsample(image: np.ndarray, side: int) -> np.ndarray:
    rows = np.linspace(0, image.shape[0], side + 1).astype(int)
    cols = np.linspace(0, image.shape[1], side + 1).astype(int)
    cumulative = np.pad(image, ((1, 0), (1, 0))).cumsum(0).cumsum(1)  # box means from an integral image
    area = np.maximum(np.diff(rows)[:, None] * np.diff(cols)[None, :], 1)
    sums = (
        cumulative[np.ix_(rows[1:], cols[1:])]
        - cumulative[np.ix_(rows[:-1], cols[1:])]
        - cumulative[np.ix_(rows[1:], cols[:-1])]
        + cumulative[np.ix_(rows[:-1], cols[:-1])]
    )
    return sums / area


@dataclass
class Duplicates:
    """What two sample sets share: exact pairs and near pairs (first set's sample, second's, distance)."""

    exact: list[tuple[str, str]] = field(default_factory=list)
    near: list[tuple[str, str, int]] = field(default_factory=list)
    patients: list[tuple[str, str, int]] = field(default_factory=list)  # patient pairs with shared images, count

    def notes(self) -> list[str]:
        notes = []
        if self.exact:
            notes.append(f"{len(self.exact)} image(s) identical in both cohorts ({DUPLICATES})")
        if self.near:
            pairs = ", ".join(f"{a} ~ {b}" for a, b, _ in self.patients[:5])
            notes.append(
                f"warning: {len(self.near)} near-duplicate image pair(s) between the two cohorts "
                f"(at most {NEAR_BITS} of 256 hash bits apart; patients {pairs}; {DUPLICATES})"
            )
        return notes

    def frame(self) -> pd.DataFrame:
        rows = [{"kind": "exact", "first": a, "second": b, "distance": 0} for a, b in self.exact]
        rows += [{"kind": "near", "first": a, "second": b, "distance": d} for a, b, d in self.near]
        return pd.DataFrame(rows, columns=["kind", "first", "second", "distance"])


@dataclass
class Fingerprints:
    """The two hashes of every sample of a set, with its sample and patient ids (as given, or hashed)."""

    ids: np.ndarray  # sample ids
    patients: np.ndarray  # patient ids
    exact: np.ndarray  # SHA-256 digests, hex
    perceptual: np.ndarray  # (N, 4) uint64
    informative: np.ndarray  # bool

    @classmethod
    def of(cls, samples) -> "Fingerprints":
        arrays = samples.arrays
        return cls(
            samples.table[samples.id_column].astype(str).to_numpy(),
            samples.table["patient_id"].astype(str).to_numpy(),
            np.array([exact_hash(a) for a in arrays], dtype="U64"),
            np.array([perceptual_hash(a) for a in arrays], dtype=np.uint64).reshape(len(arrays), 4),
            np.array([informative(a) for a in arrays], dtype=bool),
        )

    def save(self, path: Path) -> None:
        """As a .npz of plain arrays (no pickle), written atomically."""
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **{k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: Path) -> "Fingerprints":
        with np.load(path, allow_pickle=False) as archive:
            return cls(**{k: archive[k] for k in cls.__dataclass_fields__})

    @classmethod
    def of_vectors(cls, ids, patients, vectors: np.ndarray) -> "Fingerprints":
        """Fingerprints of feature vectors (a radiomics run's, one per patient): they match only when identical
        (the same image and mask), so the perceptual hash is the digest's bits, 128 apart on average."""
        digests = [exact_hash(np.round(np.asarray(v, np.float64), 9)) for v in vectors]
        words = np.array(
            [np.frombuffer(bytes.fromhex(d), dtype=">u8").astype(np.uint64) for d in digests], dtype=np.uint64
        ).reshape(len(digests), 4)
        return cls(
            np.asarray(ids, dtype=str),
            np.asarray(patients, dtype=str),
            np.array(digests, dtype="U64"),
            words,
            np.ones(len(digests), dtype=bool),
        )


def folder_fingerprints(path: Path, data, progress: bool = True) -> Fingerprints | None:
    """The fingerprints of the images a run folder trained on, made from its cohort with `data` (DataSettings), or
    a model package's own; None when neither is available (the cohort's files are gone)."""
    folder = RunFolder(path)
    if (folder / FINGERPRINTS).is_file():
        return Fingerprints.load(folder / FINGERPRINTS)
    if not (folder / COHORT).is_file():
        return None
    try:
        return Fingerprints.of(build_samples(folder.cohort(), data, data.cache_dir(), progress))
    except InputError:
        return None


def compare(first, second, near_bits: int = NEAR_BITS) -> Duplicates:
    """The images two sample sets (SampleSets, or their Fingerprints) share, by exact and perceptual hash."""
    a = first if isinstance(first, Fingerprints) else Fingerprints.of(first)
    b = second if isinstance(second, Fingerprints) else Fingerprints.of(second)
    where = {}
    for index, digest in enumerate(a.exact):
        if a.informative[index]:
            where.setdefault(digest, index)
    found = Duplicates()
    pairs: list[tuple[int, int]] = []
    for j, digest in enumerate(b.exact):
        if b.informative[j] and digest in where:
            found.exact.append((a.ids[where[digest]], b.ids[j]))
            pairs.append((where[digest], j))
    exact_pairs = set(pairs)
    rows_a, rows_b = np.flatnonzero(a.informative), np.flatnonzero(b.informative)
    for start_a in range(0, len(rows_a), _CHUNK):  # all informative pairs, in blocks: XOR and a bit count
        for start_b in range(0, len(rows_b), _CHUNK):
            block_a, block_b = rows_a[start_a : start_a + _CHUNK], rows_b[start_b : start_b + _CHUNK]
            distance = np.bitwise_count(a.perceptual[block_a, None, :] ^ b.perceptual[None, block_b, :]).sum(-1)
            for i, j in zip(*np.nonzero(distance <= near_bits)):
                x, y = int(block_a[i]), int(block_b[j])
                if (x, y) not in exact_pairs:
                    found.near.append((a.ids[x], b.ids[y], int(distance[i, j])))
                    pairs.append((x, y))
    counted = pd.Series([(str(a.patients[x]), str(b.patients[y])) for x, y in pairs], dtype=object)
    found.patients = [(p, q, int(n)) for (p, q), n in counted.value_counts().items()] if len(counted) else []
    found.exact = [(str(x), str(y)) for x, y in found.exact]
    found.near = [(str(x), str(y), d) for x, y, d in found.near]
    return found


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
