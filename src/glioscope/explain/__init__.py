"""A study at its own resolution with a model's explanation on it, for a reader's viewer or a PACS.

    maps = study_maps(run, run.study_inputs("study/"))   # one StudyMap per study item (volume, series, image)
    maps[0].image, maps[0].cam, maps[0].affine           # the study's voxels, the Grad-CAM on them, voxel -> RAS mm
    to_nifti_bytes(maps[0], "cam")                       # gzip NIfTI-1 for NiiVue, 3D Slicer, ITK-SNAP

A deep model sees its preprocessed input: for a volume a small block after reorientation,
resampling, skull stripping, scaling and CropOrPad, for a slice an image cropped or padded and
resized. Its Grad-CAM (glioscope.evaluate.gradcam, averaged over the fold models) lies on that
grid. Here it is put back on the study's own voxels: a volume's map through the world affine
of the model's grid (kept by glioscope.samples.volumes) and the study file's affine, trilinear,
0 outside the model's field of view; a slice's map through its crop or padding and resize onto
the displayed slice, then onto the study's voxels (`geometry`). `dicom` writes the map as a DICOM
Parametric Map over the input series.
"""

from glioscope.explain.nifti import to_nifti_bytes, write_study_maps
from glioscope.explain.study import StudyMap, study_maps

__all__ = ["StudyMap", "study_maps", "to_nifti_bytes", "write_study_maps"]
