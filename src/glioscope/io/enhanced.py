"""Enhanced (multi-frame) MR: one file holding a whole stack, its geometry in functional groups.

An Enhanced MR Image (or one converted from classic slices) keeps each frame's position in its
per-frame functional groups (PlanePositionSequence), and its orientation and pixel spacing in the
shared or per-frame groups (PlaneOrientationSequence, PixelMeasuresSequence), not in the top-level
attributes a classic slice has. `frames_of` reads them: the stack's geometry and the frames' order
along the slice normal. A file whose frames are several stacks (StackID), several temporal
positions, several orientations, or several frames at one position (echoes, time points, b-values)
is refused with the reason: glioscope reads one stack per series, and flattening them would mix
images that are not neighbouring slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glioscope.errors import InputError
from glioscope.io import geometry

SPLIT_IT = "glioscope reads one stack per series; split the file first (dcm2niix does)"


@dataclass
class Frames:
    """A multi-frame file's stack: orientation, each frame's position (file order), the order along the normal."""

    orientation: list[float]
    positions: np.ndarray  # (frames, 3) ImagePositionPatient, in the file's order
    order: np.ndarray  # frame indices from the first slice along the normal to the last
    pixel_spacing: list[float] | None
    thickness: float | None

    @property
    def spacing(self) -> float | None:
        """The gap between neighbouring frames along the normal."""
        along = geometry.slice_positions(self.orientation, self.positions)
        return geometry.slice_spacing(np.sort(along))


def is_multiframe(ds) -> bool:
    """Whether a dataset holds several frames described by functional groups (an Enhanced or converted MR)."""
    return int(_number(ds.get("NumberOfFrames")) or 1) > 1 and (
        "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    )


def frames_of(ds) -> Frames | str:
    """The stack of a multi-frame dataset, or why it is not one stack (see the module docstring)."""
    count = int(_number(ds.get("NumberOfFrames")) or 1)
    shared = _first(ds.get("SharedFunctionalGroupsSequence"))
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    if len(per_frame) != count:
        return f"an Enhanced MR of {count} frames with {len(per_frame)} per-frame descriptions: its frames cannot be placed"
    content = [_first(frame.get("FrameContentSequence")) for frame in per_frame]
    for keyword, what in (("StackID", "stacks"), ("TemporalPositionIndex", "temporal positions")):
        values = {str(c.get(keyword)) for c in content if c is not None and c.get(keyword) is not None}
        if len(values) > 1:
            return f"an Enhanced MR holding {len(values)} {what} in its {count} frames: {SPLIT_IT}"
    orientations = [
        _numbers(_item(frame, shared, "PlaneOrientationSequence", "ImageOrientationPatient"), 6) for frame in per_frame
    ]
    positions = [
        _numbers(_item(frame, shared, "PlanePositionSequence", "ImagePositionPatient"), 3) for frame in per_frame
    ]
    if any(o is None for o in orientations) or any(p is None for p in positions):
        return f"an Enhanced MR whose {count} frames lack their orientation or position: they cannot be placed"
    if not np.allclose(orientations, orientations[0], atol=1e-3):
        return f"an Enhanced MR whose frames have different orientations (a localizer?): {SPLIT_IT}"
    along = geometry.slice_positions(orientations[0], positions)
    if len(set(np.round(along, 3))) < count:
        return (
            f"an Enhanced MR with several frames at one position ({len(set(np.round(along, 3)))} positions for "
            f"{count} frames: echoes, time points or b-values): {SPLIT_IT}"
        )
    measures = _first((per_frame[0].get("PixelMeasuresSequence") or (shared or {}).get("PixelMeasuresSequence")))
    spacing = _numbers(measures.get("PixelSpacing"), 2) if measures is not None else None
    thickness = _number(measures.get("SliceThickness")) if measures is not None else None
    return Frames(orientations[0], np.asarray(positions, float), np.argsort(along, kind="stable"), spacing, thickness)


def frame_order(path, dataset, count: int) -> np.ndarray:
    """The frames of a file along the slice normal (a classic file's as they are); InputError when not one stack."""
    if not is_multiframe(dataset):
        return np.arange(count)
    stack = frames_of(dataset)
    if isinstance(stack, str):
        raise InputError(path, stack)
    return stack.order


def stack_geometry(stack: Frames) -> tuple[tuple[float, float, float], np.ndarray]:
    """(x, y, z spacing in mm, RAS affine) of a stack's frames in `frame_order`."""
    dy, dx = (stack.pixel_spacing or [1.0, 1.0])[:2]
    row_dir, col_dir = np.array(stack.orientation[:3]), np.array(stack.orientation[3:])
    start, end = stack.positions[stack.order[0]], stack.positions[stack.order[-1]]
    step = (end - start) / max(len(stack.order) - 1, 1)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2], affine[:3, 3] = row_dir * dx, col_dir * dy, step, start
    spacing = float(np.linalg.norm(step)) or stack.thickness or 1.0
    return (dx, dy, spacing), np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def _first(sequence):
    return sequence[0] if sequence else None


def _item(frame, shared, sequence: str, keyword: str):
    for group in (frame, shared):
        found = _first(group.get(sequence)) if group is not None else None
        if found is not None and found.get(keyword) is not None:
            return found.get(keyword)
    return None


def _numbers(value, count: int) -> list[float] | None:
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count else None


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
