"""A model applied to an uploaded study, as `glioscope predict` applies it, plus what the viewer shows.

The run (glioscope.trained.TrainedRun, kept loaded by ModelCache) predicts the study as
`glioscope predict` does, whose JSON the result repeats (glioscope.predict.describe; a test
compares the two), with each fold's own patient-level probabilities added. The viewer gets a
deep model's input (the slices or volume after preprocessing, as uint8) and the Grad-CAM of the
ensemble's predicted class: each fold model's map (glioscope.evaluate.gradcam; an SDL pair's
first net) averaged over the folds. A radiomics model's input is its features: no viewer. A deep-feature
attention model's patients list their most attended slices (glioscope.predict), each with a thumbnail here.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glioscope.errors import GlioscopeError
from glioscope.explain import study_maps, to_nifti_bytes
from glioscope.explain.cam import ensemble_cam
from glioscope.predict import describe
from glioscope.report.figures import grey_png
from glioscope.report.html import data_uri
from glioscope.rundir import stamp
from glioscope.samples import SampleSet
from glioscope.serve.study import StudyView, study_view
from glioscope.trained import TrainedRun


@dataclass
class Viewer:
    """What the canvas viewer draws (uint8 images (channels, *shape), an optional uint8 map (*shape); empty for a model
    whose input is no image), and the study at its own resolution for NiiVue (glioscope.serve.study)."""

    meta: dict
    image: bytes
    cam: bytes | None
    study: StudyView | None = None


class ViewerStore:
    """The last few studies' viewer data, in memory only, by an unguessable token."""

    def __init__(self, size: int = 8):
        self._items: OrderedDict[str, Viewer] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def add(self, viewer: Viewer) -> str:
        token = secrets.token_urlsafe(16)
        viewer.meta["token"] = token
        with self._lock:
            self._items[token] = viewer
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return token

    def get(self, token: str) -> Viewer | None:
        with self._lock:
            return self._items.get(token)


class ModelCache:
    """Trained runs by folder, their fold models kept loaded, opened again (a package: checked again against its
    manifest) when any of its files changes; a few at a time. An altered package is refused, never accepted."""

    def __init__(self, size: int = 4):
        self._items: OrderedDict[tuple, TrainedRun] = OrderedDict()
        self._size = size

    def get(self, run_dir: Path) -> TrainedRun:
        key = (str(Path(run_dir).resolve()), stamp(run_dir))
        if key not in self._items:
            self._items[key] = TrainedRun(run_dir)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        self._items.move_to_end(key)
        return self._items[key]


def predict_study(
    run_dir: Path, study: Path, mask: Path | None = None, models: ModelCache | None = None, sets=None
) -> tuple[dict, Viewer | None]:
    """(JSON-ready result: the ensemble as `glioscope predict` gives it (with its prediction sets at `sets`' level),
    each fold's, notes, timing; viewer data, None for a model whose input is not an image)."""
    started = time.perf_counter()
    run = (models or ModelCache()).get(run_dir)
    prediction = run.predict_study(study, mask)
    predicted = time.perf_counter()
    result = {
        "recipe": run.recipe.name,
        "classes": run.class_names,
        "samples_kind": prediction.inputs.kind,
        **describe(run, prediction, folds=True, sets=sets),
    }
    _thumbnails(result["patients"], prediction)
    viewer, first = None, result["patients"][0]["prediction"]
    if isinstance(prediction.inputs, SampleSet):
        classes = np.full(len(prediction.inputs), run.class_names.index(first), np.int64)
        cam, cam_note = ensemble_cam(run, prediction.inputs, classes)
        if cam is not None and cam.max() <= 0:
            cam_note = "the Grad-CAM is flat (zero everywhere): the overlay shows nothing"
        if cam_note:
            result["notes"].append(cam_note)
        viewer = _viewer(prediction.inputs, cam, first)
    if result["samples_kind"] != "radiomics":
        study, study_notes = _study(run, prediction, run.class_names.index(first))
        result["notes"] += [n for n in study_notes if n not in result["notes"]]
        if study is not None:
            viewer = viewer or Viewer({"layout": None}, b"", None)
            viewer.study, viewer.meta["study"] = study, study.meta
    result["timing"] = {
        "predict_s": round(predicted - started, 3),
        "gradcam_s": round(time.perf_counter() - predicted, 3),
    }
    return result, viewer


def _study(run, prediction, class_index: int) -> tuple[StudyView | None, list[str]]:
    """The first study at its own resolution with the map on its grid (glioscope.explain), and notes on why not."""
    notes: list[str] = []
    try:
        found = study_maps(run, prediction.inputs, class_index, prediction=prediction, notes=notes)
    except GlioscopeError as exc:
        return None, [f"the study cannot be shown at its own resolution: {exc}"]
    return (study_view(found[0], to_nifti_bytes) if found else None), notes


def _thumbnails(entries: list[dict], prediction) -> None:
    """Each most attended slice's picture (where the method gives one) as a PNG data URI, "thumbnail"."""
    for entry, patient in zip(entries, prediction.patients()):
        for shown, found in zip(entry.get("attention") or [], patient.attention or []):
            if found.get("image") is not None:
                shown["thumbnail"] = data_uri(grey_png(found["image"]))


def _to_uint8(array: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """An array scaled from its own range onto 0..255, and that range (for the window and level read-out)."""
    low, high = float(np.min(array)), float(np.max(array))
    if high <= low:
        return np.zeros(array.shape, np.uint8), [low, high]
    return np.clip(np.round((array - low) / (high - low) * 255), 0, 255).astype(np.uint8), [low, high]


def _viewer(samples, cam: np.ndarray | None, cam_class: str) -> Viewer:
    arrays = np.asarray(samples.arrays)
    if samples.kind == "volumes":  # (1, C, D, H, W): three planes of the one volume
        image, maps, layout = arrays[0], None if cam is None else cam[0], "volume"
        channels = samples.settings.channels
        names = [channels] if isinstance(channels, str) else list(channels)
        labels = []
    else:  # (N, C, H, W): a stack of slices, one plane
        image, maps, layout = np.moveaxis(arrays, 1, 0), cam, "stack"
        channels = getattr(samples.settings, "channels", None)
        names = (
            list(channels) if isinstance(channels, (list, tuple)) else [f"channel {k}" for k in range(image.shape[0])]
        )
        labels = [str(samples.describe(i).get("slice_index", i)) for i in range(len(samples))]
    if image.shape[0] > 1 and all(np.array_equal(image[0], c) for c in image[1:]):
        image, names = image[:1], ["grey (the channels are one image repeated)"]
    scaled = [_to_uint8(channel) for channel in image]
    data = np.ascontiguousarray(np.stack([s for s, _ in scaled]))
    meta = {
        "layout": layout,
        "shape": list(data.shape[1:]),
        "channels": names[: len(scaled)],
        "ranges": [r for _, r in scaled],
        "labels": labels,
        "cam": maps is not None,
        "cam_class": cam_class,
        "spacing_mm": getattr(samples.settings, "spacing", None) if layout == "volume" else None,
    }
    cam_bytes = None if maps is None else np.clip(np.round(maps * 255), 0, 255).astype(np.uint8).tobytes()
    return Viewer(meta, data.tobytes(), cam_bytes)
