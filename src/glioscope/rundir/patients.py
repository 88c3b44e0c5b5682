"""Patient ids as a model package stores them: salted per package and hashed slowly, so that they cannot be read back.

    digests = PatientDigests.new()                 # a fresh random salt, the default scrypt parameters
    stored = digests.of(["TCGA-02-0001", ...])     # {id: hex digest}
    digests.write(path, stored.values())           # the digests, the salt and the parameters (JSON)
    PatientDigests.read(path).seen(ids)            # the given ids that are among those stored

The hash is scrypt (hashlib) of a fixed prefix and the id, with a random salt of the package:
the same id gives another digest in every package, and a table of digests made for one package
is of no use for another. It is deliberately slow, yet anyone who holds a package can still
confirm an id they can guess by trying it, and ids of a known format can be tried one by one.
Packages exported before the salt (patients.sha256, SHA-256 of the prefix and the id) are read
through `hash_patient`; pretrained weights files (glioscope.pretrain.provenance) keep that unsalted
hash.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from glioscope.errors import InputError
from glioscope.util import atomic

FORMAT = "glioscope hashed patient ids 1"
PREFIX = "glioscope-patient:"
# scrypt's cost: 4 MiB of memory and about 7 ms per id on one 2020s CPU core, so that an export of a few hundred
# patients and a batch prediction of as many stay within about two seconds; n = 2**14 would take 30 ms per id.
DEFAULT = {"n": 2**12, "r": 8, "p": 1, "dklen": 32}
# The most a package may ask for (the file is read before anyone decides to trust it): 128 MiB of memory per id.
_LIMITS = {"n": (2, 2**17), "r": (1, 8), "p": (1, 4), "dklen": (16, 64)}


def hash_patient(patient_id: str) -> str:
    """A patient id hashed without salt: SHA-256 of a fixed prefix and the id (pretrained weights files, and
    packages exported before patients.json)."""
    return hashlib.sha256(f"{PREFIX}{patient_id}".encode()).hexdigest()


@dataclass(frozen=True)
class PatientDigests:
    """A package's salt and scrypt parameters (see the module docstring)."""

    salt: bytes
    n: int = DEFAULT["n"]
    r: int = DEFAULT["r"]
    p: int = DEFAULT["p"]
    dklen: int = DEFAULT["dklen"]
    stored: frozenset[str] = frozenset()

    @classmethod
    def new(cls) -> PatientDigests:
        return cls(secrets.token_bytes(16))

    def digest(self, patient_id: str) -> str:
        key = f"{PREFIX}{patient_id}".encode()
        return hashlib.scrypt(key, salt=self.salt, n=self.n, r=self.r, p=self.p, dklen=self.dklen).hex()

    def of(self, patient_ids) -> dict[str, str]:
        """Every distinct id's digest."""
        return {i: self.digest(i) for i in dict.fromkeys(map(str, patient_ids))}

    def parameters(self) -> dict:
        """The hash and its cost, for a person (the model card) and a program (metadata.json); not the salt."""
        return {"hash": "scrypt", "n": self.n, "r": self.r, "p": self.p, "dklen": self.dklen}

    def write(self, path: Path, digests) -> None:
        """The digests (sorted: their order says nothing of the ids'), the salt and the parameters, as JSON."""
        atomic.write_json(
            path,
            {
                "format": FORMAT,
                **self.parameters(),
                "input": f"{PREFIX}<patient id>",
                "salt": self.salt.hex(),
                "patients": sorted(set(digests)),
            },
        )

    @classmethod
    def read(cls, path: Path) -> PatientDigests:
        """The digests a package stores; an InputError naming the file for anything else."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("hash") != "scrypt":
                raise ValueError(f"not {FORMAT!r} with scrypt")
            params = {k: int(data[k]) for k in DEFAULT}
            made = cls(bytes.fromhex(data["salt"]), stored=frozenset(map(str, data["patients"])), **params)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InputError(path, f"cannot be read as a package's hashed patient ids ({exc})") from None
        if any(not low <= params[k] <= high for k, (low, high) in _LIMITS.items()) or params["n"] & (params["n"] - 1):
            raise InputError(path, f"asks for scrypt parameters {params} outside what glioscope allows ({_LIMITS})")
        return made

    def seen(self, patient_ids) -> set[str]:
        """The given ids whose digest is stored."""
        return {i for i, d in self.of(patient_ids).items() if d in self.stored}
