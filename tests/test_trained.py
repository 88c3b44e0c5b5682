"""One road to apply a trained run: predict, batch prediction, `test` and `serve` give the same probabilities for the
same study, for a deep run, a radiomics run and their model packages (glioscope.trained)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glioscope import cohort
from glioscope.batch import predict_batch
from glioscope.cli import main
from glioscope.errors import InputError
from glioscope.evaluate.aggregate import to_patients
from glioscope.external import ExternalSettings, external_test
from glioscope.ingest import ingest
from glioscope.predict import predict
from glioscope.rundir import RunFolder, write_manifest
from glioscope.trained import TrainedRun

pytest.importorskip("radiomics", reason="the radiomics recipes need PyRadiomics (make installs it)")

SHARED = ExternalSettings(allow_shared_patients=True, allow_duplicates=True)  # the study is one the run trained on


def _one_patient_cohort(source: Path, patient: str, out: Path) -> Path:
    """A cohort folder holding one patient's rows of `source`."""
    frame = cohort.load(source)
    frame = frame[frame["patient_id"] == patient].reset_index(drop=True)
    cohort.save(out, frame, cohort.summarise(frame))
    return out


def _probabilities(entry: dict, names: list[str]) -> np.ndarray:
    return np.array([entry["probabilities"][n] for n in names])


def _four_roads(run: Path, study: Path, mask: Path | None, patient_cohort: Path, work: Path, upload) -> dict:
    """The study's patient probabilities by predict, batch prediction (its cohort rows), test and serve."""
    names = TrainedRun(run).class_names
    found = {}
    [patient] = predict(run, study, mask)["patients"]
    found["predict"] = _probabilities(patient, names)
    [patient] = predict_batch(run, [patient_cohort], progress=False)["patients"]
    found["batch"] = _probabilities(patient, names)
    out = external_test(run, patient_cohort, work / "external", SHARED, n_boot=10, progress=False)
    table = RunFolder(out).predictions(names)
    headline = json.loads((out / "run.json").read_text())["external"]["headline"]
    patients = to_patients(table[table["model"] == headline])
    found["test"] = patients[[f"prob_{n}" for n in names]].to_numpy()[0]
    found["serve"] = _probabilities(upload(run), names)
    return found


def _serve(root: Path, files: list[Path], mask: Path | None = None):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from glioscope.serve import create_app

    def post(run: Path) -> dict:
        # as a script calls the API: the token in its header, no cookie, no Origin
        app = create_app(root, token="a-token-for-this-test")
        client = TestClient(
            app, base_url="http://127.0.0.1:8000", headers={"Authorization": "token a-token-for-this-test"}
        )
        extra = {"files": [("files", (p.name, p.read_bytes())) for p in files]}
        if mask is not None:
            extra["files"].append(("mask", (mask.name, mask.read_bytes())))
        response = client.post("/api/predict", data={"model": run.relative_to(root).as_posix()}, **extra)
        assert response.status_code == 200, response.text
        [patient] = response.json()["patients"]
        return patient

    return post


def _agree(found: dict) -> None:
    reference = found["predict"]
    for road, values in found.items():
        assert np.allclose(values, reference, atol=2e-6), (road, values, reference)


def test_a_deep_run_is_applied_alike_by_predict_batch_test_and_serve(
    tiny_2d_run, sagittal_cohort, tiny_phantom, tmp_path
):
    patient = sorted(cohort.load(sagittal_cohort)["patient_id"])[0]
    series = Path(cohort.load(sagittal_cohort).query("patient_id == @patient")["path"].iloc[0])
    rows = _one_patient_cohort(sagittal_cohort, patient, tmp_path / "one")
    found = _four_roads(
        tiny_2d_run, series, None, rows, tmp_path, _serve(tiny_2d_run.parent, sorted(series.glob("*.dcm")))
    )
    _agree(found)
    assert found["predict"].sum() == pytest.approx(1.0, abs=1e-5)


def test_a_deep_run_applied_to_its_cohort_gives_its_cross_validation_predictions(tiny_2d_run, sagittal_cohort):
    run = TrainedRun(tiny_2d_run)
    assert run.recipe.evaluate.tta == "none"  # the default: one pass (tests/test_tta_gap.py: with hflip)
    result = run.predict_rows(cohort.load(sagittal_cohort), progress=False)
    keys = ["patient_id", "item_id", "slice_id"]
    rows = result.table.reset_index()[keys + ["index"]]
    cv = RunFolder(tiny_2d_run).predictions(run.class_names)
    for fold in ("0", "1"):
        held = cv[(cv["fold"] == fold) & (cv["model"] == run.headline)].merge(rows, on=keys)
        assert len(held) > 0 and len(held) == ((cv["fold"] == fold) & (cv["model"] == run.headline)).sum()
        applied = result.per_fold[f"fold{fold}"][held["index"].to_numpy()]
        assert np.allclose(applied, held.filter(like="prob_").to_numpy(), atol=1e-5)


@pytest.fixture(scope="module")
def radiomics(tiny_phantom, module_tmp, monkeypatch_module):
    """A radiomics run on the tiny phantom's BraTS volumes (T1c features in the segmentation), and its package."""
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(module_tmp / "cache"))
    ingest([tiny_phantom / "brats"], module_tmp / "brats", progress=False, echo=None)
    runs = module_tmp / "runs"
    assert (
        main(
            [
                "cv",
                "radiomics-rf",
                "--cohort",
                str(module_tmp / "brats"),
                "--folds",
                "2",
                "-o",
                str(runs / "rf"),
                "--set",
                "data.channels=[T1c]",
                "--set",
                "classifier.trees=25",
                "--set",
                "evaluate.bootstrap=20",
                "--quick",
                "--permutations",
                "0",
            ]
        )
        == 0
    )
    assert main(["export", str(runs / "rf"), "-o", str(runs / "rf-package")]) == 0
    return {"root": runs, "run": runs / "rf", "package": runs / "rf-package", "cohort": module_tmp / "brats"}


def test_a_radiomics_run_keeps_each_folds_classifier_and_applies_it_as_cross_validation_did(radiomics):
    run = TrainedRun(radiomics["run"])
    assert [fold for fold, _ in run.model_files()] == ["fold0", "fold1"]
    frame = cohort.load(radiomics["cohort"])
    result = run.predict_rows(frame, progress=False)
    # each fold's classifier, applied anew to the patients it held out, gives its cross-validation predictions
    cv = RunFolder(radiomics["run"]).predictions(run.class_names)
    patients = list(result.table["patient_id"])
    for fold in ("0", "1"):
        held = cv[cv["fold"] == fold].set_index("patient_id")
        rows = [patients.index(p) for p in held.index]
        assert np.allclose(result.per_fold[f"fold{fold}"][rows], held.filter(like="prob_").to_numpy(), atol=1e-9)


def test_a_radiomics_run_and_its_package_are_applied_alike_by_predict_batch_test_and_serve(radiomics, tmp_path):
    frame = cohort.load(radiomics["cohort"])
    row = frame[frame["sequence"] == "T1c"].iloc[0]
    rows = _one_patient_cohort(radiomics["cohort"], row["patient_id"], tmp_path / "one")
    study, mask = Path(row["path"]), Path(row["mask_path"])
    found = {}
    for name in ("run", "package"):
        roads = _four_roads(
            radiomics[name], study, mask, rows, tmp_path / name, _serve(radiomics["root"], [study], mask)
        )
        found.update({f"{name} {road}": values for road, values in roads.items()})
    found["predict"] = found["run predict"]
    _agree(found)
    # a BraTS case folder: its segmentation is the mask
    [patient] = predict(radiomics["run"], study.parent)["patients"]
    assert np.allclose(_probabilities(patient, TrainedRun(radiomics["run"]).class_names), found["predict"], atol=2e-6)


def test_a_radiomics_model_needs_a_mask_and_says_so(radiomics, tiny_phantom, capsys):
    volume = sorted((tiny_phantom / "brats").rglob("*_t1ce.nii.gz"))[0]
    with pytest.raises(InputError, match="no tumour mask"):
        predict(radiomics["run"], volume)
    assert main(["predict", str(radiomics["package"]), str(volume)]) == 2
    assert "no tumour mask" in capsys.readouterr().err


def test_a_package_carries_the_radiomics_classifiers_and_no_patient(radiomics):
    package = radiomics["package"]
    assert sorted(p.parent.name for p in package.glob("*/classifier.npz")) == ["fold0", "fold1"]
    card = (package / "README.md").read_text()
    assert "PyRadiomics features" in card and "classifier.npz" in card
    ids = set(cohort.load(radiomics["cohort"])["patient_id"])
    for path in package.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".json", ".yaml", ".sha256"):
            assert not [i for i in ids if i in path.read_text()], path.name
    record = json.loads((package / "run.json").read_text())
    assert record["radiomics"]["channels"] == ["T1c"] and record["package"]["exported_from"] == "rf"


def test_an_external_test_of_a_radiomics_run_finds_a_patient_it_trained_on_by_its_features(radiomics, tmp_path):
    frame = cohort.load(radiomics["cohort"])
    copied = frame[frame["patient_id"] == frame["patient_id"].iloc[0]].assign(patient_id="someone-else")
    cohort.save(tmp_path / "copied", copied, cohort.summarise(copied))
    with pytest.raises(Exception, match="identical to images the run trained on"):
        external_test(radiomics["run"], tmp_path / "copied", tmp_path / "out", n_boot=10, progress=False)
    out = external_test(
        radiomics["package"],
        tmp_path / "copied",
        tmp_path / "out",
        ExternalSettings(allow_duplicates=True),
        n_boot=10,
        progress=False,
    )
    duplicates = pd.read_csv(out / "duplicates.csv")
    assert list(duplicates["kind"]) == ["exact"] and list(duplicates["second"]) == ["someone-else"]


def test_a_fused_run_is_refused_with_the_reason(tiny_2d_run, tmp_path):
    from glioscope.workflows import fuse

    second = tmp_path / "again"
    shutil.copytree(tiny_2d_run, second)
    fused = fuse([tiny_2d_run, second], tmp_path / "fused", methods=["mean"], n_boot=10)
    with pytest.raises(InputError, match="fused run"):
        TrainedRun(fused)


RUN_JSON_EDITS = {
    "a class added": (lambda r: r.update(class_names=[*r["class_names"], "other"]), "run.json: names class(es) other"),
    "a class removed": (lambda r: r.update(class_names=r["class_names"][:1]), "run.json: names 1 class(es)"),
    "another channel": (lambda r: r["radiomics"].update(channels=["FLAIR"]), "classifier.npz: takes features of"),
}


@pytest.mark.parametrize("edit", list(RUN_JSON_EDITS))
def test_a_radiomics_package_whose_run_json_does_not_fit_its_classifiers_is_refused(radiomics, tmp_path, edit):
    change, words = RUN_JSON_EDITS[edit]
    package = tmp_path / "package"
    shutil.copytree(radiomics["package"], package)
    record = json.loads((package / "run.json").read_text())
    change(record)
    (package / "run.json").write_text(json.dumps(record))
    write_manifest(package)  # rewritten to match: only the files' agreement can tell
    with pytest.raises(InputError, match=re.escape(words)):
        TrainedRun(package)
