"""The cohort plan: who the subjects are, their ids in each layout, and per-layout choices."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from glioscope.synth.presets import CLASSES, SITES, Preset, Site
from glioscope.synth.subject import STREAM_MGMT, SubjectSpec, rng_for

STREAM_PLAN = 0
RSNA_SEQUENCES = ("FLAIR", "T1w", "T1wCE", "T2w")
RSNA_PLANES = {"axial": 0.7, "sagittal": 0.15, "coronal": 0.15}
RSNA_MISSING_FRACTION = 0.1
IXI_SITES = ("Guys", "HH", "IOP")


@dataclass
class Record:
    """One planned subject: its spec and how it appears in each layout."""

    spec: SubjectSpec
    ids: dict[str, str] = field(default_factory=dict)  # layout -> id ('' when absent)
    rsna_planes: dict[str, str] = field(default_factory=dict)  # RSNA folder -> plane
    rsna_missing: str = ""  # RSNA sequence folder left out, if any
    site: str = "A"  # the scanner and hospital (presets.SITES), recorded in truth.csv and DICOM InstitutionName

    @property
    def grade(self) -> str:
        return self.spec.grade


def plan(preset: Preset, seed: int, site: Site = SITES["A"]) -> list[Record]:
    """Shuffle the classes over subject indices and give every subject its ids (each site its own)."""
    seed = site.seed(seed)
    rng = rng_for(seed, STREAM_PLAN)
    classes = np.array([c for c in CLASSES for _ in range(preset.counts[c])])
    classes = classes[rng.permutation(len(classes))]
    records = []
    for index, grade in enumerate(classes):
        methylated = bool(rng_for(seed, STREAM_MGMT, index).random() < 0.5) if grade == "IV" else None
        spec = SubjectSpec(index=index, grade=str(grade), methylated=methylated, seed=seed)
        records.append(Record(spec, site=site.name))
    tumours = [r for r in records if r.grade != "healthy"]
    glioblastomas = [r for r in records if r.grade == "IV"]
    healthy = [r for r in records if r.grade == "healthy"]

    n = site.number  # another site's ids never meet site A's
    for record, number in zip(tumours, _unique(rng, 1000, 9999, len(tumours), ordered=False)):
        record.ids["dicom"] = f"{900 + n}-00-{number:04d}"
    for record, number in zip(glioblastomas, _unique(rng, 0, 1010, len(glioblastomas))):
        record.ids["rsna-miccai"] = f"{number + 20000 * n:05d}"
    for number, record in enumerate(tumours, start=1):
        record.ids["brats"] = f"BraTS20_Training_{number:03d}" if not n else f"Site{site.name}_Case_{number:03d}"
    for record, number, scan in zip(
        healthy, _unique(rng, 2, 662, len(healthy)), _unique(rng, 0, 9999, len(healthy), False)
    ):
        record.ids["ixi"] = f"IXI{number + 1000 * n:03d}-{IXI_SITES[rng.integers(len(IXI_SITES))]}-{scan:04d}"
    prefix = "P" if not n else site.name
    for record in records:
        record.ids["imagefolder"] = f"{prefix}{record.spec.index + 1:04d}"
    _plan_rsna(glioblastomas, rng)
    return records


def _unique(rng: np.random.Generator, low: int, high: int, n: int, ordered: bool = True) -> list[int]:
    """n distinct integers in [low, high], sorted (ids grow with the subject order) or not."""
    values = rng.choice(np.arange(low, high + 1), size=n, replace=False)
    return sorted(int(v) for v in values) if ordered else [int(v) for v in values]


def _plan_rsna(records: list[Record], rng: np.random.Generator) -> None:
    """Planes per series (mostly axial) and the ~10% of patients missing one sequence."""
    planes, weights = list(RSNA_PLANES), list(RSNA_PLANES.values())
    for record in records:
        record.rsna_planes = {seq: str(rng.choice(planes, p=weights)) for seq in RSNA_SEQUENCES}
    if len(records) >= 2:
        n_missing = max(1, round(RSNA_MISSING_FRACTION * len(records)))
        for i in rng.choice(len(records), size=n_missing, replace=False):
            records[i].rsna_missing = str(rng.choice(RSNA_SEQUENCES))
    # Readers must meet every plane even in a tiny cohort.
    if records and all(p == "axial" for r in records for s, p in r.rsna_planes.items() if s != r.rsna_missing):
        first = records[0]
        present = [s for s in RSNA_SEQUENCES if s != first.rsna_missing]
        first.rsna_planes[present[0]], first.rsna_planes[present[-1]] = "sagittal", "coronal"
