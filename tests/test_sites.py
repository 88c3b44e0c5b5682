"""A second phantom site: another scanner, other subjects and other ids, for external validation."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from glioscope.ingest import ingest
from glioscope.synth import synthesize


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory):
    root = tmp_path_factory.mktemp("sites")
    for site in ("A", "B"):
        synthesize(root / site, preset="tiny", seed=0, site=site, layouts=["brats", "dicom"], progress=False)
    return root


def _brain_median(folder) -> float:
    values = [np.median(v[v > 0]) for v in (nib.load(p).get_fdata() for p in sorted(folder.rglob("*_t1.nii.gz")))]
    return float(np.median(values))


def test_site_b_is_another_scanner_with_other_patients(two_sites):
    a, b = (pd.read_csv(two_sites / s / "truth.csv") for s in "AB")
    assert not set(a["dicom_patient_id"].dropna()) & set(b["dicom_patient_id"].dropna())
    assert not set(a["brats_id"].dropna()) & set(b["brats_id"].dropna())
    assert not set(a["imagefolder_patient"]) & set(b["imagefolder_patient"])
    assert not np.allclose(a["centre_x_mm"].fillna(0), b["centre_x_mm"].fillna(0))  # not site A's subjects again
    assert _brain_median(two_sites / "B") > 1.2 * _brain_median(two_sites / "A")  # its scanner scales higher
    manifest = json.loads((two_sites / "B" / "synth.json").read_text())
    assert manifest["site"]["name"] == "B" and manifest["preset_settings"]["dicom_slab"] == 3  # thicker slices
    slices = {}
    for site in "AB":
        frame, _ = ingest([two_sites / site / "dicom"], None, workers=1, progress=False, echo=None)
        slices[site] = frame.loc[frame["plane"] == "axial", "n_slices"].median()
    assert slices["B"] < slices["A"]


def test_site_a_is_the_phantom_as_before(two_sites, tiny_phantom):
    ours = pd.read_csv(two_sites / "A" / "truth.csv")
    theirs = pd.read_csv(tiny_phantom / "truth.csv")  # written without naming a site
    assert ours[["dicom_patient_id", "grade", "centre_x_mm"]].equals(
        theirs[["dicom_patient_id", "grade", "centre_x_mm"]]
    )


def test_the_phantom_records_its_site_where_ingest_and_the_site_checks_find_it(two_sites):
    from glioscope import split
    from glioscope.evaluate.sites import site_alone
    from glioscope.sites import patient_sites

    truth = pd.concat([pd.read_csv(two_sites / s / "truth.csv", dtype=str) for s in "AB"])
    assert set(truth["site"]) == {"A", "B"}
    frame, _ = ingest([two_sites / s / "dicom" for s in "AB"], None, workers=1, progress=False, echo=None)
    found = patient_sites(frame)
    assert found.source == "DICOM InstitutionName"
    expected = truth.dropna(subset=["dicom_patient_id"]).set_index("dicom_patient_id")["site"]
    assert found.by_patient.to_dict() == {p: f"glioscope phantom site {expected[p]}" for p in found.by_patient.index}
    # Site A's grade III patients beside site B's grade II: the site alone tells the grade, and is caught.
    site = frame["patient_id"].map(found.by_patient).str[-1]
    frame = frame[((site == "A") & (frame["grade"] == "III")) | ((site == "B") & (frame["grade"] == "II"))]
    frame = frame.assign(label=frame["grade"]).reset_index(drop=True)
    table, _ = split.make_splits(frame, folds=3, seed=0)
    alone = site_alone(table, found, ["II", "III"], n_boot=200)
    assert alone["auc"] == 1.0 and alone["ci"][0] > 0.5
