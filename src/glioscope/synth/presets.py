"""Cohort presets (size, grid, slice thickness) and the layouts a cohort is written in."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from glioscope.errors import InputError

LAYOUTS = ("dicom", "rsna-miccai", "brats", "ixi", "imagefolder")
GRADES = ("II", "III", "IV")
CLASSES = GRADES + ("healthy",)

DEFAULT_DIFFICULTY = 0.35
DEFAULT_MGMT_EFFECT = 0.5


@dataclass(frozen=True)
class Preset:
    """How big a phantom cohort is and on which grid it is written."""

    name: str
    n_per_grade: int  # subjects of each of grade II, III and IV
    n_healthy: int
    voxel_mm: int  # isotropic simulation grid, also the NIfTI grid; a whole number of mm
    dicom_slab: int  # REMBRANDT-style thick slices: voxels averaged per slice
    rsna_slab: int  # RSNA-MICCAI-style slices: voxels averaged per slice
    dicom_fov_mm: int  # square in-plane field of view of the DICOM matrix
    png_size: int  # side of the image-folder PNGs
    png_slices: int  # axial slices per subject in the image folder
    montage_per_class: int
    description: str
    n_grade_iv: int | None = None  # grade IV subjects when they differ from n_per_grade

    @property
    def counts(self) -> dict[str, int]:
        counts = {**{grade: self.n_per_grade for grade in GRADES}, "healthy": self.n_healthy}
        if self.n_grade_iv is not None:
            counts["IV"] = self.n_grade_iv
        return counts

    def as_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny",
        n_per_grade=3,
        n_healthy=3,
        voxel_mm=4,
        dicom_slab=2,
        rsna_slab=2,
        dicom_fov_mm=256,
        png_size=64,
        png_slices=2,
        montage_per_class=2,
        description="for tests: 12 subjects on a 4 mm grid, written in seconds",
    ),
    "demo": Preset(
        name="demo",
        n_per_grade=12,
        n_healthy=8,
        voxel_mm=2,
        dicom_slab=3,
        rsna_slab=2,
        dicom_fov_mm=256,
        png_size=128,
        png_slices=5,
        montage_per_class=2,
        description="for the demo: 44 subjects on a 2 mm grid, 6 mm DICOM slices",
    ),
    "mgmt": Preset(
        name="mgmt",
        n_per_grade=0,
        n_grade_iv=60,
        n_healthy=0,
        voxel_mm=4,
        dicom_slab=2,
        rsna_slab=1,
        dicom_fov_mm=256,
        png_size=64,
        png_slices=1,
        montage_per_class=3,
        description="for MGMT checks: 60 grade IV subjects (about half methylated) on a 4 mm grid",
    ),
    "study": Preset(
        name="study",
        n_per_grade=40,
        n_healthy=20,
        voxel_mm=2,
        dicom_slab=3,
        rsna_slab=2,
        dicom_fov_mm=256,
        png_size=224,
        png_slices=5,
        montage_per_class=3,
        description="for benchmarks: 140 subjects on a 2 mm grid, about 21,000 DICOM files",
    ),
}


@dataclass(frozen=True)
class Site:
    """A scanner and a hospital: how its images differ, and how its patients are named.

    Site A is the phantom as it has always been. Another site scales the intensities
    (`scale`, a factor on the global scaling), adds more noise (`noise`, a factor on
    its standard deviation), a stronger bias field (`bias`, a factor on its
    coefficients) and thicker DICOM slices (`extra_slab` voxels more per slice); its
    subjects are drawn from their own random streams (no subject of site A appears
    again) and carry their own ids in every layout.
    """

    name: str
    scale: float = 1.0
    noise: float = 1.0
    bias: float = 1.0
    extra_slab: int = 0
    number: int = 0  # offsets the cohort's random streams and its ids

    def seed(self, seed: int) -> int:
        """The cohort seed of this site: site A's is the seed itself."""
        return int(seed) + 1_000_003 * self.number

    def as_dict(self) -> dict:
        return asdict(self)


SITES: dict[str, Site] = {
    "A": Site("A"),
    "B": Site("B", scale=1.8, noise=2.5, bias=1.8, extra_slab=1, number=1),
}


def get_site(name: str) -> Site:
    try:
        return SITES[str(name).upper()]
    except KeyError:
        raise InputError(None, f"unknown phantom site {name!r}; choose one of {', '.join(SITES)}") from None


def get_preset(name: str) -> Preset:
    """The preset called `name`, or an error listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(None, f"unknown phantom preset {name!r}; choose one of {', '.join(PRESETS)}") from None
