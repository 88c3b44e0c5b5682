"""External validation: a run tested on another site's cohort, leak checks by id and by image, calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from sklearn.metrics import brier_score_loss

from glioscope.cli import main
from glioscope.evaluate.calibration import brier, ece, reliability
from glioscope.evaluate.operating_point import at_threshold, youden_threshold
from glioscope.ingest import ingest
from glioscope.leakcheck import LEGACY_NOTE, NOT_CHECKED
from glioscope.synth import synthesize

SAGITTAL_T1 = {"plane": ["sagittal"], "sequence": ["T1"]}


@pytest.fixture(scope="module")
def site_b(tmp_path_factory):
    """The tiny phantom's second site, its sagittal T1 series ingested."""
    root = tmp_path_factory.mktemp("site-b")
    synthesize(root / "phantom", preset="tiny", seed=0, site="B", layouts=["dicom"], progress=False)
    ingest([root / "phantom" / "dicom"], root / "cohort", select=SAGITTAL_T1, progress=False, echo=None)
    return root / "cohort"


@pytest.fixture(scope="module")
def external(tiny_2d_run, site_b, module_tmp, monkeypatch_module):
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(module_tmp / "cache"))
    out = module_tmp / "external" / "site-b"
    assert main(["test", str(tiny_2d_run), "--cohort", str(site_b), "-o", str(out), "--bootstrap", "100"]) == 0
    return out


def test_an_external_test_is_a_run_like_folder_with_metrics_calibration_and_a_report(external, tiny_2d_run, site_b):
    metrics = json.loads((external / "metrics.json").read_text())
    assert metrics["sets"] == ["test"] and metrics["models"] == ["sdl/mean", "sdl/mean (fold0)", "sdl/mean (fold1)"]
    patient = metrics["test"]["sdl/mean"]["patient"]
    assert patient["n_patients"] == pd.read_csv(site_b / "cohort.csv")["patient_id"].nunique()
    for key in ("brier", "ece", "accuracy", "macro_f1"):
        low, high = patient["ci"][key]
        assert low <= patient["pooled"][key] <= high, key
    predictions = pd.read_csv(external / "predictions.csv")
    probs = [c for c in predictions if c.startswith("prob_")]
    by_model = {m: g[probs].to_numpy() for m, g in predictions.groupby("model")}
    folds = np.mean([by_model["sdl/mean (fold0)"], by_model["sdl/mean (fold1)"]], axis=0)
    assert np.allclose(by_model["sdl/mean"], folds, atol=1e-6)  # the headline: the mean of the fold models
    info = json.loads((external / "run.json").read_text())
    assert info["external"]["shared_patients"] == [] and info["external"]["operating_point"] is None  # 3 classes
    html = (external / "report.html").read_text()
    assert "External test beside the run's cross-validation" in html and "Brier score" in html
    assert "reliability" in html and (external / "figures" / "reliability.png").is_file()
    assert "no patient of this cohort is in the run" in html


def test_an_external_test_reports_each_site_of_its_cohort(tiny_2d_run, site_b, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("GLIOSCOPE_CACHE", str(tmp_path / "cache"))
    shutil.copytree(site_b, tmp_path / "cohort")
    frame = pd.read_csv(site_b / "cohort.csv", dtype=str, keep_default_na=False)
    ward = {p: ("north", "south")[k % 2] for k, p in enumerate(sorted(frame["patient_id"].unique()))}
    frame.assign(ward=frame["patient_id"].map(ward)).to_csv(tmp_path / "cohort" / "cohort.csv", index=False)
    out = tmp_path / "external"
    args = ["test", str(tiny_2d_run), "--cohort", str(tmp_path / "cohort"), "-o", str(out), "--bootstrap", "20"]
    assert main(args) == 0
    found = json.loads((out / "metrics.json").read_text())["sites"]  # one institution: one line, no table
    assert found["source"] == "DICOM InstitutionName" and found["names"] == ["glioscope phantom site B"]
    assert "<b>Sites:</b> one site" in (out / "report.html").read_text()
    assert main([*args, "--site-column", "ward", "--overwrite"]) == 0
    found = json.loads((out / "metrics.json").read_text())["sites"]
    assert found["source"] == "column 'ward'" and found["names"] == ["north", "south"]
    assert found["site_alone"] is None  # no folds to learn the sites on
    per_site = found["per_site"]["test"]["sdl/mean"]
    assert {s: e["n_patients"] for s, e in per_site.items()} == pd.Series(ward).value_counts().to_dict()
    assert "Sites (external cohort)" in (out / "report.html").read_text()


def test_shared_patients_are_refused_or_stamped(tiny_2d_run, sagittal_cohort, tmp_path, capsys):
    out = tmp_path / "own"
    assert main(["test", str(tiny_2d_run), "--cohort", str(sagittal_cohort), "-o", str(out)]) == 2
    assert "must not share patients" in capsys.readouterr().err and not out.exists()
    assert (
        main(
            [
                "test",
                str(tiny_2d_run),
                "--cohort",
                str(sagittal_cohort),
                "-o",
                str(out),
                "--bootstrap",
                "20",
                "--allow-shared-patients",
                "--allow-duplicates",
            ]
        )
        == 0
    )
    assert "NOT AN EXTERNAL TEST" in (out / "report.html").read_text()


def test_the_same_images_under_new_ids_are_caught(tiny_2d_run, sagittal_cohort, tmp_path, capsys):
    frame = pd.read_csv(sagittal_cohort / "cohort.csv", dtype=str, keep_default_na=False)
    frame["patient_id"] = "X-" + frame["patient_id"]  # one patient, two ids
    (tmp_path / "renamed").mkdir()
    frame.to_csv(tmp_path / "renamed" / "cohort.csv", index=False)
    assert main(["test", str(tiny_2d_run), "--cohort", str(tmp_path / "renamed"), "-o", str(tmp_path / "o")]) == 2
    assert "identical to images the run trained on" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["leakcheck", str(sagittal_cohort), str(tmp_path / "renamed"), "-o", str(tmp_path / "pairs.csv")]) == 0
    out = capsys.readouterr().out
    assert "0 patient id(s) in both cohorts" in out and "0 identical image(s)" not in out
    pairs = pd.read_csv(tmp_path / "pairs.csv")
    assert (pairs["kind"] == "exact").sum() > 0 and set(pairs["first"].str.split(":").str[0]) <= set(frame["item_id"])


def test_classes_must_map_onto_the_run(tiny_2d_run, site_b, tmp_path, capsys):
    frame = pd.read_csv(site_b / "cohort.csv", dtype=str, keep_default_na=False)
    frame["label"] = frame["label"].map({"II": "G2", "III": "G3", "IV": "G4"})
    (tmp_path / "renamed").mkdir()
    frame.to_csv(tmp_path / "renamed" / "cohort.csv", index=False)
    base = ["test", str(tiny_2d_run), "--cohort", str(tmp_path / "renamed"), "--bootstrap", "20"]
    assert main([*base, "-o", str(tmp_path / "a")]) == 2
    error = capsys.readouterr().err
    assert "G2, G3, G4" in error and "II, III, IV" in error and "--map" in error
    assert main([*base, "-o", str(tmp_path / "b"), "--map", "G2=II,G3=III,G4=IV"]) == 0
    assert "classes mapped: G2 → II" in (tmp_path / "b" / "report.html").read_text()


def test_a_binary_run_is_also_judged_at_its_cross_validation_operating_point(
    sagittal_cohort, site_b, tmp_path, monkeypatch
):
    monkeypatch.setenv("GLIOSCOPE_CACHE", str(tmp_path / "cache"))
    fast = [
        "train.epochs=1",
        "cv.folds=2",
        "data.slices.size=64",
        "evaluate.bootstrap=20",
        "model.weights=none",
        "evaluate.gradcam_per_class=0",
        "data.select={plane: sagittal, sequence: T1, label: [II, III]}",
        "task.classes=[II, III]",
    ]
    args = [a for item in fast for a in ("--set", item)]
    assert main(["cv", "alexnet", "--cohort", str(sagittal_cohort), "-o", str(tmp_path / "run"), *args]) == 0
    assert (
        main(["test", str(tmp_path / "run"), "--cohort", str(site_b), "-o", str(tmp_path / "ext"), "--bootstrap", "20"])
        == 0
    )
    metrics = json.loads((tmp_path / "ext" / "metrics.json").read_text())
    point = metrics["operating_point"]
    assert "Youden" in point["chosen_on"] and 0 <= point["threshold"] <= 1
    assert set(point["test"]) == set(metrics["models"])
    assert sum(map(sum, point["test"]["alexnet"]["confusion_matrix"])) == metrics["test"]["alexnet"]["patient"]["n"]
    assert "operating point" in (tmp_path / "ext" / "report.html").read_text()


def test_calibration_and_operating_point_figures():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.5 + 0.35 * (y - 0.5) + rng.normal(0, 0.2, 400), 0.01, 0.99)
    proba = np.c_[1 - p, p]
    assert brier(y, proba) == pytest.approx(2 * brier_score_loss(y, p))  # summed over both classes
    table = reliability(y, proba)
    weights = np.array(table["count"]) / len(y)
    gaps = np.abs(np.array(table["mean_probability"]) - np.array(table["observed"]))
    assert ece(y, proba) == pytest.approx(float((weights * gaps).sum())) and sum(table["count"]) == len(y)
    assert ece(y, np.c_[1 - y, y].astype(float)) == 0.0  # certain and right: perfectly calibrated
    threshold = youden_threshold(y, p)
    result = at_threshold(y, p, threshold)
    assert result["sensitivity"] + result["specificity"] - 1 >= max(
        at_threshold(y, p, t)["sensitivity"] + at_threshold(y, p, t)["specificity"] - 1 for t in (0.3, 0.5, 0.7)
    )


def _edited_copies(sagittal_cohort, out):
    """The run's own patients under new ids, every slice mirrored (odd rows) or shifted by 2 pixels (even ones):
    no image identical to a training image, each near-identical to one."""
    frame = pd.read_csv(sagittal_cohort / "cohort.csv", dtype=str, keep_default_na=False)
    for k, row in frame.iterrows():
        target = out / "dicom" / f"copy{k}"
        target.mkdir(parents=True)
        for name in json.loads(row["files"]):
            dataset = pydicom.dcmread(Path(row["path"]) / name)
            pixels = dataset.pixel_array
            edited = pixels[:, ::-1] if k % 2 else np.roll(pixels, 2, axis=1)
            dataset.PixelData = np.ascontiguousarray(edited, dtype=pixels.dtype).tobytes()
            dataset.save_as(target / name)
        frame.loc[k, "path"] = str(target)
    frame["patient_id"] = "X-" + frame["patient_id"]
    frame.to_csv(out / "cohort.csv", index=False)
    return out


@pytest.fixture(scope="module")
def package(tiny_2d_run, module_tmp):
    out = module_tmp / "package"
    assert main(["export", str(tiny_2d_run), "-o", str(out)]) == 0
    return out


def test_near_duplicates_are_printed_by_glioscope_test(tiny_2d_run, sagittal_cohort, tmp_path, capsys):
    copies = _edited_copies(sagittal_cohort, tmp_path / "copies")
    capsys.readouterr()
    assert (
        main(["test", str(tiny_2d_run), "--cohort", str(copies), "-o", str(tmp_path / "t"), "--bootstrap", "20"]) == 0
    )
    out = capsys.readouterr().out
    assert "warning: Images: 0 identical to training images" in out and "near-identical pair(s)" in out
    patients = pd.read_csv(sagittal_cohort / "cohort.csv", dtype=str)["patient_id"]
    for patient in patients[:5]:  # the patient pairs with the most shared images: each copy and its original
        assert f"external patient X-{patient} ~ training patient {patient}:" in out
    duplicates = pd.read_csv(tmp_path / "t" / "duplicates.csv")
    assert set(duplicates["kind"]) == {"near"} and (duplicates["distance"] <= 36).all()
    html = (tmp_path / "t" / "report.html").read_text()
    assert "near-identical" in html and "no image is identical or near-identical" not in html


def test_a_package_without_fingerprints_says_duplicates_were_not_checked(package, site_b, tmp_path, capsys):
    from glioscope.rundir.seal import write_manifest

    stored, away = package / "fingerprints.npz", tmp_path / "fingerprints.npz"
    stored.rename(away)  # as if exported without the training images: sealed so
    write_manifest(package)
    try:
        capsys.readouterr()
        args = ["test", str(package), "--cohort", str(site_b), "-o", str(tmp_path / "t"), "--bootstrap", "20"]
        assert main(args) == 0
    finally:
        away.rename(stored)
        write_manifest(package)
    out = capsys.readouterr().out
    assert f"warning: {NOT_CHECKED}" in out
    info = json.loads((tmp_path / "t" / "run.json").read_text())
    assert "duplicate images were NOT checked" in info["split_statement"] and info["external"]["images"] == {
        "checked": False
    }
    html = (tmp_path / "t" / "report.html").read_text()
    assert "Duplicate images were NOT checked" in html and "no image is identical" not in html


def test_a_package_of_an_earlier_version_is_searched_with_its_own_hash_and_says_so(
    package, sagittal_cohort, tmp_path, capsys
):
    stored = package / "fingerprints.npz"
    kept = tmp_path / "kept.npz"
    kept.write_bytes(stored.read_bytes())
    from glioscope.rundir.seal import write_manifest

    with np.load(kept, allow_pickle=False) as archive:  # what an earlier version exported: no aligned hashes
        np.savez_compressed(stored, **{k: archive[k] for k in archive.files if k != "aligned"})
    write_manifest(package)  # sealed as it is, so that only the fingerprints' format differs
    copies = _edited_copies(sagittal_cohort, tmp_path / "copies")
    try:
        capsys.readouterr()
        args = ["test", str(package), "--cohort", str(copies), "-o", str(tmp_path / "t"), "--bootstrap", "20"]
        assert main(args) == 0
    finally:
        stored.write_bytes(kept.read_bytes())
        write_manifest(package)
    out = capsys.readouterr().out
    assert f"note: {LEGACY_NOTE}" in out and "perceptual hash bits apart" in out
    info = json.loads((tmp_path / "t" / "run.json").read_text())
    assert info["external"]["images"]["legacy_hash"] is True and LEGACY_NOTE in info["notes"]
    assert "earlier hash only" in info["split_statement"]
