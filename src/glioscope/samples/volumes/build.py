"""build_volumes: a cohort table to a VolumeSet, preprocessing each study once (in parallel) and caching it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from glioscope.samples.volumes import brain_nets, cache
from glioscope.samples.volumes.plan import Planned, plan_volumes
from glioscope.samples.volumes.settings import TABLE_COLUMNS, VolumeSettings
from glioscope.samples.volumes.volume import process
from glioscope.samples.volumes.volume_set import VolumeSet
from glioscope.samples.entry_cache import build_entries, checked, nothing_left, reason_of

# A worker process imports torch, TorchIO and SimpleITK (several seconds on a busy machine): worth it beyond this.
_POOL_WORTH_SECONDS = 20.0


def build_volumes(
    frame: pd.DataFrame,
    settings: VolumeSettings,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> VolumeSet:
    """One volume per patient and study of a cohort table under `settings`; failures are listed in `skipped`.

    With `cache_dir`, each volume is preprocessed once per settings (see glioscope.samples.volumes.cache);
    `workers` processes preprocess the others (None: one per CPU core).
    """
    if settings.skull_strip in brain_nets.PACKAGES:
        brain_nets.require(settings.skull_strip)  # before any volume is decoded
    frame = checked(frame, "to build volumes from")
    planned, skipped, notes = plan_volumes(frame, settings)
    usable, more_skips = build_entries(
        planned,
        cache.folder(cache_dir, settings) if cache_dir is not None else None,
        key=lambda task: cache.volume_key(task.sources, task.source_format),
        ident=lambda task: task.volume_id,
        load=cache.load,
        compute=process,
        reason=reason_of,
        workers=workers,
        progress=progress,
        pool_worth_seconds=_POOL_WORTH_SECONDS,
        layout=cache.LAYOUT,
        labels=("volume cache", "volume", "preprocessing volumes"),
    )
    skipped += more_skips
    if not usable:
        raise nothing_left("volume", len(planned), "study(ies)", skipped, notes)
    notes += _notes(usable)
    volumes = np.stack([entry["volume"] for _, entry in usable]).astype(np.float16, copy=False)
    rows = [{**item.meta, **{k: entry["meta"][k] for k in ("skull_stripped", "skull_strip")}} for item, entry in usable]
    grids = np.array([entry["meta"]["grid"] for _, entry in usable], float).reshape(-1, 4, 4)
    return VolumeSet(volumes, pd.DataFrame(rows, columns=TABLE_COLUMNS), settings, skipped, notes, grids)


def _notes(usable: list[tuple[Planned, dict]]) -> list[str]:
    notes = []
    substituted = [item.meta["volume_id"] for item, _ in usable if item.meta["fallback"]]
    if substituted:
        kinds = sorted({item.meta["fallback"] for item, _ in usable if item.meta["fallback"]})
        notes.append(
            f"{len(substituted)} volume(s) use a fallback sequence ({'; '.join(kinds)}): {', '.join(substituted[:5])}"
        )
    how = pd.Series([entry["meta"]["skull_strip"] for _, entry in usable]).value_counts().to_dict()
    if how.get("mni"):
        notes.append(f"{how['mni']} volume(s) skull-stripped here by registration to the MNI152 template")
    for tool in brain_nets.PACKAGES:
        if how.get(tool):
            notes.append(f"{how[tool]} volume(s) skull-stripped here by {tool} ({brain_nets.cache_tag(tool)})")
    if how.get("none") and len(how) > 1:
        notes.append(
            f"{how['none']} volume(s) keep their skull while {len(usable) - how['none']} have none: "
            "a model can tell them apart by the skull alone (set skull_strip to auto or mni)"
        )
    unsaved = [entry["cache_error"] for _, entry in usable if "cache_error" in entry]
    if unsaved:
        notes.append(f"{len(unsaved)} volume(s) could not be written to the volume cache ({unsaved[0]})")
    return notes
