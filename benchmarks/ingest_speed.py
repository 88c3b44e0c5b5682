"""How fast ingest reads a DICOM tree's headers: slices per second with 1 worker and with N.

python benchmarks/ingest_speed.py                 # synthesise the `study` phantom (DICOM layout only)
python benchmarks/ingest_speed.py PATH            # an existing DICOM tree (TCIA download, PACS export)
python benchmarks/ingest_speed.py --preset tiny --workers 8
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from glioscope.io.formats import ReadOptions, read_source


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", nargs="?", type=Path, help="a DICOM tree; default: synthesise one")
    parser.add_argument("--preset", default="study", help="phantom preset when no tree is given (default: study)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="N (default: CPU cores)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per setting; the best counts")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="glioscope-bench-") as scratch:
        tree = args.tree or _synthesise(Path(scratch), args.preset)
        _read(tree, args.workers)  # warm the file cache so both settings read from memory
        single = _best(tree, 1, args.repeats)
        many = _best(tree, args.workers, args.repeats)
    print(f"\nDICOM tree: {tree}  ({single['slices']} slices in {single['series']} series)")
    print(f"{'workers':>8} {'seconds':>9} {'slices/s':>10}")
    for result in (single, many):
        print(f"{result['workers']:>8} {result['seconds']:>9.2f} {result['rate']:>10.0f}")
    print(f"speed-up with {args.workers} workers: {many['rate'] / single['rate']:.2f}x on {os.cpu_count()} CPU cores")
    if hasattr(os, "getloadavg"):
        # Other processes on the machine take cores from the pool: read the speed-up with this in mind.
        print(f"load average during the run: {os.getloadavg()[0]:.2f}")
    return 0


def _synthesise(scratch: Path, preset: str) -> Path:
    from glioscope.synth import synthesize

    print(f"synthesising the {preset!r} phantom (DICOM layout only) ...", file=sys.stderr)
    synthesize(scratch / preset, preset=preset, seed=0, layouts=["dicom"], progress=True)
    return scratch / preset / "dicom"


def _read(tree: Path, workers: int):
    return read_source(tree, "dicom", ReadOptions(workers=workers, progress=False))


def _best(tree: Path, workers: int, repeats: int) -> dict:
    best = None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = _read(tree, workers)
        seconds = time.perf_counter() - start
        best = seconds if best is None else min(best, seconds)
    slices = sum(row["n_slices"] for row in result.rows)
    return {"workers": workers, "seconds": best, "slices": slices, "series": len(result.rows), "rate": slices / best}


if __name__ == "__main__":
    raise SystemExit(main())
