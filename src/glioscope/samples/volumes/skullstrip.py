"""Skull stripping by registration to nilearn's MNI152 template, and telling whether a volume needs it.

`looks_stripped` (the "auto" heuristic; IXI volumes are stripped whatever it says): a volume counts
as skull-stripped when its foreground is brain-sized. The foreground is every voxel that
differs from a constant background (stripped volumes, zero-filled scans), or, over a noisy
background, every voxel above 10% of the way from the background level to the 99.5th
percentile (largest connected part); holes are filled; it is measured on the canonical volume
before resampling, every k-th voxel. Measured: stripped real volumes (BraTS 2015, 2021, 2023,
BrainLesion) 1,080-1,640 ml, the phantom's BraTS 1,570-2,000 ml; heads with skull and scalp:
the phantom's IXI 3,520-4,400 ml, the raw TCGA-FG-6692 3,150-3,220 ml (its 26 slices miss the
neck). Up to STRIPPED_MAX_ML counts as stripped. A scan that covers only a thin slab of the
head can look brain-sized; name skull_strip "mni" or "none" for such data.

`brain_mask` (skull_strip "mni"): nilearn ships the MNI152 template without a skull, which a
registration to a head cannot use as it is (mutual information then fits the brain to the
scalp). So a head template is made from it once: the brain, then shells as the phantom draws
them, in mm from the brain surface: CSF 0-2.5 (dark), skull 2.5-9 (dark) with marrow 4.5-7,
scalp 9-15 (bright, as fat is on T1). A similarity, then an affine transform (Mattes mutual
information, 8 mm then 4 mm levels, a fixed sampling seed) align it to the volume's reference
channel; the template's brain mask is carried over, thresholded at one half and dilated by
DILATE_MM. A volume that is already stripped is registered to the brain-only template instead.
This is a coarse strip (an affine fit, not BET): it removes scalp and skull but can leave some
orbital fat and meninges at the skull base, and can cut a brain deformed far from the template.
For exact masks, strip with a dedicated tool and give the stripped volumes.

A registration that fails raises StripError (the volume is then skipped, with the reason): an
error in SimpleITK, a brain scaled beyond SCALE_LIMITS of the template's volume, a mask with
less than MIN_MASK_ML in the field of view, or one lying less than MIN_INSIDE_HEAD inside the
head. Skipping rather than keeping the skull is deliberate: in a cohort where the healthy
subjects are the ones with skulls (IXI next to BraTS), a skull left on is a label in disguise.
"""

from __future__ import annotations

import functools

import numpy as np
import SimpleITK as sitk
import torchio as tio
from scipy import ndimage

STRIPPED_MAX_ML = 2500.0
DILATE_MM = 2.0
SCALE_LIMITS = (0.5, 2.0)
MIN_MASK_ML = 50.0
MIN_INSIDE_HEAD = 0.85
TEMPLATE_MM = 2
# Head shells of the registration template: (inner, outer) mm from the brain surface, intensity on a 0-1 T1 scale.
SHELLS = (((0.0, 2.5), 0.15), ((2.5, 9.0), 0.05), ((4.5, 7.0), 0.45), ((9.0, 15.0), 0.85))
_TEMPLATE_MARGIN_MM = 24
_SEED = 20240
_LEVELS_MM = (8.0, 4.0)
_HEURISTIC_MM = 3.0


class StripError(Exception):
    """The skull could not be stripped from this volume; the message says why."""


def foreground(data: np.ndarray) -> np.ndarray:
    """Voxels of the head (or of the brain, in a stripped volume): see the module docstring."""
    border = np.concatenate([data[[0, -1]].ravel(), data[:, [0, -1]].ravel(), data[:, :, [0, -1]].ravel()])
    values, counts = np.unique(border, return_counts=True)
    background = float(values[counts.argmax()])
    high = float(np.percentile(data, 99.5))
    tolerance = 1e-3 * max(high - background, 1e-6)
    if counts.max() >= 0.5 * border.size:  # a constant background (stripped, zero-filled)
        mask = np.abs(data - background) > tolerance
    else:
        level = float(np.median(border))
        mask = _largest(data > level + 0.1 * (high - level))
    return _filled(mask)


def foreground_ml(data: np.ndarray, spacing) -> float:
    """Volume of the foreground in ml; `spacing` in mm, one number or one per axis.

    Measured on every k-th voxel (about 3 mm apart), not on an interpolated grid: interpolation
    would spread a stripped volume's edge into its constant background and inflate it.
    """
    zooms = np.broadcast_to(np.asarray(spacing, float), (3,))
    strides = [max(1, round(_HEURISTIC_MM / zoom)) for zoom in zooms]
    sample = data[:: strides[0], :: strides[1], :: strides[2]]
    return float(foreground(sample).sum()) * float(np.prod(zooms * strides)) / 1000


def looks_stripped(data: np.ndarray, spacing) -> tuple[bool, float]:
    """(whether a canonical volume looks skull-stripped, its foreground in ml): the "auto" heuristic."""
    volume = foreground_ml(data, spacing)
    return volume <= STRIPPED_MAX_ML, volume


def brain_mask(image: tio.ScalarImage, has_skull: bool = True) -> np.ndarray:
    """Bool brain mask on the grid of `image` (a canonical, isotropic volume); StripError when it fails."""
    data = image.data[0].numpy()
    spacing = float(image.spacing[0])
    head = foreground(data)
    if not head.any():
        raise StripError("the volume has no foreground to register to the MNI152 template")
    template, probability = _templates()[0 if has_skull else 1], _templates()[2]
    fixed = sitk.Cast(image.as_sitk(), sitk.sitkFloat32)
    initial = _initial_transform(head, image.affine, template)
    try:
        transform = _register(fixed, template.as_sitk(), initial, spacing)
        warped = sitk.Resample(probability.as_sitk(), fixed, transform, sitk.sitkLinear, 0.0)
    except RuntimeError as exc:
        raise StripError(
            f"registration to the MNI152 template failed ({str(exc).strip().splitlines()[-1][:200]})"
        ) from None
    mask = tio.io.sitk_to_nib(warped)[0][0] >= 0.5
    _check(mask, head, spacing, transform)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    return outside <= DILATE_MM


def _check(mask: np.ndarray, head: np.ndarray, spacing: float, transform: sitk.Transform) -> None:
    matrix = np.array(transform.GetMatrix()).reshape(3, 3)
    scale = 1 / abs(np.linalg.det(matrix))  # the transform maps the volume onto the template
    low, high = SCALE_LIMITS
    if not low <= scale <= high:
        raise StripError(f"registration to the MNI152 template failed (the brain came out {scale:.2f} times its size)")
    volume = mask.sum() * spacing**3 / 1000
    if volume < MIN_MASK_ML:
        raise StripError(f"registration to the MNI152 template failed (only {volume:.0f} ml of brain in the volume)")
    inside = (mask & head).sum() / mask.sum()
    if inside < MIN_INSIDE_HEAD:
        raise StripError(
            f"registration to the MNI152 template failed ({1 - inside:.0%} of the brain mask lies outside the head)"
        )


def _register(fixed: sitk.Image, moving: sitk.Image, initial: sitk.Transform, spacing: float) -> sitk.AffineTransform:
    """A similarity fit at the coarse level, then an affine one at both levels; returns fixed -> moving."""
    shrinks = [max(1, round(level / spacing)) for level in _LEVELS_MM]
    similarity = _run(fixed, moving, initial, shrinks[:1], list(_LEVELS_MM[:1]), 0.2)
    affine = sitk.AffineTransform(3)
    affine.SetCenter(similarity.GetCenter())
    affine.SetMatrix(similarity.GetMatrix())
    affine.SetTranslation(similarity.GetTranslation())
    return _run(fixed, moving, affine, shrinks, list(_LEVELS_MM), 0.1)


def _run(fixed, moving, initial, shrinks: list[int], sigmas: list[float], sampling: float):
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(sampling, _SEED)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-2, numberOfIterations=100, relaxationFactor=0.6, gradientMagnitudeTolerance=1e-5
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(shrinks)
    method.SetSmoothingSigmasPerLevel(sigmas)
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(initial, inPlace=False)
    result = method.Execute(fixed, moving)
    if isinstance(result, sitk.CompositeTransform):
        result = result.GetNthTransform(0)
    return type(initial)(result)


def _initial_transform(head: np.ndarray, affine: np.ndarray, template: tio.ScalarImage) -> sitk.Similarity3DTransform:
    """Put the template's crown on the volume's: the top of the head and the centre of the 20-70 mm below it.

    Centres of mass mislead here: the neck and face of a scan have no counterpart in the template.
    """
    subject_point = _crown(head, affine)
    template_point = _crown(template.data[0].numpy() > 0.02, template.affine)
    to_lps = np.array([-1.0, -1.0, 1.0])
    transform = sitk.Similarity3DTransform()
    transform.SetCenter(((subject_point - [0, 0, 60]) * to_lps).tolist())  # about the middle of the brain
    transform.SetTranslation(((template_point - subject_point) * to_lps).tolist())
    return transform


def _crown(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """RAS point at the top of a canonical mask, centred on the slab 20 to 70 mm below it."""
    spacing = float(np.linalg.norm(affine[:3, 2]))
    top = int(np.nonzero(mask.any(axis=(0, 1)))[0].max())
    slab = mask[:, :, max(0, top - int(70 / spacing)) : max(1, top - int(20 / spacing))]
    if not slab.any():
        slab = mask[:, :, : top + 1]
    xs, ys, _ = np.nonzero(slab)
    return (affine @ np.array([xs.mean(), ys.mean(), top, 1.0]))[:3]


@functools.lru_cache(maxsize=1)
def _templates() -> tuple[tio.ScalarImage, tio.ScalarImage, tio.ScalarImage]:
    """(head template, brain-only template, brain probability) at TEMPLATE_MM, made once per process."""
    from nilearn import datasets  # heavy import (scikit-learn): only when stripping

    t1 = datasets.load_mni152_template(resolution=1)
    mask = datasets.load_mni152_brain_mask(resolution=1)
    brain_1mm = ndimage.binary_fill_holes(mask.get_fdata() > 0.5).astype(np.float32)
    pad = _TEMPLATE_MARGIN_MM
    brain = _block_mean(np.pad(brain_1mm, pad), TEMPLATE_MM)
    t1_data = _block_mean(np.pad(t1.get_fdata(dtype=np.float32) * brain_1mm, pad), TEMPLATE_MM)
    affine = t1.affine.copy()
    affine[:3, 3] -= pad * np.diag(affine)[:3]
    affine = affine @ np.diag([TEMPLATE_MM, TEMPLATE_MM, TEMPLATE_MM, 1.0])
    affine[:3, 3] += (TEMPLATE_MM - 1) / 2 * np.diag(t1.affine)[:3]  # a block's centre
    inside = brain >= 0.5
    distance = np.where(inside, 0.0, ndimage.distance_transform_edt(~inside, sampling=TEMPLATE_MM) - TEMPLATE_MM / 2)
    head = t1_data.copy()
    for (inner, outer), value in SHELLS:
        head[(distance > inner) & (distance <= outer) & ~inside] = value
    images = [tio.ScalarImage(tensor=array[None].astype(np.float32), affine=affine) for array in (head, t1_data, brain)]
    return images[0], images[1], images[2]


def _block_mean(volume: np.ndarray, factor: int) -> np.ndarray:
    pad = [(0, -n % factor) for n in volume.shape]
    volume = np.pad(volume, pad)
    nx, ny, nz = (n // factor for n in volume.shape)
    return volume.reshape(nx, factor, ny, factor, nz, factor).mean(axis=(1, 3, 5))


def _largest(mask: np.ndarray) -> np.ndarray:
    return largest_part(mask, connectivity=1)


def largest_part(mask: np.ndarray, connectivity: int = 3) -> np.ndarray:
    """The largest connected part of a 3D mask (connectivity 3: voxels touching at a corner are connected)."""
    labels, count = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, connectivity))
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == sizes.argmax()


def _filled(mask: np.ndarray) -> np.ndarray:
    """Holes filled in 3D and in each axial slice (a head is open at the neck)."""
    mask = ndimage.binary_fill_holes(mask)
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    return mask
