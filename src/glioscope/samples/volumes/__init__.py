"""3D volumes from a cohort table: one per patient and study, preprocessed once (cached).

    settings = VolumeSettings(channels=("T1c",), spacing=2.0, shape=(96, 112, 96))
    volumes = build_volumes(cohort_frame, settings, cache_dir=Path("cache/volumes"))
    volumes.volumes   # float16 (N, C, D, H, W) in [0, 1]
    volumes.table     # one row per volume: volume_id, patient_id, label, item_ids, sequences, skull_stripped, ...

Axis order: D runs inferior to superior (the axial slice axis, the "time" axis of the video
models), H anterior to posterior, W from the patient's right to left, so `volumes[n, c, d]`
shows an axial slice as a radiologist does (anterior up, the patient's right on the left),
like the 2D slices of `glioscope.samples.slices`; `glioscope.io.geometry.array_affine(spacing)` is its affine.

Per study (see `volume` for the TorchIO steps, `skullstrip` for the brain mask): the channels'
sequences are taken from the study's rows (a fallback, T1 for T1c by default, stands in for a
missing one, as the spatio-spatial paper takes IXI T1 next to BraTS T1ce), reoriented to RAS, resampled to
`spacing` mm, skull-stripped where needed, scaled to [0, 1] between percentiles of the brain,
and cropped or padded to `shape` around the brain. Each volume is preprocessed once per
settings into `<cache_dir>/<settings.key()>/<volume key>.npz` (see `cache`); a later build
stats files, reads these entries and opens no NIfTI or DICOM file. Studies that cannot be
used (unreadable file, missing sequence, failed skull strip) are listed in `skipped` with the
file and the reason.
"""

from glioscope.samples.volumes.build import build_volumes
from glioscope.io.geometry import array_affine
from glioscope.samples.volumes.settings import VolumeSettings
from glioscope.samples.volumes.single import volume_from_file, volume_of_study
from glioscope.samples.volumes.volume_set import VolumeSet

__all__ = ["VolumeSet", "VolumeSettings", "array_affine", "build_volumes", "volume_from_file", "volume_of_study"]
