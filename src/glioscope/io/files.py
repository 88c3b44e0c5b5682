"""Walking a source tree, and telling sidecar files (notes, indexes) from possible images."""

from __future__ import annotations

import os
import stat
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


SPECIAL = "not a regular file (a FIFO, socket or device): not read, since reading it could wait forever"


def is_special(path: Path) -> bool:
    """True for what exists but is neither a regular file nor a folder (a FIFO, a socket, a device), links followed."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def special_files(root: Path) -> list[Path]:
    """The FIFOs, sockets and devices under `root` (or `root` itself): walk_files leaves them out."""
    root = Path(root)
    if not root.is_dir():
        return [root] if is_special(root) else []
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(p for p in (Path(folder) / name for name in sorted(names)) if is_special(p))
    return found


def walk_files(root: Path, within: Path | None = None) -> list[Path]:
    """Every file under `root` (or `root` itself), in a stable order, skipping hidden folders.

    Folder links are not followed, nor are file links that lead out of `within` (default:
    `root`); `outside_links` lists those, for the summary. FIFOs, sockets and devices are left out
    (`special_files` lists them): opening one could block.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if is_special(root):
        return []
    boundary = Path(within or root)
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        paths = (Path(folder) / name for name in sorted(names))
        found.extend(p for p in paths if (not p.is_symlink() or inside(p, boundary)) and not is_special(p))
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
