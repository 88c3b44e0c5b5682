"""Slices embedded by a frozen 2D network: one vector per slice, cached by what made it.

    network = Backbone(recipe.backbone, channels=3, normalize="model")
    vectors = embed(samples, network, cache_dir)      # (slices, width) float32, in samples.table order

The backbone is a registered 2D model (glioscope.models) built with its weights, in eval mode,
and only its backbone is used: the global-pooled last feature map, before any head, or (`taps`)
the outputs of named inner modules, each global-average pooled, concatenated. With
`flip`, a slice and its left-right mirror are embedded and the two vectors averaged. The
vectors of a cohort's slices are kept in the cache under a key of everything that made them:
the network and its weights file's digest, the normalisation, flip, and the slices' own bytes,
so a changed image, crop or weights file is embedded again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from glioscope.errors import InputError
from glioscope.models import create_model, model_entry
from glioscope.models.weights import NAMED_WEIGHTS, WeightsUnavailable
from glioscope.util import atomic
from glioscope.util.progress import progress_bar

CACHE_FORMAT = 1


class Backbone:
    """A frozen 2D network and how its inputs are normalised."""

    def __init__(self, settings, channels: int, normalize: str, context: int = 0):
        self.settings = settings
        weights = None if str(settings.weights).lower() in ("none", "scratch", "") else str(settings.weights)
        torch.manual_seed(settings.seed)  # layers the weights do not cover: the same every time
        try:
            options = {"context": context} if context else {}  # 2.5D: each filter spread over its channel's slices
            model = create_model(settings.name, num_classes=2, in_chans=channels, weights=weights, **options)
        except WeightsUnavailable as exc:
            raise InputError(None, f"backbone.weights {settings.weights}: {exc}") from None
        self.network = model.backbone.eval()
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)
        self.taps = _taps(self.network, settings)
        self.normalisation = model_entry(settings.name).normalisation if normalize == "model" else normalize
        self.identity = _identity(settings, channels, self.normalisation) + (f"|context{context}" if context else "")

    def _vectors(self, batch: torch.Tensor) -> torch.Tensor:
        if not self.taps:
            return self.network(batch).flatten(1)
        caught: dict[str, torch.Tensor] = {}
        hooks = [
            module.register_forward_hook(lambda _m, _i, out, name=name: caught.__setitem__(name, out))
            for name, module in self.taps
        ]
        try:
            self.network(batch)
        finally:
            for hook in hooks:
                hook.remove()
        return torch.cat([caught[name].mean(dim=(-2, -1)) for name, _ in self.taps], dim=1)

    @torch.no_grad()
    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        vectors = self._vectors(batch)
        if self.settings.flip:
            vectors = (vectors + self._vectors(torch.flip(batch, dims=[-1]))) / 2
        return vectors.float().numpy()


def _taps(network: torch.nn.Module, settings) -> list[tuple[str, torch.nn.Module]]:
    """The modules whose outputs backbone.taps names (global-average pooled, concatenated); [] for the last."""
    modules = dict(network.named_modules())
    found = []
    for name in settings.taps or ():
        if name not in modules or not name:
            blocks = [n for n in modules if n and n.count(".") <= 1][:12]
            raise InputError(
                None,
                f"backbone.taps: {settings.name} has no module {name!r}; its modules are named like "
                f"{', '.join(blocks)} ...",
            )
        found.append((name, modules[name]))
    return found


def _identity(settings, channels: int, normalisation: str) -> str:
    """What decides the vectors besides the slices: the network, its weights (a file by its digest) and inputs."""
    weights = str(settings.weights)
    if weights.lower() not in NAMED_WEIGHTS + ("none", "scratch", ""):
        digest = hashlib.sha256()
        with open(weights, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        weights = digest.hexdigest()
    taps = ",".join(settings.taps or ())
    return f"{CACHE_FORMAT}|{settings.name}|{weights}|{settings.seed}|{settings.flip}|{channels}|{normalisation}|{taps}"


def embed(samples, backbone: Backbone, cache_dir: Path | None = None, progress: bool = True) -> np.ndarray:
    """The (slices, width) embeddings of a SliceSet's slices, in its table's order (cached when `cache_dir`)."""
    if len(samples) == 0:
        raise InputError(None, "no slice to embed")
    path = None
    if cache_dir is not None:
        digest = hashlib.sha256(backbone.identity.encode())
        digest.update(np.ascontiguousarray(samples.images).tobytes())
        digest.update("\n".join(samples.table["slice_id"].astype(str)).encode())
        path = Path(cache_dir) / f"{digest.hexdigest()[:24]}.npy"
        if path.is_file():
            found = np.load(path, allow_pickle=False)
            if found.shape[0] == len(samples):
                return found
    dataset = samples.dataset(
        np.ones(len(samples), bool), np.zeros(len(samples), np.int64), None, backbone.normalisation
    )
    size = backbone.settings.batch_size
    parts = []
    for start in progress_bar(range(0, len(samples), size), desc="embedding", unit="batch", disable=not progress):
        parts.append(backbone(dataset.inputs(range(start, min(start + size, len(samples))))))
    vectors = np.concatenate(parts).astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, vectors, allow_pickle=False)
    return vectors
