"""The Grad-CAM as a DICOM Parametric Map over its input series: geometry, references, values, and refusals."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from test_explain import SERIES, SETTINGS_3D, FakeRun, phantom, write_oblique_series

import highdicom as hd
from glioscope.dicom_sr import NOT_FOR_DIAGNOSIS
from glioscope.errors import InputError
from glioscope.explain import study_maps
from glioscope.explain.dicom import write_parametric_map
from glioscope.samples.volumes import volume_from_file


@pytest.fixture(scope="module")
def series_map(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pm")
    data, blob = phantom(SERIES["shape"], SERIES["spacing"], SERIES["blob_at"])
    paths = write_oblique_series(folder / "series", data, SERIES["spacing"])
    (found,) = study_maps(FakeRun(3), volume_from_file(folder / "series", SETTINGS_3D))
    out = write_parametric_map(found, folder / "gradcam.dcm", recipe="st3d")
    return found, paths, blob, out


def frame_sources(pm, paths) -> list[int]:
    """The index in `paths` of each frame's source image (highdicom may order frames along the normal)."""
    where = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: k for k, p in enumerate(paths)}
    return [
        where[frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        for frame in pm.PerFrameFunctionalGroupsSequence
    ]


def test_the_parametric_map_lies_on_the_series_geometry(series_map):
    found, paths, _, out = series_map
    pm = pydicom.dcmread(out)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    assert pm.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map Storage
    assert pm.NumberOfFrames == len(sources) and (pm.Rows, pm.Columns) == (sources[0].Rows, sources[0].Columns)
    shared = pm.SharedFunctionalGroupsSequence[0]
    orientation = shared.PlaneOrientationSequence[0].ImageOrientationPatient
    spacing = shared.PixelMeasuresSequence[0].PixelSpacing
    order = frame_sources(pm, paths)
    assert sorted(order) == list(range(len(paths)))  # one frame per source image
    for frame, k in zip(pm.PerFrameFunctionalGroupsSequence, order):
        source = sources[k]
        position = frame.PlanePositionSequence[0].ImagePositionPatient
        assert np.allclose([float(v) for v in position], [float(v) for v in source.ImagePositionPatient], atol=1e-3)
        assert np.allclose([float(v) for v in orientation], [float(v) for v in source.ImageOrientationPatient])
        assert np.allclose([float(v) for v in spacing], [float(v) for v in source.PixelSpacing])
    assert pm.StudyInstanceUID == sources[0].StudyInstanceUID
    assert pm.FrameOfReferenceUID == sources[0].FrameOfReferenceUID


def test_the_parametric_map_references_every_source_instance(series_map):
    _, paths, _, out = series_map
    pm = pydicom.dcmread(out)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    (series,) = pm.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in series.ReferencedInstanceSequence} == {
        s.SOPInstanceUID for s in sources
    }
    assert sorted(frame_sources(pm, paths)) == list(range(len(paths)))


def test_the_parametric_maps_values_are_the_map(series_map):
    found, paths, blob, out = series_map
    dataset = pydicom.dcmread(out)
    pm = hd.pm.ParametricMap.from_dataset(dataset)  # highdicom reads it back as a Parametric Map
    frames = dataset.pixel_array  # (frame, row, column), float
    assert frames.dtype.kind == "f" and frames.shape == found.cam.shape[::-1]
    order = frame_sources(dataset, paths)
    for frame, k in zip(frames, order):
        assert np.array_equal(frame, found.cam[:, :, k].T)  # slice k of the series: rows along Y
    at, row, col = np.unravel_index(int(np.argmax(frames)), frames.shape)
    assert blob[col, row, order[at]] and frames.max() == 1.0  # the peak frame and position lie on the blob
    mapping = dataset.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert (mapping.DoubleFloatRealWorldValueFirstValueMapped, mapping.DoubleFloatRealWorldValueLastValueMapped) == (
        0,
        1,
    )
    assert mapping.LUTLabel == "GRADCAM" and "blob" in mapping.LUTExplanation
    assert NOT_FOR_DIAGNOSIS in dataset.ImageComments and "Research use only" in dataset.ContentDescription
    assert pm.SOPInstanceUID == dataset.SOPInstanceUID


def test_a_nifti_input_is_refused(tmp_path):
    from test_explain import VOLUME, oblique_affine
    import nibabel as nib

    data, _ = phantom(VOLUME["shape"], VOLUME["spacing"], VOLUME["blob_at"])
    path = tmp_path / "P1.nii.gz"
    nib.save(nib.Nifti1Image(data, oblique_affine(VOLUME["spacing"])), path)
    (found,) = study_maps(FakeRun(3), volume_from_file(path, SETTINGS_3D))
    with pytest.raises(InputError, match="DICOM"):
        write_parametric_map(found, tmp_path / "map.dcm")
    assert not (tmp_path / "map.dcm").exists()
