"""predict --dicom-sr: the prediction as a DICOM Structured Report that references the input series."""

from __future__ import annotations

import json

import pydicom

from glioscope.cli import main
from glioscope.io.dicom import read_header


def _items(report) -> dict:
    found = {}
    for item in report.ContentSequence:
        name = item.ConceptNameCodeSequence[0].CodeMeaning
        if "ConceptCodeSequence" in item:
            found[name] = item.ConceptCodeSequence[0].CodeMeaning
        elif "MeasuredValueSequence" in item:
            found[name] = float(item.MeasuredValueSequence[0].NumericValue)
        else:
            found[name] = item.TextValue
    return found


def test_the_report_holds_the_prediction_and_references_the_series_it_came_from(
    tiny_2d_run, tiny_phantom, tmp_path, capsys
):
    study = sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]
    capsys.readouterr()
    assert main(["predict", str(tiny_2d_run), str(study), "--dicom-sr", str(tmp_path / "sr.dcm")]) == 0
    printed = capsys.readouterr()
    result = json.loads(printed.out)
    assert printed.err.count(f"Written: {tmp_path / 'sr.dcm'}") == 1  # the file named once, beside the JSON
    report = pydicom.dcmread(tmp_path / "sr.dcm")
    assert report.SOPClassUID == pydicom.uid.ComprehensiveSRStorage and report.Modality == "SR"
    headers = [h for h in map(read_header, sorted(study.rglob("*.dcm"))) if isinstance(h, dict)]
    used = {entry["series_id"] for entry in result["inputs"] if entry["status"] == "predicted"}
    instances = {h["instance_uid"] for h in headers if h["series_uid"] in used}
    assert report.PatientID == headers[0]["patient_id"] and report.StudyInstanceUID == headers[0]["study_uid"]
    [referenced] = report.CurrentRequestedProcedureEvidenceSequence
    assert {s.SeriesInstanceUID for s in referenced.ReferencedSeriesSequence} == used  # the sagittal T1 alone
    assert {
        i.ReferencedSOPInstanceUID for s in referenced.ReferencedSeriesSequence for i in s.ReferencedSOPSequence
    } == instances
    items = _items(report)
    patient = result["patients"][0]
    assert items["Finding"] == f"glioscope class {patient['prediction']}"
    for name, value in patient["probabilities"].items():
        assert abs(items[f"Probability of {name}"] - value) < 1e-6
    assert items["Algorithm Name"] == "glioscope sdl" and "not for diagnosis" in items["Comment"]


def test_a_report_needs_one_dicom_study(tiny_2d_run, tiny_phantom, tmp_path, capsys):
    png = sorted((tiny_phantom / "imagefolder").rglob("*.png"))[0]
    assert main(["predict", str(tiny_2d_run), str(png), "--dicom-sr", str(tmp_path / "a.dcm")]) == 2
    assert "references DICOM images" in capsys.readouterr().err and not (tmp_path / "a.dcm").exists()
    assert main(["predict", str(tiny_2d_run), str(tiny_phantom / "dicom"), "--dicom-sr", str(tmp_path / "b.dcm")]) == 2
    assert "one study" in capsys.readouterr().err
    (tmp_path / "c.dcm").write_bytes(b"mine")
    study = sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]
    assert main(["predict", str(tiny_2d_run), str(study), "--dicom-sr", str(tmp_path / "c.dcm")]) == 2
    assert (tmp_path / "c.dcm").read_bytes() == b"mine"
