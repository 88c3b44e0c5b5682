"""How well the leak check finds edited copies of real images, and how often it pairs unrelated ones.

python benchmarks/leakcheck_recall.py                       # ../shared/data (or $GLIOSCOPE_SHARED_DATA)
python benchmarks/leakcheck_recall.py DATA --lgg tcga-lgg-dev/kaggle_3m --per-class 100

Real images, as glioscope preprocesses them (the base recipe's slices: grey, min-max scaled, padded
square, 128 px): every slice of the LGG folder (kaggle_3m layout: 256 x 256 TIFFs of TCGA-LGG
patients) and `--per-class` of each class of the four-class JPGs (kaggle-brain-tumor-224/Training,
every k-th file). Each image is edited (shifted, mirrored, turned, brighter, of other contrast, noisier,
re-encoded as JPEG, resized; a few strengths each), written as a file and preprocessed like the
original. An edited copy is found when the leak check pairs it with its own original, as an exact
or a near duplicate. Unrelated pairs are pairs of originals: LGG slices of different patients,
of the same patient 10 or more slices apart, and LGG slices against four-class images (other
collections). Pairs of different four-class files are counted apart: that set holds mirrored and
re-processed copies of its own images, so a pair there may be a true duplicate.

"before": the search of earlier versions (the perceptual hash, at most 20 of 256 bits, unflipped), as
glioscope still runs it on fingerprints made before the aligned hashes; "after": the aligned hashes
(glioscope.leakcheck). Both run in this process on the same images. Samples with little content are
left out, as the leak check leaves them out.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from glioscope.ingest import ingest
from glioscope.leakcheck import NEAR_BITS, Fingerprints, aligned_hashes, compare, exact_hash, perceptual_hash
from glioscope.leakcheck.hashes import aligned_distances, legacy_distances
from glioscope.recipe import load_recipe
from glioscope.samples.slices import build_slices

FAR = 10  # slices apart for two slices of one patient to count as unrelated


def _affine(shift: int = 0, degrees: float = 0.0):
    def edit(image: Image.Image) -> Image.Image:
        if degrees:
            return image.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=0)
        return image.transform(image.size, Image.Transform.AFFINE, (1, 0, -shift, 0, 1, shift), fillcolor=0)

    return edit


def _pixels(function):
    def edit(image: Image.Image) -> Image.Image:
        values = np.asarray(image).astype(np.float64)
        return Image.fromarray(np.clip(np.rint(function(values)), 0, 255).astype(np.uint8))

    return edit


def _jpeg(quality: int):
    def edit(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).copy()

    return edit


def _resized(factor: float = 0.0, side: int = 0):
    def edit(image: Image.Image) -> Image.Image:
        if side:
            return image.resize((side, side), Image.Resampling.BICUBIC)
        size = image.size
        bigger = image.resize(tuple(round(n * factor) for n in size), Image.Resampling.BICUBIC)
        return bigger.resize(size, Image.Resampling.BICUBIC)

    return edit


def _noise(sd: float):
    generator = np.random.default_rng(0)
    return _pixels(lambda values: values + generator.normal(0, sd, values.shape))


EDITS = [
    ("copy", "PNG, lossless", lambda image: image),
    ("shift", "3 px", _affine(shift=3)),
    ("shift", "6 px", _affine(shift=6)),
    ("shift", "12 px", _affine(shift=12)),
    ("flip", "left-right", lambda image: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    ("flip", "up-down", lambda image: image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)),
    ("rotation", "2°", _affine(degrees=2)),
    ("rotation", "5°", _affine(degrees=5)),
    ("rotation", "10°", _affine(degrees=10)),
    ("brightness", "+30 grey levels", _pixels(lambda v: v + 30)),
    ("brightness", "x 1.3", _pixels(lambda v: v * 1.3)),
    ("contrast", "x 0.7 about the mean", _pixels(lambda v: (v - v.mean()) * 0.7 + v.mean())),
    ("contrast", "x 1.4 about the mean", _pixels(lambda v: (v - v.mean()) * 1.4 + v.mean())),
    ("contrast", "gamma 0.8", _pixels(lambda v: 255 * (v / 255) ** 0.8)),
    ("noise", "Gaussian, sd 5", _noise(5)),
    ("JPEG", "quality 90", _jpeg(90)),
    ("JPEG", "quality 75", _jpeg(75)),
    ("resize", "x 1.14 and back", _resized(factor=256 / 224)),
    ("resize", "to 192 px", _resized(side=192)),
    ("resize", "to 320 px", _resized(side=320)),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = os.environ.get("GLIOSCOPE_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("data", nargs="?", type=Path, default=Path(default), help="the shared data folder")
    parser.add_argument("--lgg", default="lgg-kaggle3m-sample/kaggle_3m", help="kaggle_3m folder, inside DATA")
    parser.add_argument("--four", default="kaggle-brain-tumor-224/Training", help="four-class folders, inside DATA")
    parser.add_argument("--per-class", type=int, default=100, help="four-class images per class")
    args = parser.parse_args(argv)
    for folder in (args.data / args.lgg, args.data / args.four):
        if not folder.is_dir():
            parser.error(f"{folder}: not found")
    settings = load_recipe("base").data.slices
    lgg, _ = ingest([args.data / args.lgg], None, format="kaggle3m", progress=False, echo=None, workers=1)
    four, _ = ingest([args.data / args.four], None, format="imagefolder", progress=False, echo=None, workers=1)
    four = pd.concat(
        [
            g.iloc[:: max(1, len(g) // args.per_class)][: args.per_class]
            for _, g in four.sort_values("path").groupby("label")
        ]
    )
    print(
        f"{len(lgg)} LGG slices ({lgg['patient_id'].nunique()} patients), {len(four)} four-class images; "
        f"slices of {settings.size} px; near: at most {NEAR_BITS} of 256 bits",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="glioscope-leakcheck-") as scratch:
        sets = {
            name: _edited(rows, settings, Path(scratch) / name) for name, rows in (("LGG", lgg), ("four-class", four))
        }
    _recall_table(sets)
    _false_pairs(sets)
    _cost(sets)
    if hasattr(os, "getloadavg"):
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


def _edited(rows: pd.DataFrame, settings, scratch: Path) -> dict:
    """The originals' and every edit's samples (as glioscope preprocesses files), their fingerprints and timings."""
    originals = build_slices(rows, settings, cache_dir=None, workers=1, progress=False)
    found = {"table": originals.table, "samples": originals, "edits": []}
    for k, (_, _, edit) in enumerate(EDITS):
        folder = scratch / f"edit{k:02d}"
        folder.mkdir(parents=True)
        paths = []
        for i, path in enumerate(rows["path"]):
            with Image.open(path) as image:
                target = folder / f"{i:05d}.png"
                edit(image).save(target)
                paths.append(str(target))
        copies = rows.assign(path=paths, mask_path="")
        sizes = [Image.open(p).size for p in paths]
        copies = copies.assign(cols=[s[0] for s in sizes], rows=[s[1] for s in sizes])
        samples = build_slices(copies, settings, cache_dir=None, workers=1, progress=False)
        assert len(samples.images) == len(originals.images), f"edit {k}: {len(samples.images)} samples"
        found["edits"].append(samples)
    hashing = time.perf_counter()
    found["after"] = [Fingerprints.of(s) for s in [originals, *found["edits"]]]
    found["hash_ms"] = (time.perf_counter() - hashing) / sum(len(f.ids) for f in found["after"]) * 1000
    found["before"] = [replace(f, aligned=None) for f in found["after"]]  # what earlier versions searched
    return found


def _found(first: Fingerprints, second: Fingerprints) -> np.ndarray:
    """For each original (informative), whether its edited copy (same position in `second`) is paired with it."""
    result = compare(first, second)
    pairs = {(a, b) for a, b in result.exact} | {(a, b) for a, b, _ in result.near}
    same = first.exact == second.exact
    hits = np.array([(a, b) in pairs or s for a, b, s in zip(first.ids, second.ids, same)])
    return hits[first.informative]


def _recall_table(sets: dict) -> None:
    print("\n### Recall: the edited copy found as an exact or near duplicate of its original\n")
    names = list(sets)
    counts = ", ".join(f"{name} {int(s['after'][0].informative.sum())}" for name, s in sets.items())
    print(f"(originals with content: {counts})\n")
    print("| edit | strength | " + " | ".join(f"{n} before | {n} after" for n in names) + " |")
    print("|---|---|" + "---|---|" * len(names))
    for k, (kind, strength, _) in enumerate(EDITS):
        cells = []
        for name in names:
            for when in ("before", "after"):
                prints = sets[name][when]
                cells.append(f"{_found(prints[0], prints[k + 1]).mean():.2f}")
        print(f"| {kind} | {strength} | " + " | ".join(cells) + " |")


def _pairs(first: Fingerprints, second: Fingerprints) -> set[tuple[int, int]]:
    """(i, j) of every pair the leak check reports between two sets of originals."""
    result = compare(first, second)
    index_a = {k: i for i, k in enumerate(first.ids)}
    index_b = {k: i for i, k in enumerate(second.ids)}
    found = [(a, b) for a, b in result.exact] + [(a, b) for a, b, _ in result.near]
    return {(index_a[a], index_b[b]) for a, b in found}


def _false_pairs(sets: dict) -> None:
    print("\n### Unrelated pairs reported as duplicates\n")
    lgg, four = sets["LGG"], sets["four-class"]
    table = lgg["table"]
    patient = table["patient_id"].to_numpy()
    index = table["slice_index"].astype(int).to_numpy()
    content = lgg["after"][0].informative
    upper = np.triu(np.ones((len(table), len(table)), bool), 1) & content[:, None] & content[None, :]
    other = upper & (patient[:, None] != patient[None, :])
    same = upper & (patient[:, None] == patient[None, :])
    far = same & (np.abs(index[:, None] - index[None, :]) >= FAR)
    near_slices = same & (np.abs(index[:, None] - index[None, :]) < FAR)
    four_content = four["after"][0].informative
    across = content[:, None] & four_content[None, :]
    labels = four["table"]["label"].to_numpy()
    four_upper = np.triu(np.ones((len(labels), len(labels)), bool), 1) & four_content[:, None] & four_content[None, :]
    print("| pairs | number | before: reported | after: reported | after, per million | closest, bits before / after |")
    print("|---|---|---|---|---|---|")
    rows = [
        ("LGG slices of different patients", other, "LGG", "LGG", True),
        (f"LGG slices of one patient, {FAR} or more slices apart", far, "LGG", "LGG", True),
        ("LGG slices against four-class images", across, "LGG", "four-class", True),
        (f"LGG slices of one patient, 1 to {FAR - 1} slices apart (not unrelated)", near_slices, "LGG", "LGG", False),
        ("four-class images, different files (the set holds copies)", four_upper, "four-class", "four-class", False),
    ]
    reported = {
        (a, b, when): _pairs(sets[a][when][0], sets[b][when][0])
        for a, b in {(a, b) for *_, a, b, _ in rows}
        for when in ("before", "after")
    }
    for words, mask, a, b, unrelated in rows:
        counts = [sum(1 for i, j in reported[a, b, when] if mask[i, j]) for when in ("before", "after")]
        first, second = sets[a]["after"][0], sets[b]["after"][0]
        closest = [
            int(legacy_distances(first.perceptual, second.perceptual)[mask].min()),
            int(aligned_distances(first.aligned, second.aligned)[mask].min()),
        ]
        total = int(mask.sum())
        rate = f"{counts[1] / total * 1e6:.0f}" if unrelated else "–"
        print(f"| {words} | {total:,} | {counts[0]} | {counts[1]} | {rate} | {closest[0]} / {closest[1]} |")


def _cost(sets: dict) -> None:
    print("\n### Cost\n")
    for name, found in sets.items():
        arrays = found["samples"].images
        times = {}
        for what, function in (("exact", exact_hash), ("perceptual", perceptual_hash), ("aligned", aligned_hashes)):
            start = time.perf_counter()
            for array in arrays:
                function(array)
            times[what] = (time.perf_counter() - start) / len(arrays) * 1000
        print(
            f"{name}: hashing {found['hash_ms']:.2f} ms a sample, all three hashes and the content test (exact "
            f"{times['exact']:.2f}, perceptual {times['perceptual']:.2f}, aligned {times['aligned']:.2f})"
        )
    generator = np.random.default_rng(0)
    for n in (1000, 5000):
        made = []
        for tag in ("a", "b"):
            words = generator.integers(0, 2**63, size=(n, 2, 4), dtype=np.int64).astype(np.uint64)
            ids = np.array([f"{tag}{k}" for k in range(n)])
            made.append(Fingerprints(ids, ids, ids.astype("U64"), words[:, 0], np.ones(n, bool), words))
        times = {}
        for when, pair in (("before", [replace(f, aligned=None) for f in made]), ("after", made)):
            start = time.perf_counter()
            compare(*pair)
            times[when] = time.perf_counter() - start
        print(
            f"search of {n:,} x {n:,} samples: {times['before']:.2f} s before, {times['after']:.2f} s after "
            f"({times['after'] / (n * n) * 1e9:.0f} ns a pair)"
        )


if __name__ == "__main__":
    sys.exit(main())
