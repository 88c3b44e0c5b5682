"""Write a whole phantom cohort: plan, simulate each subject once, hand it to every layout writer."""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from glioscope.errors import InputError
from glioscope.synth import montage
from glioscope.synth.anatomy import anatomy
from glioscope.synth.dicom_layouts import RembrandtWriter, RsnaWriter
from glioscope.synth.imagefolder_writer import ImageFolderWriter
from glioscope.synth.manifest import describe, truth_row
from glioscope.synth.nifti_writer import BratsWriter, IxiWriter
from glioscope.synth.plan import Record, plan
from glioscope.synth.presets import (
    DEFAULT_DIFFICULTY,
    DEFAULT_MGMT_EFFECT,
    LAYOUTS,
    SITES,
    Preset,
    Site,
    get_preset,
    get_site,
)
from glioscope.synth.subject import simulate
from glioscope.util.atomic import atomic_dir
from glioscope.util.progress import progress_bar

WRITERS = {
    "dicom": RembrandtWriter,
    "rsna-miccai": RsnaWriter,
    "brats": BratsWriter,
    "ixi": IxiWriter,
    "imagefolder": ImageFolderWriter,
}


def synthesize(
    out: str | Path,
    preset: str | Preset = "demo",
    seed: int = 0,
    difficulty: float | None = None,
    mgmt_effect: float | None = None,
    layouts: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    workers: int = 1,
    site: str = "A",
) -> dict:
    """Write the phantom cohort to `out` atomically; return its manifest (also OUT/synth.json).

    `workers` > 1 simulates subjects in that many spawned processes (worth it for big
    presets on machines with several physical cores; a script calling it then needs the
    `if __name__ == "__main__":` guard). The output does not depend on it. `preset` is a
    preset's name or a `Preset` of one's own (a cohort sized for a particular check).
    `site` names the scanner and hospital (presets.SITES): "B" is a second site for
    external validation, with its own subjects, ids, intensities, noise, bias and slices.
    """
    settings = preset if isinstance(preset, Preset) else get_preset(preset)
    where = get_site(site)
    settings = replace(
        settings, dicom_slab=settings.dicom_slab + where.extra_slab, rsna_slab=settings.rsna_slab + where.extra_slab
    )
    preset = settings.name
    difficulty, mgmt_effect = _knobs(difficulty, mgmt_effect)
    layouts = _layouts(layouts)
    records = plan(settings, seed, where)
    job = _Job(
        settings,
        difficulty,
        mgmt_effect,
        tuple(layouts),
        frozenset(montage.wanted(records, settings.montage_per_class)),
        where,
    )
    with atomic_dir(out, overwrite) as tmp:
        results = []
        bar = progress_bar(total=len(records), desc=f"phantom {preset}", unit="subject", disable=not progress)
        with bar, _pool(max(1, int(workers)), settings.voxel_mm) as pool:
            for result in pool(functools.partial(_simulate_and_write, job, tmp), records):
                results.append(result)
                bar.update()
        writers = {name: WRITERS[name](tmp, settings) for name in layouts}
        outputs = {
            name: writers[name].finish([r.rows[name] for r in results if r.rows[name] is not None]) for name in layouts
        }
        pd.DataFrame([r.truth for r in results]).to_csv(tmp / "truth.csv", index=False)
        panels = [r.panel for r in results if r.panel is not None]
        montage.render(tmp / "montage.png", panels, _title(settings, seed, difficulty, mgmt_effect, where))
        manifest = {
            **describe(settings, seed, difficulty, mgmt_effect, layouts, records, outputs),
            "site": where.as_dict(),
        }
        (tmp / "synth.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


@dataclass(frozen=True)
class _Job:
    """What every subject's simulation and writing needs (sent to worker processes)."""

    settings: Preset
    difficulty: float
    mgmt_effect: float
    layouts: tuple[str, ...]
    montage: frozenset[int]
    site: Site


@dataclass
class _Result:
    rows: dict[str, dict | None]  # layout -> the writer's row for its CSV, None when absent there
    truth: dict
    panel: montage.Panel | None


def _simulate_and_write(job: _Job, root: Path, record: Record) -> _Result:
    """Simulate one subject and write it in every layout (runs in a worker process)."""
    subject = simulate(record.spec, job.settings.voxel_mm, job.difficulty, job.mgmt_effect, job.site)
    rows = {name: WRITERS[name](root, job.settings).write(subject, record) for name in job.layouts}
    panel = montage.panel(subject, record) if record.spec.index in job.montage else None
    return _Result(rows=rows, truth=truth_row(subject, record, list(job.layouts)), panel=panel)


@contextlib.contextmanager
def _pool(workers: int, voxel_mm: int):
    """A `map` that runs in this process, or in `workers` spawned processes, keeping order."""
    if workers == 1:
        yield map
        return
    # spawn, not fork: torch's thread pools do not survive a fork reliably.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(voxel_mm,)) as executor:
        yield lambda function, items: executor.map(function, items)


def _start_worker(voxel_mm: int) -> None:
    """One thread per worker process (the processes share the cores), template loaded once."""
    import SimpleITK as sitk
    import torch

    torch.set_num_threads(1)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    anatomy(voxel_mm)


def make_montage(
    out_png: str | Path,
    preset: str = "demo",
    seed: int = 0,
    difficulty: float | None = None,
    mgmt_effect: float | None = None,
    per_class: int | None = None,
) -> Path:
    """Re-simulate the first subjects of each class of a cohort and draw them (no cohort on disk needed)."""
    settings = get_preset(preset)
    difficulty, mgmt_effect = _knobs(difficulty, mgmt_effect)
    records = plan(settings, seed)
    chosen = montage.wanted(records, per_class or settings.montage_per_class)
    chosen_records = [r for r in records if r.spec.index in chosen]
    panels = [montage.panel(simulate(r.spec, settings.voxel_mm, difficulty, mgmt_effect), r) for r in chosen_records]
    return montage.render(out_png, panels, _title(settings, seed, difficulty, mgmt_effect))


def _knobs(difficulty: float | None, mgmt_effect: float | None) -> tuple[float, float]:
    difficulty = DEFAULT_DIFFICULTY if difficulty is None else float(difficulty)
    mgmt_effect = DEFAULT_MGMT_EFFECT if mgmt_effect is None else float(mgmt_effect)
    if not 0 <= difficulty <= 1:
        raise InputError(None, f"difficulty must be between 0 and 1, got {difficulty}")
    if not 0 <= mgmt_effect <= 5:
        raise InputError(None, f"mgmt_effect must be between 0 and 5 (standard deviations), got {mgmt_effect}")
    return difficulty, mgmt_effect


def _layouts(layouts: Sequence[str] | None) -> list[str]:
    if layouts is None:
        return list(LAYOUTS)
    if isinstance(layouts, str):
        layouts = [layouts]
    unknown = [name for name in layouts if name not in LAYOUTS]
    if unknown:
        raise InputError(None, f"unknown phantom layout(s) {', '.join(unknown)}; choose from {', '.join(LAYOUTS)}")
    return [name for name in LAYOUTS if name in layouts]


def _title(settings: Preset, seed: int, difficulty: float, mgmt_effect: float, site: Site = SITES["A"]) -> str:
    where = f", site {site.name}" if site.number else ""
    return (
        f"glioscope phantom '{settings.name}'{where}, seed {seed}, difficulty {difficulty}, mgmt_effect {mgmt_effect}"
    )
