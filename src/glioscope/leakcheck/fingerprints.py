"""The fingerprints of a set of samples: ids, patients and hashes (glioscope.leakcheck.hashes) as plain arrays.

Saved as a .npz of plain arrays (no pickle). A file made before the aligned hashes (a model
package exported by an earlier version) has only the perceptual hash: it still loads, and its
searches use that hash, with a note that says what it misses (`legacy`).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glioscope.errors import InputError
from glioscope.leakcheck.hashes import ALIGNED, HASH_WORDS, aligned_hashes, exact_hash, informative, perceptual_hash
from glioscope.util import atomic

_REQUIRED = ("ids", "patients", "exact", "perceptual", "informative")


@dataclass
class Fingerprints:
    """The hashes of every sample of a set, with its sample and patient ids (as given, or hashed)."""

    ids: np.ndarray  # sample ids
    patients: np.ndarray  # patient ids
    exact: np.ndarray  # SHA-256 digests, hex
    perceptual: np.ndarray  # (N, 4) uint64: the hash of earlier versions (for them, and for their files)
    informative: np.ndarray  # bool
    aligned: np.ndarray | None = None  # (N, 2, 4) uint64; None in a file made before the aligned hashes

    @property
    def legacy(self) -> bool:
        """Made before the aligned hashes: near duplicates are searched with the perceptual hash alone."""
        return self.aligned is None

    @classmethod
    def of(cls, samples) -> Fingerprints:
        arrays = samples.arrays
        return cls(
            samples.table[samples.id_column].astype(str).to_numpy(dtype=str),  # plain strings: saved without pickle
            samples.table["patient_id"].astype(str).to_numpy(dtype=str),
            np.array([exact_hash(a) for a in arrays], dtype="U64"),
            np.array([perceptual_hash(a) for a in arrays], dtype=np.uint64).reshape(len(arrays), HASH_WORDS),
            np.array([informative(a) for a in arrays], dtype=bool),
            np.array([aligned_hashes(a) for a in arrays], dtype=np.uint64).reshape(len(arrays), ALIGNED, HASH_WORDS),
        )

    @classmethod
    def of_vectors(cls, ids, patients, vectors: np.ndarray) -> Fingerprints:
        """Fingerprints of feature vectors (a radiomics run's, one per patient): they match only when identical
        (the same image and mask), so every hash is the digest's bits: 128 of 256 apart on average, and a near
        pair by chance would need 220 of them to agree."""
        digests = [exact_hash(np.round(np.asarray(v, np.float64), 9)) for v in vectors]
        words = np.array(
            [np.frombuffer(bytes.fromhex(d), dtype=">u8").astype(np.uint64) for d in digests], dtype=np.uint64
        ).reshape(len(digests), HASH_WORDS)
        return cls(
            np.asarray(ids, dtype=str),
            np.asarray(patients, dtype=str),
            np.array(digests, dtype="U64"),
            words,
            np.ones(len(digests), dtype=bool),
            np.repeat(words[:, None, :], ALIGNED, axis=1),
        )

    def save(self, path: Path) -> None:
        """As a .npz of plain arrays (no pickle), written atomically."""
        arrays = {k: getattr(self, k) for k in self.__dataclass_fields__ if getattr(self, k) is not None}
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load(cls, path: Path) -> Fingerprints:
        """A saved set, of this version or an earlier one; an InputError naming the file when it cannot be one."""
        try:
            with np.load(path, allow_pickle=False) as archive:
                missing = [k for k in _REQUIRED if k not in archive.files]
                if missing:
                    raise InputError(path, f"is not a fingerprints file: no {', '.join(missing)}")
                found = cls(
                    **{k: archive[k] for k in _REQUIRED},
                    aligned=archive["aligned"] if "aligned" in archive.files else None,
                )
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(path, f"cannot be read as fingerprints ({str(exc)[:200]})") from None
        found._check(path)
        return found

    def _check(self, path: Path) -> None:
        n = len(self.ids)
        shapes = [len(self.patients), len(self.exact), len(self.informative)]
        good = shapes == [n] * 3 and self.perceptual.shape == (n, HASH_WORDS) and self.perceptual.dtype == np.uint64
        if self.aligned is not None:
            good = good and self.aligned.shape == (n, ALIGNED, HASH_WORDS) and self.aligned.dtype == np.uint64
        if not good:
            raise InputError(path, "is not a fingerprints file: its arrays do not fit together")
