"""`glioscope demo`: the main job, end to end, on the built-in phantom cohort."""

from __future__ import annotations

import json
import time
from pathlib import Path

from glioscope import __version__, split
from glioscope.ingest import ingest
from glioscope.synth import synthesize

DEMO_PRESET = "demo"
# Seed 000's selection: the sagittal T1 series of a REMBRANDT-style DICOM tree.
DEMO_SELECTION = {"plane": ["sagittal"], "sequence": ["T1"]}


def _phantom(out: Path, seed: int) -> Path:
    """Synthesise the demo phantom, or reuse one written earlier with the same settings."""
    phantom = out / "phantom"
    manifest = phantom / "synth.json"
    if manifest.is_file():
        previous = json.loads(manifest.read_text())
        wanted = {"preset": DEMO_PRESET, "seed": seed, "glioscope_version": __version__}
        if all(previous.get(key) == value for key, value in wanted.items()):
            print(f"Reusing the phantom cohort in {phantom}")
            return phantom
    print(f"Synthesising the '{DEMO_PRESET}' phantom cohort (seed {seed}) in {phantom}")
    synthesize(phantom, preset=DEMO_PRESET, seed=seed, overwrite=True)
    return phantom


def run_demo(out: Path, seed: int = 0) -> dict:
    """Synthesise, ingest the DICOM tree, split by patient; print where everything is."""
    start = time.perf_counter()
    out = Path(out)
    phantom = _phantom(out, seed)

    print("\nIngesting the DICOM tree, keeping sagittal T1 series (seed 000's selection)")
    cohort_dir = out / "cohort"
    frame, _ = ingest([phantom / "dicom"], cohort_dir, select=DEMO_SELECTION, overwrite=True)

    print("\nSplitting by patient: 5 stratified folds")
    table, meta = split.make_splits(frame, folds=5, seed=seed)
    meta["cohort"] = str(cohort_dir)
    splits_dir = split.save(out / "splits", table, meta, overwrite=True)
    print(split.format_split(meta))

    paths = {
        "montage": phantom / "montage.png",
        "phantom": phantom,
        "cohort summary": cohort_dir / "summary.txt",
        "cohort table": cohort_dir / "cohort.csv",
        "splits": splits_dir / "splits.csv",
    }
    print(f"\nDemo finished in {time.perf_counter() - start:.0f} s. Outputs:")
    for name, path in paths.items():
        print(f"  {name:<15} {path}")
    return paths
