"""Grad-CAM (Selvaraju et al. 2017) for 2D and 3D classifiers, and overlay panels for reports.

The map of class c at a convolution layer with activations A_k is
ReLU(sum_k w_k A_k), where w_k is the spatial mean of d(logit_c)/dA_k. It is
upsampled to the input size and scaled to [0, 1] per image.

3D inputs are (N, C, D, H, W) with D the slice axis, as glioscope's 3D models
read them: a panel shows the axial (D), coronal (H) and sagittal (W) slices
through the maximum of the map.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from glioscope.errors import GlioscopeError

_CONV = (nn.Conv2d, nn.Conv3d)


def default_target_layer(model: nn.Module, member: int = 0) -> nn.Module:
    """The last Conv2d/Conv3d of the model's backbone (of member `member` for an SDL model).

    A model may name its own layer as `gradcam_layer` (when the last in module order is a shortcut's).
    """
    members = getattr(model, "members", None)
    if isinstance(members, nn.ModuleList):
        model = members[member]
    if isinstance(getattr(model, "gradcam_layer", None), nn.Module):
        return model.gradcam_layer
    scope = getattr(model, "backbone", model)
    convs = [m for m in scope.modules() if isinstance(m, _CONV)]
    if not convs:
        raise GlioscopeError(f"{type(model).__name__} has no Conv2d/Conv3d layer for Grad-CAM")
    return convs[-1]


def _owner(model: nn.Module, target_layer: nn.Module) -> nn.Module:
    """The network whose forward pass yields (N, classes) logits through `target_layer`."""
    members = getattr(model, "members", None)
    if isinstance(members, nn.ModuleList):
        for member in members:
            if any(m is target_layer for m in member.modules()):
                return member
        raise GlioscopeError("the Grad-CAM target layer belongs to none of the SDL members")
    return model


def _class_scores(logits: torch.Tensor, class_index) -> tuple[torch.Tensor, np.ndarray]:
    """The logit of the chosen class for every sample (argmax when None); one sigmoid output counts as binary."""
    n = logits.shape[0]
    if logits.ndim != 2:
        raise GlioscopeError(f"Grad-CAM needs (batch, classes) logits, got shape {tuple(logits.shape)}")
    if logits.shape[1] == 1:
        chosen = (logits[:, 0] > 0).long() if class_index is None else torch.as_tensor(class_index).long().expand(n)
        sign = chosen.to(logits.dtype) * 2 - 1  # class 0 of a sigmoid output grows as the logit falls
        return logits[:, 0] * sign, chosen.cpu().numpy()
    if class_index is None:
        chosen = logits.argmax(dim=1)
    else:
        chosen = torch.as_tensor(class_index, device=logits.device).long().expand(n)
    return logits.gather(1, chosen[:, None])[:, 0], chosen.cpu().numpy()


def grad_cam_with_classes(
    model: nn.Module, inputs: torch.Tensor, target_layer: nn.Module | None = None, class_index=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(maps, class explained per sample, softmax probabilities) for a batch."""
    if inputs.ndim not in (4, 5):
        raise GlioscopeError(f"Grad-CAM needs (N, C, H, W) or (N, C, D, H, W) inputs, got shape {tuple(inputs.shape)}")
    target_layer = target_layer if target_layer is not None else default_target_layer(model)
    network = _owner(model, target_layer)
    captured: dict[str, torch.Tensor] = {}

    def hook(_module, _args, output):
        activation = output if output.requires_grad else output.detach().requires_grad_(True)
        captured["activation"] = activation
        return activation.clone()  # an in-place ReLU after the layer must not overwrite what we read

    was_training = network.training
    network.eval()
    handle = target_layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = network(inputs)
            if "activation" not in captured:
                raise GlioscopeError("the Grad-CAM target layer was not used in the forward pass")
            scores, chosen = _class_scores(logits, class_index)
            (gradients,) = torch.autograd.grad(scores.sum(), captured["activation"])
    finally:
        handle.remove()
        network.train(was_training)
    activation = captured["activation"].detach()
    spatial = tuple(range(2, activation.ndim))
    weights = gradients.mean(dim=spatial, keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
    mode = "bilinear" if inputs.ndim == 4 else "trilinear"
    cam = F.interpolate(cam.float(), size=inputs.shape[2:], mode=mode, align_corners=False)[:, 0]
    flat = cam.reshape(cam.shape[0], -1)
    low, high = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    span = high - low
    flat = torch.where(span > 1e-12, (flat - low) / span.clamp_min(1e-12), torch.zeros_like(flat))
    with torch.no_grad():
        proba = torch.sigmoid(torch.cat([-logits, logits], 1)) if logits.shape[1] == 1 else logits.softmax(1)
    return flat.reshape(cam.shape).cpu().numpy(), chosen, proba.detach().cpu().numpy()


def grad_cam(
    model: nn.Module, inputs: torch.Tensor, target_layer: nn.Module | None = None, class_index=None
) -> np.ndarray:
    """Grad-CAM maps of shape (N, H, W) or (N, D, H, W), upsampled to the input, in [0, 1].

    class_index: None explains each sample's predicted class; an int (or one per sample) a chosen class.
    """
    return grad_cam_with_classes(model, inputs, target_layer, class_index)[0]


def _to_unit(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=float)
    low, high = np.percentile(image, [0.5, 99.5]) if image.size else (0.0, 1.0)
    if high <= low:
        return np.zeros_like(image)
    return np.clip((image - low) / (high - low), 0, 1)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45, colormap: str = "jet") -> np.ndarray:
    """The image in grey with the map in colour on top: (H, W, 3) uint8.

    image: (H, W), (H, W, 3) or (C, H, W) (channels are averaged); cam: (H, W) in [0, 1], resized if needed.
    """
    from matplotlib import colormaps

    image = np.asarray(image, dtype=float)
    if image.ndim == 3:
        image = (
            image.mean(axis=0) if image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3) else image.mean(axis=-1)
        )
    cam = np.asarray(cam, dtype=float)
    if cam.shape != image.shape:
        cam = F.interpolate(torch.as_tensor(cam)[None, None], size=image.shape, mode="bilinear", align_corners=False)[
            0, 0
        ].numpy()
    grey = _to_unit(image)[..., None].repeat(3, axis=-1)
    colour = colormaps[colormap](np.clip(cam, 0, 1))[..., :3]
    blended = (1 - alpha) * grey + alpha * colour
    return np.clip(np.round(blended * 255), 0, 255).astype(np.uint8)


def _views(volume: np.ndarray, cam: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Axial, coronal and sagittal slices of (D, H, W) arrays through the map's maximum."""
    d, h, w = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return [
        (f"axial {d}", volume[d], cam[d]),
        (f"coronal {h}", volume[:, h, :], cam[:, h, :]),
        (f"sagittal {w}", volume[:, :, w], cam[:, :, w]),
    ]


def gradcam_panels(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    target_layer: nn.Module | None = None,
    per_class: int = 3,
    dpi: int = 90,
) -> list[tuple[str, bytes]]:
    """One PNG per true class (or one for all when labels are None) with up to `per_class` examples.

    Each example shows the image and its overlay (2D) or three orthogonal overlays
    through the map's maximum (3D), titled with its name and the predicted class.
    Returns [(title, png bytes)], the form write_report(gradcam_panels=...) takes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cams, chosen, proba = grad_cam_with_classes(model, inputs, target_layer)
    n_classes = proba.shape[1]
    class_names = list(class_names) if class_names else [str(k) for k in range(n_classes)]
    names = list(names) if names is not None else [f"#{i}" for i in range(len(inputs))]
    images = inputs.detach().float().mean(dim=1).cpu().numpy()  # channels averaged for display
    groups = {None: list(range(len(inputs)))} if labels is None else {}
    if labels is not None:
        for i, label in enumerate(labels):
            groups.setdefault(int(label), []).append(i)
    panels = []
    for label, members in sorted(groups.items(), key=lambda kv: -1 if kv[0] is None else kv[0]):
        members = members[:per_class]
        is_3d = cams.ndim == 4
        columns = 3 if is_3d else 2
        fig = Figure(figsize=(2.4 * columns, 2.5 * len(members)), dpi=dpi)
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(members), columns, squeeze=False)
        for row, i in enumerate(members):
            predicted = class_names[int(np.argmax(proba[i]))]
            heading = f"{names[i]}: predicted {predicted} ({proba[i].max():.2f})"
            if is_3d:
                tiles = [(title, overlay(img, cam)) for title, img, cam in _views(images[i], cams[i])]
            else:
                tiles = [
                    ("image", _to_unit(images[i])),
                    ("Grad-CAM " + class_names[int(chosen[i])], overlay(images[i], cams[i])),
                ]
            for col, (title, tile) in enumerate(tiles):
                ax = axes[row, col]
                ax.imshow(tile, cmap="gray" if tile.ndim == 2 else None, vmin=0, vmax=1 if tile.ndim == 2 else None)
                ax.set_title(
                    f"{heading}\n{title}" if col == 0 else f"\n{title}",
                    fontsize=8,
                    loc="left" if col == 0 else "center",
                )
                ax.axis("off")
        title = "Grad-CAM" if label is None else f"Grad-CAM, true class {class_names[label]}"
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        panels.append((title, buffer.getvalue()))
    return panels
