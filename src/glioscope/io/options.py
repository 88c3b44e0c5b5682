"""Options every reader accepts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ReadOptions:
    """What a user can tell the readers beyond the source folder."""

    labels: Path | None = None  # a --labels CSV that ingest joins; readers then skip their own label discovery
    id_column: str | None = None
    label_column: str | None = None
    patient_regex: str | None = None  # imagefolder: a group named `patient` (or the first group) in the file name
    workers: int | None = None  # processes for header scans; None = one per CPU core
    progress: bool = True
    check_data: bool = True  # NIfTI: read floating-point voxels once to find NaN/inf
    modalities: tuple[str, ...] | None = ("MR",)  # DICOM series of other modalities are skipped; None: any
    echo: Callable[[str], None] | None = None  # where readers say what they chose (e.g. a clinical.csv they found)

    def say(self, message: str) -> None:
        """Tell the user something through `echo`, when one is given."""
        if self.echo is not None:
            self.echo(message)
