"""PyRadiomics features inside each patient's tumour mask, cached by file stamps and computed over processes.

Per patient: shape features once, from the first channel's mask, and the other feature
classes on every channel (named <channel>_<class>_<feature>, e.g. T1c_glcm_Contrast), with
PyRadiomics' own extractor and the recipe's settings. A volume is read with SimpleITK (its
geometry kept; a NIfTI header over the input limits, glioscope.io.limits, is refused first); 2D images are stacked in slice order into a volume with features.spacing_2d as
voxel size. A result (features, or the reason a patient cannot be featurised: an empty mask,
too few voxels, an unreadable file) is kept in the cache under a key made of the settings and
every file's path, size and modification time, so a later run reads it instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from glioscope.errors import InputError
from glioscope.io import nifti
from glioscope.io.parallel import map_files
from glioscope.radiomics.inputs import Channel, PatientInput
from glioscope.util import atomic, extras

CACHE_VERSION = 2
# Starting worker processes costs a few seconds; a patient takes about 0.2 s per channel on the phantom.
PARALLEL_MIN_PATIENTS = 24
CROP_MARGIN = 4  # voxels kept around the mask's box (texture matrices and resampling see no further)


def require_pyradiomics() -> str:
    """PyRadiomics' version; MissingExtra saying how to install it when it is missing."""
    return str(extras.require("radiomics", "the radiomics recipes").__version__)


def extraction_settings(features, data) -> dict:
    """Everything a patient's features depend on besides its files (the cache key and the run folder's record)."""
    return {
        "pyradiomics": features.pyradiomics(),
        "classes": list(features.classes),
        "spacing_2d": list(features.spacing_2d),
        "mask_labels": list(data.mask_labels or []) or "non-zero",
        "min_voxels": data.min_voxels,
    }


def _stamp(path: str) -> list:
    stat = Path(path).stat()
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


def cache_key(patient: PatientInput, settings: dict, version: str) -> str | None:
    """The cache key of a patient's result; None when a file cannot be stat'ed (it is then read and reported)."""
    try:
        stamps = {p: _stamp(p) for p in patient.files()}
    except OSError:
        return None
    channels = [
        [c.name, c.kind, c.index, [stamps[p] for p in c.paths], [stamps.get(m) for m in c.masks]]
        for c in patient.channels
    ]
    text = json.dumps([CACHE_VERSION, version, settings, channels], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def extract_all(patients: list[PatientInput], features, data, progress: bool = True) -> tuple[dict, list[dict], dict]:
    """({patient: {feature: value}}, [{patient_id, reason}], counts {computed, cached}) for every patient."""
    version = require_pyradiomics()
    settings = extraction_settings(features, data)
    folder = data.cache_dir() / "radiomics"
    results, todo = {}, []
    for patient in patients:
        key = cache_key(patient, settings, version)
        cached = _read_cache(folder, key)
        if cached is not None:
            results[patient.patient_id] = cached
        else:
            todo.append((patient, settings, key))
    computed = map_files(
        _extract_one,
        todo,
        workers=data.workers,
        progress=progress,
        desc="radiomics",
        min_parallel=PARALLEL_MIN_PATIENTS,
    )
    for (patient, _, key), result in zip(todo, computed):
        results[patient.patient_id] = result
        if key is not None and result.get("cacheable", True):
            _write_cache(folder, key, result)
    values = {p: r["features"] for p, r in results.items() if "features" in r}
    skipped = [
        {"patient_id": p, "path": r.get("path", ""), "reason": r["reason"]}
        for p, r in results.items()
        if "features" not in r
    ]
    return values, skipped, {"computed": len(todo), "cached": len(patients) - len(todo)}


def _read_cache(folder: Path, key: str | None) -> dict | None:
    if key is None:
        return None
    path = folder / key[:2] / f"{key}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _write_cache(folder: Path, key: str, result: dict) -> None:
    try:
        atomic.write_json(folder / key[:2] / f"{key}.json", {k: v for k, v in result.items() if k != "cacheable"})
    except OSError:
        pass  # a read-only cache only costs time


# --- in the worker processes ------------------------------------------------------------------------

_EXTRACTORS: dict[str, object] = {}


def _extractor(settings: dict, classes: tuple[str, ...]):
    """A PyRadiomics extractor with `classes` enabled, made once per process and settings."""
    key = json.dumps([settings["pyradiomics"], classes], sort_keys=True)
    if key not in _EXTRACTORS:
        import radiomics
        from radiomics import featureextractor

        radiomics.setVerbosity(logging.ERROR)
        # Normalisation is done on the whole image before the crop (_prepare), as PyRadiomics does it.
        extractor = featureextractor.RadiomicsFeatureExtractor(**{**settings["pyradiomics"], "normalize": False})
        extractor.disableAllFeatures()
        for name in classes:
            extractor.enableFeatureClassByName(name)
        _EXTRACTORS[key] = extractor
    return _EXTRACTORS[key]


def _extract_one(task: tuple[PatientInput, dict, str | None]) -> dict:
    """One patient's features, or the reason there are none (never raises: map_files' rule)."""
    patient, settings, _ = task
    try:
        return {"features": _features(patient, settings)}
    except _Skip as skip:
        return {"reason": skip.reason, "path": skip.path}
    except InputError as exc:
        return {"reason": str(exc), "path": exc.path or "", "cacheable": False}
    except Exception as exc:  # PyRadiomics or SimpleITK on an odd file: the patient is left out with the reason
        return {
            "reason": f"feature extraction failed ({type(exc).__name__}: {exc})",
            "path": patient.channels[0].paths[0],
            "cacheable": False,
        }


class _Skip(Exception):
    """A patient that cannot be featurised for a reason in its data (cached, like features)."""

    def __init__(self, reason: str, path: str):
        super().__init__(reason)
        self.reason, self.path = reason, path


def _features(patient: PatientInput, settings: dict) -> dict[str, float]:
    classes = tuple(settings["classes"])
    fallback = next(m for c in patient.channels for m in c.masks if m)  # a channel without its own mask uses it
    values: dict[str, float] = {}
    for k, channel in enumerate(patient.channels):
        image, mask, voxels, mask_file = _read_channel(channel, fallback, settings)
        if voxels == 0:
            raise _Skip(f"the tumour mask is empty ({mask_file})", mask_file)
        if voxels < settings["min_voxels"]:
            raise _Skip(
                f"the tumour mask has {voxels} voxel(s), fewer than data.min_voxels "
                f"{settings['min_voxels']} ({mask_file})",
                mask_file,
            )
        wanted = tuple(c for c in classes if c != "shape" or k == 0)
        if not wanted:
            continue
        result = _extractor(settings, wanted).execute(image, mask, label=1)
        for name, value in result.items():
            if name.startswith("original_"):
                feature = name[len("original_") :]
                values[feature if feature.startswith("shape") else f"{channel.name}_{feature}"] = float(value)
    return values


def _read_channel(channel: Channel, fallback: str, settings: dict):
    """(image, binary mask, voxels in the mask, the mask's file) as SimpleITK images on one grid."""
    import SimpleITK as sitk

    labels = settings["mask_labels"]
    if channel.kind == "volume":
        mask_file = channel.masks[0] or fallback
        image = _read_volume(channel.paths[0], sitk)
        raw = _read_volume(mask_file, sitk)
        array = sitk.GetArrayFromImage(raw)
        inside = np.isin(array, labels) if isinstance(labels, list) else array != 0
        mask = sitk.GetImageFromArray(inside.astype(np.uint8))
        mask.CopyInformation(raw)
        image, mask = _prepare(sitk.Cast(image, sitk.sitkFloat32), mask, inside, settings, sitk)
        return image, mask, int(inside.sum()), mask_file
    pixels, inside = _stack(channel, labels)
    spacing = [float(s) for s in settings["spacing_2d"]]
    image, mask = sitk.GetImageFromArray(pixels), sitk.GetImageFromArray(inside.astype(np.uint8))
    for item in (image, mask):
        item.SetSpacing(spacing)
    image, mask = _prepare(image, mask, inside, settings, sitk)
    masks = [m for m in channel.masks if m]
    return image, mask, int(inside.sum()), f"{Path(masks[0]).parent}/*_mask" if masks else channel.paths[0]


def _prepare(image, mask, inside: np.ndarray, settings: dict, sitk, margin: int = CROP_MARGIN):
    """PyRadiomics' normalisation on the whole image, then both cropped to the mask's box plus a margin.

    The features are those of the uncropped images (PyRadiomics crops to the mask's box itself);
    the crop only spares its whole-image steps. Images on another grid than their mask are left
    whole, for PyRadiomics to resample the mask (correctMask).
    """
    options = settings["pyradiomics"]
    if options["normalize"]:
        image = sitk.Normalize(image) * float(options["normalizeScale"])
    same_grid = (
        image.GetSize() == mask.GetSize()
        and np.allclose(image.GetSpacing(), mask.GetSpacing())
        and np.allclose(image.GetOrigin(), mask.GetOrigin())
        and np.allclose(image.GetDirection(), mask.GetDirection())
    )
    if not same_grid or not inside.any():
        return image, mask
    where = np.nonzero(inside)  # (z, y, x); SimpleITK indexes (x, y, z)
    low = [max(0, int(w.min()) - margin) for w in where][::-1]
    high = [min(n, int(w.max()) + margin + 1) for w, n in zip(where, inside.shape)][::-1]
    box = tuple(slice(a, b) for a, b in zip(low, high))
    return image[box], mask[box]


def _read_volume(path: str, sitk):
    if nifti.is_nifti(Path(path)):
        nifti.check_size(path)  # SimpleITK would allocate what the header promises
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(path, f"cannot be read as a volume ({str(exc).strip().splitlines()[-1]})") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            path,
            f"expected a 3D single-channel volume, got {image.GetDimension()}D with "
            f"{image.GetNumberOfComponentsPerPixel()} component(s)",
        )
    return image


def _stack(channel: Channel, labels) -> tuple[np.ndarray, np.ndarray]:
    """2D images (and their masks) stacked in slice order: (slices, rows, cols) float32 and bool."""
    from glioscope.io.images import load_image

    planes, masks = [], []
    for path, mask_path in zip(channel.paths, channel.masks):
        pixels = load_image(path)
        if pixels.ndim == 3:
            if channel.index is not None:
                if channel.index >= pixels.shape[-1]:
                    raise InputError(
                        path,
                        f"has {pixels.shape[-1]} channel(s); channel {channel.index + 1} ({channel.name}) was expected",
                    )
                pixels = pixels[..., channel.index]
            else:
                pixels = pixels[..., :3].mean(axis=-1)
        planes.append(pixels.astype(np.float32))
        if mask_path:
            mask = load_image(mask_path)
            mask = mask.max(axis=-1) if mask.ndim == 3 else mask
            if mask.shape != pixels.shape:
                raise InputError(mask_path, f"mask {mask.shape} does not match its image {pixels.shape} ({path})")
            masks.append(np.isin(mask, labels) if isinstance(labels, list) else mask != 0)
        else:
            masks.append(np.zeros(pixels.shape, dtype=bool))
    shapes = {p.shape for p in planes}
    if len(shapes) > 1:
        raise InputError(channel.paths[0], f"the slices of {channel.name} differ in size ({sorted(shapes)})")
    return np.stack(planes), np.stack(masks)
