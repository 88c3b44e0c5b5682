"""A model package's manifest: the SHA-256 and size of every other file, written at export and checked on opening.

    write_manifest(tmp)                      # the last step of an export
    notes = check_package(folder, accept)    # [] for an intact package or a run folder; an InputError naming
                                             # what differs, is missing or is extra (accept: notes instead)

A package is a folder with a manifest, or whose run.json has a "package" block; one of the latter
without a manifest was exported before manifests existed (or lost it) and cannot be checked. The
manifest detects a package changed by accident or by hand after export: a file edited, replaced,
removed or added. It is not a signature: whoever rewrites a file and the manifest together is not
detected, which is why opening a package also checks its files against one another
(glioscope.methods: the weights against run.json and config.yaml, metadata.json against both).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from glioscope.errors import InputError
from glioscope.rundir.folder import MANIFEST, RunFolder
from glioscope.util import atomic

FORMAT = "glioscope package manifest 1"
ACCEPT_OPTION = "--accept-altered-package"
STAMPS = ("ALTERED PACKAGE", "UNCHECKED PACKAGE")  # how the note of a package used anyway begins
_CHUNK = 1 << 20


def _entries(root: Path) -> dict[str, os.stat_result]:
    """Every entry below `root` but the manifest and folders, by relative POSIX path, not following links."""
    found = {}
    for top, folders, files in os.walk(root):
        for name in files + [f for f in folders if os.path.islink(os.path.join(top, f))]:
            path = Path(top, name)
            found[path.relative_to(root).as_posix()] = path.lstat()
    found.pop(MANIFEST, None)
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(root: str | Path) -> dict:
    """ROOT/manifest.json of every plain file below ROOT; returns its mapping."""
    root = Path(root)
    files = {}
    for name, info in sorted(_entries(root).items()):
        if not stat.S_ISREG(info.st_mode):
            raise InputError(root / name, "is not a plain file: a model package holds plain files only")
        files[name] = {"sha256": _sha256(root / name), "size": info.st_size}
    manifest = {"format": FORMAT, "algorithm": "sha256", "files": files}
    atomic.write_json(root / MANIFEST, manifest)
    return manifest


def _expected(path: Path) -> dict[str, dict] | str:
    """The manifest's files, or why it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        if data.get("format") != FORMAT or not isinstance(files, dict):
            raise ValueError(f"not a {FORMAT!r}")
        for entry in files.values():
            if not (isinstance(entry.get("sha256"), str) and isinstance(entry.get("size"), int)):
                raise ValueError("an entry without sha256 and size")
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        return f"{MANIFEST} cannot be read ({exc})"
    return files


def differences(root: str | Path) -> list[str]:
    """What differs between the files below ROOT and its manifest: "NAME differs", "NAME missing", "NAME extra"."""
    root = Path(root)
    expected = _expected(root / MANIFEST)
    if isinstance(expected, str):
        return [expected]
    found = _entries(root)
    differ = []
    for name in sorted(expected.keys() & found.keys()):
        info, entry = found[name], expected[name]
        # the size first: a file of another size is not read
        if not stat.S_ISREG(info.st_mode) or info.st_size != entry["size"] or _sha256(root / name) != entry["sha256"]:
            differ.append(f"{name} differs")
    return (
        differ
        + [f"{name} missing" for name in sorted(expected.keys() - found.keys())]
        + [f"{name} extra" for name in sorted(found.keys() - expected.keys())]
    )


def check_package(folder: RunFolder, accept: bool = False) -> list[str]:
    """Nothing for a run folder or an intact package; else an InputError, or with `accept` the note every output of
    the package must carry."""
    if (folder / MANIFEST).is_file():
        problems = differences(folder.path)
        if not problems:
            return []
        label, what = STAMPS[0], f"altered since export: {', '.join(problems)}"
    elif folder.record().package is not None:
        label = STAMPS[1]
        what = (
            f"has no {MANIFEST}: it was exported before glioscope wrote one (or it was removed), so nothing "
            "tells whether its files are those exported"
        )
    else:
        return []
    if not accept:
        raise InputError(
            folder.path,
            f"{what}; export it again from its run (glioscope export), or pass {ACCEPT_OPTION} to use it anyway",
        )
    return [f"{label}: {folder.path} {what}; used anyway ({ACCEPT_OPTION}): results may not be the exported model's"]


def stamp(root: str | Path) -> tuple:
    """Every entry below ROOT with its size and modification time: a key that changes when any file does."""
    root = Path(root)
    entries = _entries(root)
    if (root / MANIFEST).exists():
        entries[MANIFEST] = (root / MANIFEST).lstat()
    return tuple((name, info.st_size, info.st_mtime_ns) for name, info in sorted(entries.items()))
