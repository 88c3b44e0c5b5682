"""2D samples from a cohort table: slices chosen, scaled, cropped, resized, and cached once.

    settings = SliceSettings(selection="middle", size=300, channels="stack3")
    slices = build_slices(cohort_frame, settings, cache_dir=Path("cache/slices"))
    slices.images   # uint8 (N, 3, 300, 300)
    slices.table    # one row per slice: slice_id, item_id, patient_id, label, slice_index, ...

A SliceSet is a `glioscope.samples.SampleSet`: the runner and predict use it through that
protocol (its rows for a split's items, a dataset of them, the keys of its predictions).

Per item (a volume, a DICOM series or an image): decode, cut into displayed slices
(see `pixels`), scale the whole item to [0, 1] (minmax or percentile, per channel),
choose slices, crop to the tumour ROI or zero-pad to a square (keeping the aspect
ratio), resize with antialiasing, quantise to 8-bit grey levels.

Sequences stacked as channels (`channels=("FLAIR", "T1", "T1c", "T2")`) make one item per
study on the grid of the FIRST sequence named: its plane, matrix and slices. Co-registered
sources (same shape and grid, as BraTS) are stacked as they are; others (RSNA-MICCAI's
separate axial, sagittal and coronal series) are resampled onto that grid through patient
coordinates (linear, 0 outside; see `resample`), so slice i of every channel shows the same
anatomy. A channel with no overlap makes the item a skip naming its file.

Cache format (for benchmarks and reuse): `<cache_dir>/<settings.key()>/<item key>.npz`,
one .npz per item (volume, series, image, or stacked study) with two arrays:
`images` uint8 (k, C, size, size), C = 1 for stack3/single (repeated to 3 when the
set is assembled), and `numbers` int64 holding k, n, the item's counters, per kept
slice (slice_index, tumour_area, crop box) and the mask area of all n slices, so the
per-patient representative choice needs no decoding (layout in `cache.pack`).
Multi-slice entries are deflated (level 1), single images stored. The item key
hashes path, size and mtime_ns of every source file and the mask: a warm build
stats files and reads these entries, and opens no DICOM, NIfTI or image file.
Time a cold build (empty cache_dir), a warm one (same call again) and one with
cache_dir=None to compare decode, cache-read and no-cache rates.
"""

from glioscope.samples.slices.build import build_slices
from glioscope.samples.slices.settings import SliceSettings
from glioscope.samples.slices.single import slices_from_file, slices_of_study
from glioscope.samples.slices.slice_set import SliceSet

__all__ = ["SliceSet", "SliceSettings", "build_slices", "slices_from_file", "slices_of_study"]
