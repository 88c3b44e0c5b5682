"""Walking a source tree, and telling sidecar files (notes, indexes) from possible images."""

from __future__ import annotations

import os
from pathlib import Path

from glioscope.util.paths import inside

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


def walk_files(root: Path, within: Path | None = None) -> list[Path]:
    """Every file under `root` (or `root` itself), in a stable order, skipping hidden folders.

    Folder links are not followed, nor are file links that lead out of `within` (default:
    `root`); `outside_links` lists those, for the summary.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    boundary = Path(within or root)
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        paths = (Path(folder) / name for name in sorted(names))
        found.extend(p for p in paths if not p.is_symlink() or inside(p, boundary))
    return found


def outside_links(root: Path) -> list[Path]:
    """The links under `root` that lead out of it: files and folders that glioscope does not follow."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(dirs + names):
            path = Path(folder) / name
            if path.is_symlink() and not inside(path, root):
                found.append(path)
    return found
