"""The built-in phantom cohort: synthetic brain MRI with gliomas of known grade, MGMT status and segmentation.

    from glioscope.synth import synthesize
    manifest = synthesize("phantom", preset="demo", seed=0)

writes the same subjects in five real layouts (REMBRANDT-style DICOM tree, RSNA-MICCAI
DICOM, BraTS 2020 NIfTI, IXI NIfTI, image folders), plus truth.csv, synth.json and
montage.png. The tumour model, the difficulty knob and the MGMT imaging correlate are
documented in glioscope.synth.tumour.
"""

from glioscope.synth.cohort import make_montage, synthesize
from glioscope.synth.presets import LAYOUTS, PRESETS, Preset

__all__ = ["synthesize", "make_montage", "PRESETS", "LAYOUTS", "Preset"]
