"""What a pretrained weights file was trained on, written inside it and beside it, and read back.

    OUT/weights.pt    {"state_dict": torchvision-named tensors, "provenance": plain values,
                       "fingerprints": the pretraining images' hashes and hashed patient ids}
    OUT/weights.json  the provenance alone, for a person to read

Everything is tensors and plain values (torch.load weights_only=True reads it; nothing is
unpickled). Patient ids are stored hashed (glioscope.rundir.hash_patient: SHA-256 of a fixed
prefix and the id, without the salt and slow hash of a model package's): a weights file can be
shared without naming anyone, and a run can still tell whether its own patients were among
those pretrained on, though an id of a known format can be confirmed by trying it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from glioscope.util import atomic

FORMAT = "glioscope-pretrained-weights"
WEIGHTS, PROVENANCE = "weights.pt", "weights.json"
_HEAVY = ("fingerprints",)


def summary(provenance: dict) -> str:
    """ "pretrained on <sources>, <n> patients, <n> images, <epochs> epochs, <method>", in one line."""
    parts = []
    for source in provenance.get("sources", []):
        inner = ", ".join(source.get("sources") or []) or ", ".join(source.get("formats") or [])
        parts.append(source["cohort"] + (f" ({inner})" if inner else ""))
    patients = f"{provenance.get('patients')} patients"
    if not provenance.get("patient_ids", True):
        patients += " (no patient ids: each image counted as its own patient)"
    method = provenance.get("method", "?")
    if method == "supervised" and provenance.get("classes"):
        method += f" ({len(provenance['classes'])} classes: {', '.join(provenance['classes'])})"
    epochs = provenance.get("epochs")
    return (
        f"pretrained on {' + '.join(parts) or 'unknown data'}, {patients}, {provenance.get('images')} images, "
        f"{epochs} epoch{'s' if epochs != 1 else ''}, {method}; {provenance.get('architecture')}"
    )


def pack_fingerprints(found) -> dict:
    """leakcheck.Fingerprints as plain values and tensors (patient ids hashed)."""
    from glioscope.rundir import hash_patient

    packed = {
        "patients": [hash_patient(p) for p in found.patients.tolist()],
        "exact": [str(h) for h in found.exact.tolist()],
        "perceptual": torch.from_numpy(found.perceptual.view(np.int64).copy()),
        "informative": torch.from_numpy(found.informative.copy()),
    }
    if found.aligned is not None:
        packed["aligned"] = torch.from_numpy(found.aligned.view(np.int64).copy())
    return packed


def unpack_fingerprints(packed: dict):
    """leakcheck.Fingerprints of the pretraining images (sample ids: "pretraining image <k>"); a weights file made
    before the aligned hashes gives fingerprints searched with the perceptual hash alone (they say so)."""
    from glioscope.leakcheck import Fingerprints

    n = len(packed["exact"])
    aligned = packed.get("aligned")
    return Fingerprints(
        np.array([f"pretraining image {k}" for k in range(n)]),
        np.array(packed["patients"]),
        np.array(packed["exact"], dtype="U64"),
        packed["perceptual"].numpy().view(np.uint64).reshape(n, 4),
        packed["informative"].numpy().astype(bool),
        None if aligned is None else aligned.numpy().view(np.uint64).reshape(n, 2, 4),
    )


def write(out: Path, state: dict, provenance: dict, fingerprints: dict) -> Path:
    """OUT/weights.pt (atomically: a kill leaves no partial file) and OUT/weights.json."""
    from glioscope.train.checkpoint import save_checkpoint

    path = Path(out) / WEIGHTS
    save_checkpoint(path, state_dict=state, provenance={"format": FORMAT, **provenance}, fingerprints=fingerprints)
    atomic.write_json(Path(out) / PROVENANCE, {"format": FORMAT, **provenance})
    return path


def read(weights: str | Path | None) -> dict | None:
    """The provenance of a weights file (and its fingerprints, key "fingerprints"); None when it has none.

    None too for named weights ("imagenet") and for plain state dicts.
    """
    path = resolve(weights)
    if path is None:
        return None
    from glioscope.util.tensors import load_tensors

    try:
        content = load_tensors(path)
    except Exception:  # not ours to judge here: building the model reports a bad file
        return None
    if not isinstance(content, dict) or not isinstance(content.get("provenance"), dict):
        return None
    if content["provenance"].get("format") != FORMAT:
        return None
    return {**content["provenance"], "fingerprints": content.get("fingerprints")}


def resolve(weights: str | Path | None) -> Path | None:
    if weights is None or str(weights).lower() in ("imagenet", "kinetics", "kinetics400", "none", "scratch", ""):
        return None
    path = Path(weights)
    return path if path.is_file() else None


def record(spec) -> dict | None:
    """What run.json says of a recipe's model section's weights: none, a name (and whether it was on disk), or the
    file and what it was pretrained on."""
    weights = spec.weights
    if weights is None:
        return None
    if str(weights).lower() in ("imagenet", "kinetics", "kinetics400"):
        on_disk = _named_on_disk(spec)
        if on_disk is False:
            return {
                "source": str(weights),
                "on_disk": False,
                "summary": "not on disk: trained from scratch (see the notes)",
            }
        return {"source": str(weights), "on_disk": on_disk}
    provenance = read(weights)
    if provenance is None:
        return {"source": str(weights)}
    light = {k: v for k, v in provenance.items() if k not in _HEAVY}
    return {"source": str(weights), "summary": summary(light), "pretrained": light}


def _named_on_disk(spec) -> bool | None:
    from glioscope.models import model_entry
    from glioscope.models.weights import WeightsUnavailable, named_file

    try:
        arch = (spec.backbone or "alexnet") if model_entry(spec.name).variant == "synergic" else spec.name
        return named_file(str(spec.weights), arch).is_file()
    except WeightsUnavailable:  # from a package that is not installed
        return False
    except Exception:  # neither torchvision's nor a package's: its builder knows
        return None


def read_json(folder: Path) -> dict:
    """OUT/weights.json of a pretraining folder."""
    return json.loads((Path(folder) / PROVENANCE).read_text(encoding="utf-8"))
