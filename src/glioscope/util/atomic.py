"""Atomic outputs: write to a temporary sibling, then rename into place.

A crash or Ctrl-C leaves either the old file (or nothing) or the complete new
file, never a partial one. A killed process can leave its hidden temporary folder
(`.<name>.<pid>.<random>.partial`): the next `atomic_dir` of the same output removes
those whose process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from glioscope.util import csvfiles
from glioscope.util.paths import inside


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:  # a full disk: name the output, not its temporary sibling
        tmp_path.unlink(missing_ok=True)
        raise _named(exc, path) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_paths(*paths: str | Path) -> Iterator[list[Path]]:
    """Temporary paths beside each of `paths`, renamed onto them once every one is written: files that belong
    together (a CSV and its JSON) are all new or all as they were, never one without the other."""
    with contextlib.ExitStack() as stack:
        temporary = [stack.enter_context(_unrenamed(Path(p))) for p in paths]
        try:
            yield temporary
            for tmp, path in zip(temporary, paths):
                os.replace(tmp, path)
        except OSError as exc:
            named = {str(tmp): path for tmp, path in zip(temporary, paths)}
            raise _named(exc, named.get(str(exc.filename), exc.filename)) from None


@contextlib.contextmanager
def _unrenamed(path: Path) -> Iterator[Path]:
    """A temporary sibling of `path`, removed on the way out unless it was renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _named(exc: OSError, path) -> OSError:
    """The same error, naming `path` (the output a person asked for) when it named a temporary file."""
    if exc.filename and ".partial" not in Path(str(exc.filename)).name:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_text(obj) -> str:
    """The text of a JSON file glioscope writes."""
    return json.dumps(obj, indent=2, default=str) + "\n"


def csv_to(path: Path, frame) -> None:
    """A pandas DataFrame as CSV at `path` (a temporary one), its text cells safe to open in a spreadsheet."""
    csvfiles.write(frame, path)


def write_json(path: str | Path, obj) -> Path:
    return write_text(path, json_text(obj))


def write_csv(path: str | Path, frame) -> Path:
    """Write a pandas DataFrame as CSV atomically (see `csv_to`)."""
    with atomic_path(path) as tmp:
        csv_to(tmp, frame)
    return Path(path)


def check_output_file(path: str | Path, overwrite: bool = False, inputs=()) -> None:
    """Refuse an output file that is a folder, that exists (without `overwrite`), or that lies inside an input folder."""
    from glioscope.errors import InputError

    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder; give the name of a file to write")
    if path.exists() and not overwrite:
        raise InputError(path, "already exists; choose another file or pass --overwrite")
    for folder in inputs:
        folder = Path(folder)
        if folder.is_dir() and inside(path, folder):
            raise InputError(path, f"is inside the input {folder}; write it elsewhere")


@contextlib.contextmanager
def atomic_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that replaces `path` when the block succeeds.

    Refuses to replace an existing non-empty directory unless `overwrite`.
    """
    from glioscope.errors import InputError

    path = Path(path)
    if path.exists() and not overwrite and (not path.is_dir() or any(path.iterdir())):
        raise InputError(path, "output already exists; choose another path or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".partial", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs are ordinary folders
    try:
        yield tmp
        if path.exists():
            trash = path.with_name(f".{path.name}.{os.getpid()}.old.partial")
            os.replace(path, trash)
            os.replace(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale(path: Path) -> list[Path]:
    """Remove the temporary siblings of `path` left by processes that no longer run; returns them."""
    removed = []
    for candidate in Path(path).parent.glob(f".{Path(path).name}.*.partial"):
        pid = candidate.name[len(Path(path).name) + 2 :].split(".")[0]
        if not pid.isdigit() or _running(int(pid)):
            continue
        if candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True
