"""The per-volume cache: one .npz per volume and settings, named by what would change it.

    <cache_dir>/<VolumeSettings.key()>/settings.json       the settings, for a person
    <cache_dir>/<VolumeSettings.key()>/<volume key>.npz    one preprocessed volume
    <cache_dir>/<VolumeSettings.key()>/sets/               the volumes of a build as one memory-mapped
                                                           float16 array (glioscope.samples.consolidated)

An entry holds `volume`, float16 (C, D, H, W), and `meta`, a JSON text (how the skull was
handled, the foreground volume); a volume that cannot be used is cached as its skip reason
(`skip`), so it is not retried until its files change. The volume key hashes each source
file's path, size and mtime_ns (every slice file of a DICOM series), which file feeds which
channel, and the source format (which "auto" skull stripping consults): an edited file gets a
new key, stale entries are never read (delete the folder to reclaim the space). Computing a
key only stats files, so a cache hit opens no NIfTI or DICOM file. Entries are deflated (level
1: the zero background halves them) and written atomically (temporary file, then rename).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from glioscope.cohort import Skip, series_files
from glioscope.samples.volumes.settings import VolumeSettings
from glioscope.samples.consolidated import Layout
from glioscope.samples.entry_cache import read_npz, settings_folder, stamp, write_npz


def volume_key(sources, source_format: str) -> str:
    """Hash of the channels' files (path, size, mtime_ns), their sequences and the source format."""
    entries: list = [source_format]
    for source in sources:
        entries.append([source.kind, source.sequence])
        entries.extend(stamp(path) for path in series_files({"path": source.path, "files": source.files}))
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:24]


def folder(cache_dir: Path, settings: VolumeSettings) -> Path:
    """The cache folder of these settings, with settings.json written once."""
    return settings_folder(cache_dir, settings, "volume")


def load(path: Path) -> dict | Skip | None:
    """A cached volume {"volume", "meta"}, its cached Skip, or None when absent or unreadable."""
    return read_npz(path, lambda archive: {"volume": archive["volume"], "meta": json.loads(str(archive["meta"]))})


def save(path: Path, entry: dict | Skip) -> None:
    """Write one volume (or its Skip) atomically, deflated."""
    write_npz(path, entry, _pack, deflate=True)


def _pack(entry: dict) -> dict[str, np.ndarray]:
    return {"volume": np.asarray(entry["volume"], np.float16), "meta": np.array(json.dumps(entry["meta"]))}


# In the memory-mapped set of a build (glioscope.samples.consolidated): one row per volume, its meta as values.
LAYOUT = Layout(
    split=lambda entry: (np.asarray(entry["volume"], np.float16)[None], entry["meta"]),
    join=lambda rows, meta: {"volume": rows[0], "meta": meta},
)
