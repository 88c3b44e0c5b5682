"""The uploaded study at its own resolution, with the Grad-CAM on its grid, as NIfTI for NiiVue on the Predict page.

glioscope.explain gives the study's image and the map resampled onto it (StudyMap); this module turns one into
what the page loads: the image and the map as gzip NIfTI (held by ViewerStore, served under its token) and the
figures the page needs (shape, spacing, the voxel to open at, the ranked slices of an attention model). A 2D
image is written as one axial slice whose voxel axes follow the picture (columns left to right, rows top to
bottom), so that NiiVue draws it as the file shows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np

from glioscope.report.html import esc


@dataclass
class StudyView:
    """What NiiVue loads: the study and its map as gzip NIfTI, and the page's figures about them."""

    meta: dict
    image: bytes
    cam: bytes | None


def as_displayed(found):
    """A 2D StudyMap with its axes as NiiVue draws an axial slice: (columns, rows, 1), rows downwards."""
    if found.image.ndim == 3 and not (found.image.dtype == np.uint8 and found.image.shape[-1] == 3):
        return found  # a volume: NiiVue places it by its own affine
    rows = found.image.shape[0]
    sx, sy = float(found.affine[1, 1]) or 1.0, float(found.affine[0, 0]) or 1.0  # column and row spacing
    affine = np.diag([sx, -sy, 1.0, 1.0])
    affine[1, 3] = (rows - 1) * sy  # the first row at the top
    image = np.swapaxes(found.image, 0, 1)[:, :, None]  # (cols, rows, 1[, 3])
    cam = None if found.cam is None else np.swapaxes(found.cam, 0, 1)[:, :, None]
    focus = None if found.focus_voxel is None else (int(found.focus_voxel[1]), int(found.focus_voxel[0]), 0)
    return replace(found, image=image, affine=affine, cam=cam, focus_voxel=focus)


def study_view(found, to_nifti_bytes) -> StudyView:
    """The view of one StudyMap; `to_nifti_bytes` is glioscope.explain's writer."""
    shown = as_displayed(found)
    image = np.asarray(shown.image)
    spatial = list(image.shape[:3])
    spacing = [round(float(v), 4) for v in np.linalg.norm(np.asarray(shown.affine)[:3, :3], axis=0)]
    cam = None if shown.cam is None else np.asarray(shown.cam, np.float32)
    focus = shown.focus_voxel
    if focus is None and cam is not None and cam.max() > 0:
        focus = tuple(int(i) for i in np.unravel_index(int(np.argmax(cam)), cam.shape))
    meta = {
        "kind": "volume" if found.image.ndim == 3 and spatial[2] > 1 else "image",
        "shape": spatial,
        "spacing_mm": spacing,
        "sequence": shown.sequence,
        "cam": cam is not None,
        "cam_class": shown.cam_class,
        "cam_max": None if cam is None else float(cam.max()),
        "focus_voxel": None if focus is None else [int(i) for i in focus],
        "ranked_slices": [
            {"slice": int(s["slice"]), "axis": s.get("axis"), "weight": float(s["weight"])}
            for s in (shown.ranked_slices or [])
            if s.get("slice") is not None
        ],
        "rgb": image.dtype == np.uint8 and image.ndim == 4,
    }
    return StudyView(meta, to_nifti_bytes(shown, "image"), None if cam is None else to_nifti_bytes(shown, "cam"))


def study_panel(viewer: dict, niivue_missing: str | None, attended: str = "") -> str:
    """The result page's images: NiiVue over the study (glioscope.serve.static.study_viewer) when the app has it and
    the browser has WebGL 2, else the canvas viewer over the model's input (static/viewer.js), saying why."""
    study = viewer.get("study")
    meta = json.dumps(viewer).replace("<", "\\u003c")
    parts = ['<section class="viewer-panel" id="images"><h2>Images</h2>']
    if study and niivue_missing is None:
        size = "×".join(map(str, study["shape"][: 3 if study["kind"] == "volume" else 2]))
        spacing = " × ".join(f"{v:g}" for v in study["spacing_mm"][: 3 if study["kind"] == "volume" else 2])
        what = f"the Grad-CAM of {esc(study['cam_class'])} resampled onto its grid" if study["cam"] else "no map"
        parts.append(
            f'<p class="muted" id="study-caption">The study as acquired{" (" + esc(study["sequence"]) + ")" if study["sequence"] else ""}: '
            f"{size} voxels of {spacing} mm, in NiiVue, with {what}. Right-drag: window and level (or pan, as chosen); "
            "the wheel scrolls the slices; click to move the crosshair.</p>"
        )
        if study["ranked_slices"]:
            buttons = "".join(
                f'<li><button type="button" class="ranked-slice" data-slice="{s["slice"]}" data-axis="{esc(s["axis"] if s["axis"] is not None else 2)}">slice #{s["slice"]} · '
                f"{s['weight']:.3f}</button></li>"
                for s in study["ranked_slices"]
            )
            parts.append(
                f'<p>Slices the attention weighed most (click to show one):</p><ol id="ranked-slices">{buttons}</ol>'
            )
    elif study:
        parts.append(
            f'<p class="muted" id="niivue-missing">The study at its own resolution is shown in NiiVue, which this '
            f"installation lacks ({esc(niivue_missing)}). Below: the model's input, after preprocessing.</p>"
        )
    niivue = "1" if study and niivue_missing is None else "0"
    parts += [
        f'<div id="viewer" data-niivue="{niivue}"></div>',
        f'<script type="application/json" id="viewer-meta">{meta}</script>',
        attended,
        "</section>",
    ]
    return "\n".join(parts)
