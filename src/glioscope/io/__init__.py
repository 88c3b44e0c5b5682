"""Readers: every supported layout on disk becomes rows of the canonical cohort table.

`glioscope.io.formats.read_source` reads one source; `glioscope.ingest.ingest`
combines sources, labels and selection into a saved cohort. Loaders for later
stages: `dicom.load_series`, `nifti.load_volume`, `images.load_image`.
"""
