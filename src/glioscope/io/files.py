"""Walking a source tree, and telling sidecar files (notes, indexes) from possible images."""

from __future__ import annotations

import os
from pathlib import Path

# Files that sit beside images in TCIA/PACS exports and are never images: readers
# ignore them without a skip entry (they are counted in a note). Anything else that
# cannot be read is listed as skipped: it may be an image the user expected to see.
# fmt: off
SIDECAR_SUFFIXES = {
    ".txt", ".csv", ".tsv", ".xml", ".json", ".md", ".html", ".htm", ".pdf", ".log", ".xls", ".xlsx",
    ".ini", ".cfg", ".yaml", ".yml", ".sh", ".bat", ".py", ".db", ".lic", ".license", ".sha1", ".md5",
}
# fmt: on
SIDECAR_NAMES = {"dicomdir", "thumbs.db", "license", "readme", "desktop.ini", "manifest", "version"}


def is_sidecar(path: Path) -> bool:
    """True for hidden files, indexes (DICOMDIR) and text/metadata files beside images."""
    name = path.name.lower()
    return name.startswith(".") or name in SIDECAR_NAMES or path.suffix.lower() in SIDECAR_SUFFIXES


def walk_files(root: Path) -> list[Path]:
    """Every file under `root` (or `root` itself), in a stable order, skipping hidden folders."""
    root = Path(root)
    if root.is_file():
        return [root]
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(folder) / name for name in sorted(names))
    return found
