"""One phantom subject: anatomy, tumour, deformation, contrasts, scanner effects."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from glioscope.synth import contrasts, tumour, warp
from glioscope.synth.anatomy import BRAIN_TISSUES, HEAD_TISSUES, anatomy
from glioscope.synth.presets import SITES, Site

OEDEMA_IN_GREY = 0.15  # vasogenic oedema spreads along white matter, mostly sparing cortex
COMPARTMENTS = ("necrosis", "non_enhancing", "enhancing", "oedema")
# Label codes before the warp; BraTS merges non-enhancing tumour (3) into the core (1).
LABEL_CODES = {1: "necrosis", 2: "oedema", 3: "non_enhancing", 4: "enhancing"}
NON_ENHANCING_CODE = 3

# Random streams, keyed so that each quantity has its own: changing one never shifts another.
STREAM_TUMOUR, STREAM_MGMT, STREAM_SCANNER, STREAM_TORCH, STREAM_SHAPE = 1, 2, 3, 4, 5


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """A generator for one named stream of one subject."""
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


@dataclass(frozen=True)
class SubjectSpec:
    """Who a subject is before simulation: index, class, MGMT status, cohort seed."""

    index: int
    grade: str  # II | III | IV | healthy
    methylated: bool | None  # grade IV only
    seed: int


@dataclass
class Subject:
    """A simulated subject on the preset grid (RAS affine)."""

    spec: SubjectSpec
    images: dict[str, np.ndarray]  # sequence -> float32, with head, bias and noise
    brain: np.ndarray  # bool, brain incl. tumour (the skull-stripping mask)
    head: np.ndarray  # bool, anything but air
    seg: np.ndarray  # uint8, BraTS labels 0/1/2/4
    affine: np.ndarray
    reference_mm: np.ndarray  # tumour centre (healthy: a comparable point in white matter)
    params: dict[str, float] = field(default_factory=dict)
    volumes_ml: dict[str, float] = field(default_factory=dict)

    @property
    def has_tumour(self) -> bool:
        return self.spec.grade != "healthy"


def simulate(
    spec: SubjectSpec, voxel_mm: int, difficulty: float, mgmt_effect: float, site: Site = SITES["A"]
) -> Subject:
    """Simulate one subject deterministically from its spec, imaged by `site`'s scanner."""
    anat = anatomy(voxel_mm)
    tissues = {name: volume.copy() for name, volume in anat.tissues.items()}
    rng = rng_for(spec.seed, STREAM_TUMOUR, spec.index)
    # Healthy subjects draw grade II parameters too: only to place their reference point.
    grade = spec.grade if spec.grade != "healthy" else "II"
    params = tumour.sample_parameters(grade, rng, difficulty, mgmt_effect, spec.methylated)
    hemisphere = "left" if rng.random() < 0.5 else "right"
    centre = _sample_centre(anat, hemisphere, params["radius_mm"], rng)
    maps = {name: np.zeros(anat.shape, np.float32) for name in COMPARTMENTS}
    texture = np.zeros(anat.shape, np.float32)
    if spec.grade != "healthy":
        tumour.displace({name: tissues[name] for name in BRAIN_TISSUES}, params, centre, anat.affine, anat.depth_mm)
        _insert_tumour(tissues, maps, texture, params, centre, anat, rng_for(spec.seed, STREAM_SHAPE, spec.index))
    scanner_rng = rng_for(spec.seed, STREAM_SCANNER, spec.index)
    # Contrasts are linear in the tissue fractions, so synthesising before the warp
    # equals warping the fractions first, and resamples 4 images instead of 15 maps.
    clean = contrasts.synthesise({**tissues, **maps}, texture, scanner_rng)
    brain = sum(tissues[name] for name in BRAIN_TISSUES) + sum(maps.values())
    head = brain + sum(tissues[name] for name in HEAD_TISSUES)
    labels = _labels(maps)
    marker = _marker(centre, anat)

    coordinates = warp.random_warp(anat.shape, anat.affine, _torch_seed(spec))
    warped = warp.apply({**clean, "brain": brain, "head": head, "marker": marker}, coordinates)
    brain, head, marker = warped.pop("brain"), warped.pop("head"), warped.pop("marker")
    clean = warped
    labels = warp.apply({"labels": labels}, coordinates, nearest=True)["labels"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_torch_seed(spec) + 1)
        images = contrasts.scanner(clean, anat.affine, scanner_rng, site)

    voxel_ml = voxel_mm**3 / 1000
    volumes = {f"{name}_ml": round(float((labels == code).sum() * voxel_ml), 3) for code, name in LABEL_CODES.items()}
    seg = np.where(labels == NON_ENHANCING_CODE, 1, labels).astype(np.uint8)
    return Subject(
        spec=spec,
        images=images,
        brain=brain >= 0.5,
        head=head >= 0.5,
        seg=seg,
        affine=anat.affine,
        reference_mm=_marker_centre(marker, anat.affine),
        params={"hemisphere": hemisphere, **params} if spec.grade != "healthy" else {},
        volumes_ml=volumes if spec.grade != "healthy" else {},
    )


def _torch_seed(spec: SubjectSpec) -> int:
    return int(np.random.SeedSequence([spec.seed, STREAM_TORCH, spec.index]).generate_state(1)[0])


def _sample_centre(anat, hemisphere: str, radius: float, rng: np.random.Generator) -> np.ndarray:
    """A deep white-matter point of one cerebral hemisphere, far enough from the surface."""
    ijk = np.argwhere(anat.tissues["wm"] > 0.8)
    xyz = ijk @ anat.affine[:3, :3].T + anat.affine[:3, 3]
    side = xyz[:, 0] < -12 if hemisphere == "left" else xyz[:, 0] > 12
    # Gliomas are mostly supratentorial: keep above the tentorium (MNI z > -10 mm).
    candidates = side & (xyz[:, 2] > -10)
    depth = anat.depth_mm[tuple(ijk.T)]
    wanted = min(0.7 * radius + 6, np.percentile(depth[candidates], 90))
    pool = np.flatnonzero(candidates & (depth >= wanted))
    return xyz[pool[rng.integers(len(pool))]].astype(np.float32)


def _insert_tumour(tissues, maps, texture, params, centre, anat, rng) -> None:
    """Replace brain tissue by the tumour core and turn white matter around it into oedema."""
    parts = tumour.compartments(params, centre, anat.affine, anat.shape, anat.voxel_mm, rng)
    box = parts.box
    gm, wm, csf = (tissues[name][box] for name in BRAIN_TISSUES)
    # The tumour lives in the brain: truncate it at the brain surface.
    brain = np.clip(gm + wm + csf, 0, 1)
    necrosis, non_enhancing, enhancing = (p * brain for p in (parts.necrosis, parts.non_enhancing, parts.enhancing))
    core = necrosis + non_enhancing + enhancing
    keep = 1 - np.clip(core / np.maximum(brain, 1e-6), 0, 1)
    gm, wm, csf = gm * keep, wm * keep, csf * keep
    oedema_wm, oedema_gm = wm * parts.oedema_zone, gm * parts.oedema_zone * OEDEMA_IN_GREY
    tissues["gm"][box], tissues["wm"][box], tissues["csf"][box] = gm - oedema_gm, wm - oedema_wm, csf
    maps["necrosis"][box], maps["non_enhancing"][box], maps["enhancing"][box] = necrosis, non_enhancing, enhancing
    maps["oedema"][box] = oedema_wm + oedema_gm
    texture[box] = parts.texture


def _marker(centre: np.ndarray, anat) -> np.ndarray:
    """A small Gaussian blob at the centre: deformed with the rest, it shows where the centre went."""
    inverse = np.linalg.inv(anat.affine)
    c = inverse[:3, :3] @ centre + inverse[:3, 3]
    grids = np.ogrid[tuple(slice(0, n) for n in anat.shape)]
    sigma = 1.5  # voxels
    blob = np.exp(-sum((g - ci) ** 2 for g, ci in zip(grids, c)) / (2 * sigma**2))
    return blob.astype(np.float32)


def _marker_centre(marker: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The RAS position of the deformed marker's peak (weighted centroid of its top part)."""
    weights = np.where(marker > 0.5 * marker.max(), marker, 0)
    ijk = np.array(ndimage.center_of_mass(weights))
    return (affine[:3, :3] @ ijk + affine[:3, 3]).astype(float)


def _labels(maps: dict[str, np.ndarray]) -> np.ndarray:
    """Compartment codes where the tumour fills half a voxel (the largest compartment wins)."""
    stack = np.stack([maps[name] for name in LABEL_CODES.values()])
    codes = np.array(list(LABEL_CODES), np.uint8)[stack.argmax(0)]
    return np.where(stack.sum(0) >= 0.5, codes, 0).astype(np.uint8)
