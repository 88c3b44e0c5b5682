"""Tumour parameters by grade (with the difficulty and MGMT knobs) and the tumour's compartments.

Every parameter p of a grade g is drawn as

    value = clip(mu_p(d) + s_p(d) * (z + shift), lo_p, hi_p),   z ~ N(0, 1)
    mu_p(d) = m_p + (1 - d) * (mu_pg - m_p)      m_p = mean of mu_pg over II, III, IV
    s_p(d)  = sd_p * (1 + 2 d)

where d = difficulty in [0, 1]: d = 0 keeps the grade means apart, d = 1 gives all
grades the same mean and a threefold spread (no grade signal at all).

MGMT (grade IV only): methylated with probability 0.5, from its own random stream,
independent of everything else. Its only imaging correlate: for a methylated tumour
shift = -mgmt_effect on `oedema_mm`, `necrosis` and `enhancement` (less oedema, a
smaller necrotic core, a less complete enhancing ring: methylated glioblastomas are
reported with less oedema and fewer ring-enhancing necrotic patterns), i.e. a shift of
mgmt_effect standard deviations s_p(d); shift = 0 otherwise. The same z are drawn
whatever the status, so mgmt_effect = 0 means no signal at all. A perfect reading of
the three parameters separates the classes with d' = mgmt_effect * sqrt(3) (ignoring
the clipping), i.e. AUC = Phi(mgmt_effect * sqrt(3/2)): 0.73 at the default 0.5 (0.72
with the clipping, measured by a logistic regression on 6,000 draws); at 5
a methylated tumour is a solid, non-enhancing mass without oedema, an unmethylated one
a necrotic, ring-enhancing mass inside oedema.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special

from glioscope.synth.presets import GRADES

# name: (mean for II, III, IV), sd, lo, hi, meaning. Latent means below `lo` (enhancement
# and necrosis of grade II) make "none" the usual outcome while overlap stays possible.
PARAMETERS: dict[str, tuple[tuple[float, float, float], float, float, float, str]] = {
    "radius_mm": (
        (13.0, 16.0, 19.0),
        3.5,
        6.0,
        32.0,
        "mean radius of the tumour core (enhancing, non-enhancing, necrotic)",
    ),
    "oedema_mm": ((3.0, 8.0, 14.0), 3.5, 0.0, 30.0, "mean thickness of the peritumoural oedema beyond the core"),
    "irregularity": (
        (0.06, 0.16, 0.26),
        0.06,
        0.0,
        0.5,
        "relative amplitude of the smooth random modulation of the radius",
    ),
    "enhancement": (
        (-0.5, 0.35, 0.9),
        0.2,
        0.0,
        1.0,
        "fraction of the outer rim that enhances (0 none, 1 complete ring)",
    ),
    "necrosis": ((-0.3, 0.05, 0.7), 0.12, 0.0, 0.85, "radius of the necrotic core as a fraction of the tumour radius"),
    "heterogeneity": (
        (0.04, 0.10, 0.16),
        0.04,
        0.0,
        0.4,
        "relative amplitude of the intensity texture inside the tumour",
    ),
    "mass_effect": (
        (0.15, 0.35, 0.6),
        0.15,
        0.0,
        1.0,
        "fraction of the core's volume pushed into the anatomy around it",
    ),
}
MGMT_PARAMETERS = ("oedema_mm", "necrosis", "enhancement")
RIM_MM = (4.0, 8.0)  # thickness of the enhancing zone, uniform, independent of grade
NOISE_SPACING_MM = 9.0  # correlation length of the shape and patchiness noise
TEXTURE_SPACING_MM = 5.0


def distributions(difficulty: float) -> dict[str, dict]:
    """The per-grade mean and sd of every parameter at this difficulty (for synth.json)."""
    out = {}
    for name, (means, sd, lo, hi, meaning) in PARAMETERS.items():
        common = float(np.mean(means))
        out[name] = {
            "meaning": meaning,
            "mean": {g: round(common + (1 - difficulty) * (m - common), 4) for g, m in zip(GRADES, means)},
            "sd": round(sd * (1 + 2 * difficulty), 4),
            "clip": [lo, hi],
        }
    return out


def sample_parameters(
    grade: str, rng: np.random.Generator, difficulty: float, mgmt_effect: float, methylated: bool | None
) -> dict[str, float]:
    """Draw one tumour's parameters; the draws do not depend on grade or MGMT status."""
    z = rng.standard_normal(len(PARAMETERS))
    rim = rng.uniform(*RIM_MM)
    index = GRADES.index(grade)
    values = {}
    for (name, (means, sd, lo, hi, _)), z_p in zip(PARAMETERS.items(), z):
        common = float(np.mean(means))
        mean = common + (1 - difficulty) * (means[index] - common)
        shift = -mgmt_effect if (methylated and name in MGMT_PARAMETERS) else 0.0
        values[name] = float(np.clip(mean + sd * (1 + 2 * difficulty) * (z_p + shift), lo, hi))
    values["rim_mm"] = float(rim)
    return values


def smooth_noise(rng: np.random.Generator, shape, correlation_mm: float, voxel: float) -> np.ndarray:
    """Unit-variance smooth random field (Gaussian-filtered white noise) on a box of the grid."""
    field = ndimage.gaussian_filter(
        rng.standard_normal(shape, dtype=np.float32), correlation_mm / voxel / 2, mode="wrap"
    )
    return field / max(float(field.std()), 1e-6)


def _step(signed_mm: np.ndarray, voxel: float) -> np.ndarray:
    """Soft inside-indicator of a boundary (signed distance > 0 inside), one voxel wide."""
    return np.clip(signed_mm / voxel + 0.5, 0, 1).astype(np.float32)


@dataclass
class Compartments:
    """Tumour fractions inside a box of the grid (`box` = slices into the full volume)."""

    box: tuple[slice, slice, slice]
    necrosis: np.ndarray
    non_enhancing: np.ndarray
    enhancing: np.ndarray
    oedema_zone: np.ndarray  # where oedema would be; the tissue decides how much
    texture: np.ndarray


def compartments(
    params: dict[str, float], centre_mm: np.ndarray, affine: np.ndarray, shape, voxel: float, rng: np.random.Generator
) -> Compartments:
    """Rasterise the tumour's compartments around `centre_mm` (RAS) on the grid."""
    radius = params["radius_mm"]
    reach = radius * (1 + 3 * params["irregularity"]) + 1.5 * params["oedema_mm"] + 2 * voxel
    box, points = _box(centre_mm, reach, affine, shape)
    offset = points - centre_mm
    r = np.sqrt((offset**2).sum(-1))
    # Irregularity: a smooth random field modulates the local radius (lobulated margins).
    local = radius * np.maximum(1 + params["irregularity"] * smooth_noise(rng, r.shape, NOISE_SPACING_MM, voxel), 0.3)
    rho = r / local
    core = _step(local - r, voxel)
    necrosis = _step((params["necrosis"] - rho) * local, voxel) if params["necrosis"] > 0 else np.zeros_like(core)
    rim_inner = max(params["necrosis"], 1 - params["rim_mm"] / radius)
    rim_zone = np.clip(core - _step((rim_inner - rho) * local, voxel), 0, 1)
    # Patchy enhancement: the rim enhances where a smooth uniform field is below the fraction.
    patch_u = special.ndtr(smooth_noise(rng, r.shape, NOISE_SPACING_MM * 0.7, voxel))
    enhancing = rim_zone * np.clip((params["enhancement"] - patch_u) / 0.08 + 0.5, 0, 1)
    non_enhancing = np.clip(core - necrosis - enhancing, 0, 1)
    oedema_reach = local + params["oedema_mm"] * np.maximum(
        1 + 0.6 * smooth_noise(rng, r.shape, NOISE_SPACING_MM, voxel), 0
    )
    # Oedema is densest next to the tumour and thins out towards its margin.
    falloff = 1 - 0.5 * np.clip((r - local) / max(params["oedema_mm"], voxel), 0, 1)
    oedema_zone = np.clip(_step(oedema_reach - r, voxel) - core, 0, 1) * falloff
    texture = params["heterogeneity"] * smooth_noise(rng, r.shape, TEXTURE_SPACING_MM, voxel)
    return Compartments(
        box, necrosis, non_enhancing.astype(np.float32), enhancing.astype(np.float32), oedema_zone, texture
    )


def _box(centre_mm: np.ndarray, reach_mm: float, affine: np.ndarray, shape) -> tuple[tuple[slice, ...], np.ndarray]:
    """Index box of the grid within `reach_mm` of the centre, and its voxels' RAS coordinates."""
    inverse = np.linalg.inv(affine)
    centre_vox = inverse[:3, :3] @ centre_mm + inverse[:3, 3]
    half = reach_mm / np.abs(np.diag(affine)[:3])
    low = np.clip(np.floor(centre_vox - half).astype(int), 0, np.array(shape))
    high = np.clip(np.ceil(centre_vox + half).astype(int) + 1, 0, np.array(shape))
    box = tuple(slice(a, b) for a, b in zip(low, high))
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(low, high)], indexing="ij"), -1)
    return box, (grid @ affine[:3, :3].T + affine[:3, 3]).astype(np.float32)


def displace(
    tissues: dict[str, np.ndarray],
    params: dict[str, float],
    centre_mm: np.ndarray,
    affine: np.ndarray,
    depth_mm: np.ndarray,
) -> None:
    """Mass effect: push the anatomy radially away from the centre, in place.

    Tissue found at radius r came from r0 = cbrt(r^3 - k R^3) (a shell conserving
    volume); the displacement fades over a few centimetres and vanishes at the brain
    surface, which the skull holds in place (sulci near the tumour are effaced instead).
    """
    k, radius = params["mass_effect"], params["radius_mm"]
    if k <= 0:
        return
    fade, surface = 25.0, 10.0
    box, points = _box(centre_mm, radius + 2 * fade, affine, depth_mm.shape)  # beyond: < 2% of it
    offset = points - centre_mm
    r = np.sqrt((offset**2).sum(-1)) + 1e-3
    r0 = np.cbrt(np.maximum(r**3 - k * radius**3, 0))
    weight = np.exp(-((np.maximum(r - radius, 0) / fade) ** 2)) * np.clip(depth_mm[box] / surface, 0, 1)
    shrink = (r - (r - r0) * weight) / r
    source_mm = centre_mm + offset * shrink[..., None]
    inverse = np.linalg.inv(affine)
    source_vox = np.moveaxis(source_mm @ inverse[:3, :3].T + inverse[:3, 3], -1, 0)
    for volume in tissues.values():
        volume[box] = ndimage.map_coordinates(volume, source_vox, order=1, mode="nearest", prefilter=False)
