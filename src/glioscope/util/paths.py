"""Where a path lies, links resolved."""

from __future__ import annotations

from pathlib import Path


def inside(path: str | Path, root: str | Path) -> bool:
    """Whether `path`, its links resolved, lies within `root` (its links resolved too)."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True
