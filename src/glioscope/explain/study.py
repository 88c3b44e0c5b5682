"""StudyMap: a study at its own resolution and a model's explanation resampled onto it (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from glioscope.explain import geometry
from glioscope.explain.cam import ensemble_cam
from glioscope.io import nifti
from glioscope.io.study import Study, read_study
from glioscope.samples.slices import SliceSet
from glioscope.samples.slices.pixels import cut_grid
from glioscope.samples.volumes import VolumeSet


@dataclass
class StudyMap:
    """A study at its own resolution and a model's explanation resampled onto it.

    image: float32, (X, Y, Z) in the study file's voxel order (the first channel's file), or (rows, cols) for a
        2D image (colour reduced to grey). affine: voxel -> RAS mm, the file's own (identity for a 2D image).
    cam: float32 in [0, 1] of image's shape; None where the model has no map (radiomics, deep-feature attention).
    focus_voxel: the tumour mask's centroid when the study came with one, else the map's peak (inside the
        model's brain for a volume). ranked_slices: an attention model's slices, most weighed first, each
        {"slice": index along "axis" of image, "axis", "weight", "rank", "slice_id", ...}; [] otherwise.
    source_files: the files the image came from (a DICOM series' instance files in slice order).
    """

    image: np.ndarray
    affine: np.ndarray
    cam: np.ndarray | None
    cam_class: str
    focus_voxel: tuple[int, ...] | None
    ranked_slices: list[dict] = field(default_factory=list)
    sequence: str = ""
    source_files: list[str] = field(default_factory=list)
    patient_id: str = ""


def study_maps(
    run,
    study_samples,
    class_index: int | None = None,
    study: Study | None = None,
    prediction=None,
    notes: list[str] | None = None,
) -> list[StudyMap]:
    """One StudyMap per study item (volume, DICOM series or image) of the samples `run.study_inputs` made.

    class_index: the class the maps explain (None: each patient's predicted class). study: the Study the
    samples came from (its rows say which files a DICOM series has; read again from the sample table when
    None). prediction: `run.apply(study_samples)` when already made. Why a map could not be made is added to
    `notes`.
    """
    prediction = prediction if prediction is not None else run.apply(study_samples)
    names = list(run.class_names)
    patients = prediction.patients()
    predicted = {p.patient_id: int(np.argmax(p.probabilities)) for p in patients}
    ranked = {p.patient_id: p.ranked() or [] for p in patients}
    rows = {} if study is None else {str(r["path"]): r for r in study.frame.to_dict("records")}
    samples = study_samples
    if not isinstance(samples, (VolumeSet, SliceSet)):
        shown = getattr(samples, "samples", None)  # a deep-feature set embeds a SliceSet: shown without a map
        if isinstance(shown, SliceSet):
            classes = _classes(shown.table, predicted, class_index)
            return _slice_maps(shown, None, classes, names, rows, ranked)
        return []
    classes = _classes(samples.table, predicted, class_index)
    cams, why = ensemble_cam(run, samples, classes)
    if why and notes is not None:
        notes.append(why)
    if isinstance(samples, VolumeSet):
        return _volume_maps(samples, cams, classes, names, rows, ranked)
    return _slice_maps(samples, cams, classes, names, rows, ranked)


def _classes(table: pd.DataFrame, predicted: dict[str, int], class_index: int | None) -> np.ndarray:
    if class_index is not None:
        return np.full(len(table), int(class_index), np.int64)
    return np.array([predicted.get(str(p), 0) for p in table["patient_id"]], np.int64)


def _volume_maps(samples: VolumeSet, cams, classes, names, rows, ranked) -> list[StudyMap]:
    maps = []
    for n, row in enumerate(samples.table.to_dict("records")):
        source = _row(str(row["source_paths"]).split(" + ")[0], rows)
        image, affine, files = geometry.load_study_image(source)
        cam = brain = None
        if samples.grids is not None:
            grid = samples.grids[n]
            if cams is not None:
                cam = np.clip(geometry.onto_study(cams[n], grid, image.shape, affine), 0.0, 1.0)
            inside = (np.asarray(samples.volumes[n, 0]) > 0).astype(np.float32)
            brain = geometry.onto_study(inside, grid, image.shape, affine) >= 0.5
        mask = source.get("mask_path") or row.get("mask_path") or ""
        patient = str(row["patient_id"])
        maps.append(
            StudyMap(
                image,
                affine,
                cam,
                names[int(classes[n])],
                _focus(mask, cam, geometry.foreground(image, brain), image.shape, affine),
                ranked.get(patient, []),
                str(row["sequences"]).split("+")[0],
                files,
                patient,
            )
        )
    return maps


def _slice_maps(samples: SliceSet, cams, classes, names, rows, ranked) -> list[StudyMap]:
    table = samples.table.reset_index(drop=True)
    maps = []
    for _, group in table.groupby("item_id", sort=False):
        first = group.iloc[0]
        source = _row(str(first["source_path"]), rows)
        image, affine, files = geometry.load_study_image(source)
        grid, shown = _display(source, image.shape, affine, samples.settings.axis)
        cam = None
        if cams is not None:
            on_display = np.zeros(shown, np.float32)
            for i in group.index:
                at = 0 if len(image.shape) == 2 else int(table.at[i, "slice_index"])
                crop = table.at[i, "crop"] if isinstance(table.at[i, "crop"], str) else ""
                box = tuple(int(v) for v in crop.split(",")) if crop else geometry.pad_box(shown[1:])
                on_display[at] = np.maximum(on_display[at], geometry.slice_onto_display(cams[i], box, shown[1:]))
            if len(image.shape) == 2:
                cam = on_display[0]
            else:
                cam = geometry.onto_study(on_display, grid, image.shape, affine)
            cam = np.clip(cam, 0.0, 1.0)
        patient = str(first["patient_id"])
        attended = [_attended(a, grid, image.shape, affine) for a in ranked.get(patient, [])]
        maps.append(
            StudyMap(
                image,
                affine,
                cam,
                names[int(classes[group.index[0]])],
                _focus(source.get("mask_path") or "", cam, _grey_foreground(image, cam), image.shape, affine),
                [a for a in attended if a["source_path"] in ("", str(first["source_path"]))],
                str(first["sequence"]),
                files,
                patient,
            )
        )
    return maps


def _display(source: dict, shape: tuple[int, ...], affine: np.ndarray, axis: str):
    """(grid, shape) of the displayed stack the slice pipeline cut from this study (glioscope.samples.slices.pixels)."""
    if len(shape) == 2:
        return np.eye(4), (1, *shape)
    if source["kind"] == "volume":
        grid = cut_grid(affine, shape, axis)
    else:  # a series is shown as stored: (slice, row, column) is its (Z, Y, X)
        grid = affine[:, [2, 1, 0, 3]]
    to_study = np.linalg.inv(affine) @ grid
    return grid, tuple(int(shape[int(np.argmax(np.abs(to_study[:3, j])))]) for j in range(3))


def _attended(entry: dict, grid: np.ndarray, shape: tuple[int, ...], affine: np.ndarray) -> dict:
    """An attention model's ranked slice with its place in the study ("slice" along "axis")."""
    index = entry.get("slice_index")
    if len(shape) == 2 or index is None:
        where = {"axis": None, "slice": index}
    else:
        where = geometry.study_slice(grid, int(index), shape, affine)
    return {**where, "weight": entry.get("attention"), **entry, "source_path": str(entry.get("source_path", ""))}


def _grey_foreground(image: np.ndarray, cam) -> np.ndarray | None:
    """A slice study's foreground on the map's grid (a colour picture reduced to grey)."""
    grey = image.mean(axis=-1) if cam is not None and image.ndim == cam.ndim + 1 else image
    return geometry.foreground(grey) if cam is not None and grey.shape == cam.shape else None


def _focus(mask: str, cam, within, shape, affine) -> tuple[int, ...] | None:
    if mask:
        centroid = geometry.mask_centroid(mask, shape, affine)
        if centroid is not None:
            return centroid
    return geometry.peak(cam, within)


def _row(path: str, rows: dict[str, dict]) -> dict:
    """The study row of a sample's source file: from the Study when given, else read again."""
    if path in rows:
        return rows[path]
    found = Path(path)
    if found.is_dir():
        for row in read_study(found).frame.to_dict("records"):
            if str(row["path"]) == path:
                return row
    kind = "volume" if nifti.is_nifti(found) else "image"
    return {"kind": kind, "path": path, "files": "", "mask_path": ""}
