"""One study's channels to one preprocessed (C, D, H, W) array, with TorchIO (in a worker process).

The steps, per volume:
1. load each channel (NIfTI, or a DICOM series with its geometry) as a TorchIO image;
2. ToCanonical (RAS), then Resample the first channel to `spacing` mm isotropic (antialiased)
   and the other channels onto its grid (co-registered sequences share world coordinates); a grid
   that would be over the input limits (glioscope.io.limits) is refused before it is allocated;
3. the brain: the source's own foreground when it is skull-stripped, a registered MNI152 mask or
   a network's (`brain_nets`) when the skull is stripped here, the head's foreground when it is kept;
4. RescaleIntensity per channel: clip at `percentiles` of the brain (or head) voxels, scale to
   [0, 1]; a stripped volume is then set to exactly 0 outside the brain;
5. CropOrPad to `shape`, centred on the bounding box of the brain, padding with 0.
The scaling comes before the crop, unlike the usual order, so that a crop smaller than the
brain does not change the percentiles. Finally the RAS (x, y, z) tensor becomes (C, D, H, W):
D = z (inferior to superior), H = -y (anterior to posterior), W = -x (right to left).
The entry's meta keeps that final grid's affine, (D, H, W) indices to RAS mm ("grid", `grid_affine`):
TorchIO carries the affine through reorientation, resampling and CropOrPad, and the transposition
and flips are folded in, so a map on the model's grid can be put back on the study's own voxels.
"""

from __future__ import annotations

import math
import multiprocessing
from dataclasses import dataclass

import numpy as np
import torch
import torchio as tio

from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.io import dicom, limits, nifti
from glioscope.samples.volumes import brain_nets, cache, skullstrip
from glioscope.samples.volumes.settings import VolumeSettings
from glioscope.samples.entry_cache import reason_of, store

# Sequences whose contrast resembles the T1 template best: registration uses the first of them among the channels.
_REGISTRATION_SEQUENCES = ("T1", "T1c")
# Formats known to keep the whole head, stripped under "auto" whatever their foreground says. BraTS is
# not listed as stripped: its volumes are, and the heuristic agrees, but raw scans are also laid out
# as BraTS cases (the BrainLesion tutorial's TCGA-FG-6692 has its native-space head next to the stripped files).
HEAD_FORMATS = ("ixi",)
BRAIN = "brain"


@dataclass(frozen=True)
class ChannelSource:
    """One channel's file (a NIfTI volume, or a DICOM series folder with its slice files)."""

    kind: str  # volume | series
    path: str
    files: str = ""
    sequence: str = ""


@dataclass(frozen=True)
class VolumeTask:
    """Everything a worker needs for one volume: its channels, the settings, where to cache."""

    volume_id: str
    sources: tuple[ChannelSource, ...]
    settings: VolumeSettings
    source_format: str = ""
    cache_file: str = ""
    seconds: float = 0.0  # a guess at the preprocessing time, to decide whether a process pool pays off


def process(task: VolumeTask) -> dict | Skip:
    """The volume's entry {"volume": float16 (C, D, H, W), "meta": {...}}, cached when asked; or a Skip."""
    if multiprocessing.parent_process() is not None:
        _one_thread()  # one worker per core: threads within a worker would only compete
    first = task.sources[0].path
    try:
        entry = _process(task)
    except InputError as exc:  # a property of the files: cached, so not retried until they change
        entry = Skip(exc.path or first, reason_of(exc))
    except skullstrip.StripError as exc:
        entry = Skip(first, str(exc))
    except Exception as exc:  # noqa: BLE001 - a failure on this volume must not stop the others
        return Skip(first, f"cannot be preprocessed ({type(exc).__name__}: {str(exc)[:200]})")
    return store(cache.save, task.cache_file, entry)


def _process(task: VolumeTask) -> dict:
    images = [load_channel(source) for source in task.sources]
    subject, meta = preprocess(images, task.settings, [s.sequence for s in task.sources], task.source_format)
    return {"volume": to_array(subject).astype(np.float16), "meta": {**meta, "grid": grid_affine(subject).tolist()}}


def load_channel(source: ChannelSource) -> tio.ScalarImage:
    """A channel's voxels as a TorchIO image with its RAS affine; InputError naming the file when unusable."""
    if source.kind == "volume":
        data, affine = nifti.load_volume(source.path)
    elif source.kind == "series":
        pixels, geometry = dicom.load_series({"path": source.path, "files": source.files})
        if pixels.ndim != 3:
            raise InputError(source.path, f"expected a grey-level series, got pixel data of shape {pixels.shape}")
        data, affine = np.ascontiguousarray(pixels.transpose(2, 1, 0)), geometry.affine  # x, y, z = column, row, slice
    else:
        raise InputError(
            source.path, f"a {source.kind!r} row is not a volume; 3D models need NIfTI volumes or DICOM series"
        )
    if min(data.shape) < 2:
        raise InputError(source.path, f"has a single slice ({data.shape}); a 3D model needs a volume")
    return tio.ScalarImage(tensor=torch.from_numpy(np.ascontiguousarray(data, np.float32))[None], affine=affine)


def preprocess(
    images: list[tio.ScalarImage], settings: VolumeSettings, sequences: list[str] | None = None, source_format: str = ""
) -> tuple[tio.Subject, dict]:
    """The preprocessed TorchIO subject (channels "c0", "c1", ... and the "brain" label) and facts about it."""
    subject = canonical(images)
    reference = _reference_channel(sequences or [])
    original = subject[f"c{reference}"]  # judged before interpolation blurs a stripped edge
    looked_stripped, volume_ml = skullstrip.looks_stripped(original.data[0].numpy(), original.spacing)
    subject = _resample(subject, settings.spacing)
    meta = {"foreground_ml": round(volume_ml, 1), "looked_stripped": looked_stripped}
    sequence = sequences[reference] if sequences and reference < len(sequences) else ""
    brain, meta = _brain(subject, reference, settings, source_format, meta, sequence)
    subject.add_image(
        tio.LabelMap(tensor=torch.from_numpy(brain)[None].to(torch.uint8), affine=subject["c0"].affine), BRAIN
    )
    rescale = tio.RescaleIntensity(out_min_max=(0, 1), percentiles=settings.percentiles, masking_method=BRAIN)
    subject = rescale(subject)
    if meta["skull_stripped"]:
        for name in _channels(subject):
            subject[name].set_data(subject[name].data * torch.from_numpy(brain)[None])
    target = tuple(reversed(settings.shape))  # (x, y, z) = (W, H, D)
    subject = tio.CropOrPad(target, padding_mode=0, mask_name=BRAIN)(subject)
    return subject, meta


def canonical(images: list[tio.ScalarImage]) -> tio.Subject:
    """The channels as a subject ("c0", "c1", ...), each reoriented to RAS."""
    return tio.ToCanonical()(tio.Subject({f"c{i}": image for i, image in enumerate(images)}))


def resample(images: list[tio.ScalarImage], spacing: float) -> tio.Subject:
    """Canonical (RAS) channels on one isotropic grid: the first resampled to `spacing`, the others onto it."""
    return _resample(canonical(images), spacing)


def _resample(subject: tio.Subject, spacing: float) -> tio.Subject:
    count = len(subject.get_images(intensity_only=False))
    grid = [math.ceil(n * s / spacing) for n, s in zip(subject["c0"].spatial_shape, subject["c0"].spacing)]
    too_large = limits.current().problem(f"{count} channel(s) of {limits.dims(grid)} voxels", count * math.prod(grid))
    if too_large:
        raise InputError(
            None, f"refused before resampling: at data.volumes.spacing {spacing:g} mm it would be {too_large}"
        )
    first = tio.Resample(spacing, antialias=True)(tio.Subject(c0=subject["c0"]))["c0"]
    if count == 1:
        return tio.Subject(c0=first)
    others = tio.Subject({"c0": first, **{f"c{i}": subject[f"c{i}"] for i in range(1, count)}})
    return tio.Resample("c0", antialias=True)(others)


def _brain(subject: tio.Subject, reference: int, settings: VolumeSettings, source_format: str, meta: dict, sequence=""):
    """The brain mask on the subject's grid and how it was found: (mask, meta)."""
    image = subject[f"c{reference}"]
    data = image.data[0].numpy()
    stripped = meta["looked_stripped"] and source_format not in HEAD_FORMATS
    empty = [f"c{i}" for i in range(len(subject.get_images(intensity_only=True))) if not _has_signal(subject[f"c{i}"])]
    if empty:
        raise InputError(
            None, f"channel(s) {', '.join(empty)} hold no signal on the first channel's grid (not co-registered?)"
        )
    tool = brain_nets.tool_of(settings.skull_strip, stripped, sequence)
    if tool is not None:
        brain = brain_nets.brain_mask(tool, image, not stripped, sequence)
        return brain, {**meta, "skull_stripped": True, "skull_strip": tool}
    mask = np.zeros(data.shape, bool)
    for name in _channels(subject):  # any channel's signal counts: sequences differ at the brain's edge
        mask |= skullstrip.foreground(subject[name].data[0].numpy())
    if not mask.any():
        raise InputError(None, "has no foreground (a constant image)")
    kept = settings.skull_strip == "none" and not stripped
    return mask, {**meta, "skull_stripped": not kept, "skull_strip": "none" if kept else "source"}


def _has_signal(image: tio.ScalarImage) -> bool:
    data = image.data
    return bool(torch.isfinite(data).all()) and float(data.max() - data.min()) > 0


def _channels(subject: tio.Subject) -> list[str]:
    return [name for name in subject if name.startswith("c") and name[1:].isdigit()]


def _reference_channel(sequences: list[str]) -> int:
    for index, sequence in enumerate(sequences):
        if sequence in _REGISTRATION_SEQUENCES:
            return index
    return 0


def to_array(subject: tio.Subject) -> np.ndarray:
    """The channels as float32 (C, D, H, W) in the axis order of `VolumeSet` (see the module docstring)."""
    tensor = torch.cat([subject[name].data for name in _channels(subject)]).float()
    return np.ascontiguousarray(tensor.numpy()[:, ::-1, ::-1, :].transpose(0, 3, 2, 1))


def grid_affine(subject: tio.Subject) -> np.ndarray:
    """The 4 x 4 matrix from (D, H, W) indices of `to_array(subject)` to RAS mm."""
    affine = np.asarray(subject["c0"].affine, float)
    nx, ny, _ = subject["c0"].spatial_shape
    # to_array's [d, h, w] is the tensor's [nx - 1 - w, ny - 1 - h, d].
    to_xyz = np.array([[0, 0, -1, nx - 1], [0, -1, 0, ny - 1], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    return affine @ to_xyz


def scale_intensities(array: np.ndarray, mask: np.ndarray | None, percentiles: tuple[float, float]) -> np.ndarray:
    """One 3D array clipped at `percentiles` of its `mask` voxels (all without one) and scaled to [0, 1]."""
    mask = np.ones(array.shape, bool) if mask is None else mask
    subject = tio.Subject(
        image=tio.ScalarImage(tensor=torch.as_tensor(array, dtype=torch.float32)[None]),
        mask=tio.LabelMap(tensor=torch.as_tensor(mask.astype(np.uint8))[None]),
    )
    transform = tio.RescaleIntensity(out_min_max=(0, 1), percentiles=percentiles, masking_method="mask")
    return transform(subject)["image"].data[0].numpy()


def _one_thread() -> None:
    import SimpleITK as sitk

    torch.set_num_threads(1)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
