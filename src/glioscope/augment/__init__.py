"""All augmentation, 2D and 3D, built from a recipe's `augment` section (AugmentSettings).

images.py    per-image transforms of uint8 slices (torchvision v2), normalisation, the SVHN expansion
batch.py     rotation, zoom, shift and flips of a whole batch in one grid_sample call
prep.py      BatchPrep: a uint8 batch to model input (scaling, batch augmentation, channels, normalisation)
svhn.py      the AutoAugment paper's fixed expansion of AutoAugment's SVHN policy
volumes.py   TorchIO presets for (C, D, H, W) volumes (the spatio-spatial paper's light and heavy)
"""

from glioscope.augment.settings import AugmentSettings

__all__ = ["AugmentSettings"]
