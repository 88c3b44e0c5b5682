"""Many studies at once: one row per patient, every input predicted or listed with its reason."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from glioscope.batch import many_studies, predict_batch
from glioscope.cli import main
from glioscope.io.testing import write_dicom_series
from glioscope.predict import predict
from glioscope.synth import synthesize


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Site B's DICOM tree, with a CT series and a damaged file added to it."""
    root = tmp_path_factory.mktemp("batch")
    synthesize(root / "phantom", preset="tiny", seed=0, site="B", layouts=["dicom"], progress=False)
    tree = root / "phantom" / "dicom"
    write_dicom_series(tree / "REMBRANDT" / "CT-1" / "ct", "CT-1", "HEAD CT", Modality="CT")
    first = sorted((tree / "REMBRANDT").rglob("*.dcm"))[0]
    (first.parent / "damaged.dcm").write_bytes(first.read_bytes()[:300])
    return tree


def test_a_tree_of_many_patients_gives_one_row_each_and_every_skip(tiny_2d_run, tree, tmp_path, capsys):
    patients = sorted(p.name for p in (tree / "REMBRANDT").iterdir() if p.name != "CT-1")
    assert many_studies([tree]) is not None and many_studies([tree / "REMBRANDT" / patients[0]]) is None
    assert main(["predict", str(tiny_2d_run), str(tree), "-o", str(tmp_path / "out.csv")]) == 0
    assert f"{len(patients)} patient(s) predicted" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "out.csv", dtype={"patient_id": str})
    assert sorted(table["patient_id"]) == patients and table.filter(like="prob_").sum(axis=1).round(4).eq(1).all()
    result = json.loads((tmp_path / "out.json").read_text())
    reasons = [s["reason"] for s in result["skipped"]]
    assert any("modality CT, not MR" in r for r in reasons) and any(
        "damaged.dcm" in s["path"] for s in result["skipped"]
    )
    single = predict(tiny_2d_run, tree / "REMBRANDT" / patients[0])["patients"][0]["probabilities"]
    batch = next(p for p in result["patients"] if p["patient_id"] == patients[0])["probabilities"]
    assert batch == pytest.approx(single, abs=1e-5)  # the same samples and models as one study at a time


def test_a_cohort_table_and_several_inputs_are_batches(tiny_2d_run, sagittal_cohort, tree):
    result = predict_batch(tiny_2d_run, [sagittal_cohort])
    assert len(result["patients"]) == pd.read_csv(sagittal_cohort / "cohort.csv")["patient_id"].nunique()
    assert all(p["seen_in_training"] for p in result["patients"])  # the run's own cohort: flagged
    two = sorted((tree / "REMBRANDT").iterdir())[:2]
    result = predict_batch(tiny_2d_run, [*two, tree / "no-such-folder"])
    assert len(result["patients"]) == 2 and "does not exist" in result["skipped"][-1]["reason"]


def test_a_batch_with_nothing_to_predict_exits_2(tiny_2d_run, tmp_path, capsys):
    write_dicom_series(tmp_path / "cts" / "a", "A", "HEAD CT", Modality="CT")
    write_dicom_series(tmp_path / "cts" / "b", "B", "HEAD CT", Modality="CT")
    shutil.copytree(tmp_path / "cts", tmp_path / "copy")
    assert main(["predict", str(tiny_2d_run), str(tmp_path / "cts"), str(tmp_path / "copy")]) == 2
    assert "Traceback" not in capsys.readouterr().err
