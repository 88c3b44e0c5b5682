"""Tumour-aware 2D data: slices chosen by tumour area, at most k per patient, votes weighted by tumour area."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from glioscope.cli import main
from glioscope.errors import InputError
from glioscope.evaluate.aggregate import patient_mean, to_patients
from glioscope.ingest import ingest
from glioscope.samples.slices import SliceSettings, build_slices, slices_from_file

TUMOUR = dict(selection="tumour", channels="single", size=32)


def read(sources):
    frame, _ = ingest([Path(s) for s in sources], out=None, workers=1, progress=False, echo=None)
    return frame


def build(frame, **settings):
    return build_slices(frame, SliceSettings(**settings), cache_dir=None, workers=1, progress=False)


@pytest.fixture(scope="module")
def brats(tiny_phantom):
    frame = read([tiny_phantom / "brats"])
    return frame[frame["sequence"] == "T1c"].reset_index(drop=True)


def axial_areas(mask_path: str) -> np.ndarray:
    seg = np.asanyarray(nib.as_closest_canonical(nib.load(mask_path)).dataobj)
    return (seg > 0).sum(axis=(0, 1))


def test_tumour_selection_keeps_the_slices_over_the_area(brats):
    threshold = 20
    samples = build(brats, **TUMOUR, min_tumour_area=threshold)
    kept_patients = set()
    for row in brats.itertuples():
        areas = axial_areas(row.mask_path)
        chosen = samples.table[samples.table["item_id"] == row.item_id]
        assert sorted(chosen["slice_index"]) == [int(i) for i in np.flatnonzero(areas >= threshold)]
        assert (chosen["tumour_area"] >= threshold).all()
        if len(chosen):
            kept_patients.add(row.patient_id)
    dropped = sum(int((axial_areas(r.mask_path) < threshold).sum()) for r in brats.itertuples())
    assert any(f"{dropped} slice(s) whose tumour mask covers fewer than {threshold}" in n for n in samples.notes)
    assert set(samples.table["patient_id"]) == kept_patients


def test_tumour_slices_keeps_each_patients_largest(brats):
    everything = build(brats, **TUMOUR, min_tumour_area=1)
    two = build(brats, **TUMOUR, min_tumour_area=1, tumour_slices=2)
    for patient, group in everything.table.groupby("patient_id"):
        expected = sorted(group["tumour_area"], reverse=True)[:2]
        chosen = two.table[two.table["patient_id"] == patient]
        assert sorted(chosen["tumour_area"], reverse=True) == expected
    assert len(two.images) == len(two.table) <= 2 * two.table["patient_id"].nunique()
    assert any("beyond each patient's 2 largest" in n for n in two.notes)


def test_patient_without_a_large_enough_tumour_is_skipped_with_the_reason(brats):
    largest = {r.patient_id: int(axial_areas(r.mask_path).max()) for r in brats.itertuples()}
    threshold = sorted(largest.values())[len(largest) // 2]  # about half the patients fall below
    samples = build(brats, **TUMOUR, min_tumour_area=threshold)
    below = {p for p, a in largest.items() if a < threshold}
    assert below and set(samples.table["patient_id"]) == set(largest) - below
    reasons = [s.reason for s in samples.skipped]
    for patient in below:
        assert any(r.startswith(f"patient {patient}: no slice whose tumour mask covers {threshold}") for r in reasons)


def test_tumour_selection_without_a_mask_is_refused(brats, tmp_path):
    no_masks = brats.assign(mask_path="")
    with pytest.raises(InputError, match="no slices left.*selection: tumour"):
        build(no_masks, **TUMOUR)
    with pytest.raises(InputError, match="has no tumour mask, which selection: tumour needs"):
        slices_from_file(Path(brats.loc[0, "path"]), SliceSettings(**TUMOUR))


def test_kaggle3m_slices_each_with_its_mask(tmp_path):
    """One image per slice (kaggle_3m): the threshold applies per slice, the limit per patient."""
    root = tmp_path / "kaggle_3m"
    areas = {"TCGA_AA_0001_20000101": [0, 30, 200, 120], "TCGA_AA_0002_20000101": [0, 10, 0, 5]}
    rng = np.random.default_rng(0)
    for case, sizes in areas.items():
        (root / case).mkdir(parents=True)
        for k, side in enumerate(sizes, start=1):
            image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            mask = np.zeros((64, 64), np.uint8)
            mask.flat[:side] = 255
            Image.fromarray(image).save(root / case / f"{case}_{k}.tif")
            Image.fromarray(mask).save(root / case / f"{case}_{k}_mask.tif")
    pd.DataFrame({"Patient": ["TCGA_AA_0001", "TCGA_AA_0002"], "neoplasm_histologic_grade": [1, 2]}).to_csv(
        root / "data.csv", index=False
    )
    frame = read([root])
    samples = build(frame, selection="tumour", min_tumour_area=25, tumour_slices=2, channels="native", size=32)
    assert sorted(samples.table["tumour_area"]) == [120, 200]
    assert list(samples.table["patient_id"].unique()) == ["TCGA_AA_0001"]
    assert any("TCGA_AA_0002" in s.reason for s in samples.skipped)


def test_vote_weights_by_tumour_area():
    frame = pd.DataFrame(
        {
            "patient_id": ["a", "a", "a", "b", "b"],
            "item_id": list("vwxyz"),
            "target": [1, 1, 1, 0, 0],
            "prob_0": [0.9, 0.2, 0.5, 0.6, 0.2],
            "prob_1": [0.1, 0.8, 0.5, 0.4, 0.8],
            "vote_weight": [0.0, 300.0, 100.0, 0.0, 0.0],
        }
    )
    patients = to_patients(frame).set_index("patient_id")
    assert patients.loc["a", "prob_1"] == pytest.approx((0.8 * 300 + 0.5 * 100) / 400)
    assert patients.loc["b", "prob_1"] == pytest.approx(0.6)  # no tumour anywhere: the plain mean
    plain = to_patients(frame.drop(columns="vote_weight")).set_index("patient_id")
    assert plain.loc["a", "prob_1"] == pytest.approx(np.mean([0.1, 0.8, 0.5]))
    probs = frame[["prob_0", "prob_1"]].to_numpy()
    assert patient_mean(probs[:3], frame["vote_weight"].to_numpy()[:3])[1] == pytest.approx(patients.loc["a", "prob_1"])
    assert patient_mean(probs[3:], np.zeros(2))[1] == pytest.approx(0.6)


def test_vote_does_not_change_the_cache_key():
    assert SliceSettings(vote="tumour_area", tumour_slices=3).key() == SliceSettings().key()
    assert SliceSettings(selection="tumour").key() != SliceSettings(selection="tumour", min_tumour_area=50).key()


def test_tumour_recipe_runs_predicts_and_weights_the_vote(tiny_phantom, tmp_path, monkeypatch):
    """alexnet-tumour end to end: the run, its predictions' weights, and predict's patient vote."""
    monkeypatch.setenv("GLIOSCOPE_CACHE", str(tmp_path / "cache"))
    ingest([tiny_phantom / "brats"], tmp_path / "cohort", progress=False, echo=None)
    run = tmp_path / "run"
    settings = [
        "train.epochs=1",
        "cv.folds=2",
        "data.slices.size=64",
        "data.slices.min_tumour_area=10",
        "data.slices.channels=stack3",
        "data.select={sequence: T1c}",
        "evaluate.bootstrap=20",
        "evaluate.gradcam_per_class=1",
        "model.weights=none",
    ]
    args = [a for s in settings for a in ("--set", s)]
    assert main(["cv", "alexnet-tumour", "--cohort", str(tmp_path / "cohort"), "-o", str(run), *args]) == 0
    predictions = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str})
    slices = pd.read_csv(run / "slices.csv", dtype={"patient_id": str})
    assert (predictions["vote_weight"] >= 10).all()
    assert (
        predictions["vote_weight"].tolist()
        == slices.set_index("slice_id").loc[predictions["slice_id"], "tumour_area"].tolist()
    )
    info = json.loads((run / "run.json").read_text())
    assert any("selection: tumour" in note for note in info["notes"])
    # predict one study with its mask: the patient's probability is the area-weighted mean of its slices'.
    brats = read([tiny_phantom / "brats"])
    patient = predictions["patient_id"].iloc[0]
    row = brats[(brats["patient_id"] == patient) & (brats["sequence"] == "T1c")].iloc[0]
    out = tmp_path / "prediction.json"
    assert main(["predict", str(run), row["path"], "--mask", row["mask_path"], "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    probs = np.array([[s["probabilities"][c] for c in result["classes"]] for s in result["slices"]])
    weights = (
        slices_from_file(
            Path(row["path"]),
            _settings(run),
            mask_path=row["mask_path"],
        )
        .table["tumour_area"]
        .to_numpy(float)
    )
    assert len(weights) == len(probs) and (weights >= 10).all() and len(set(weights)) > 1
    expected = np.average(probs, axis=0, weights=weights)
    got = np.array([result["patients"][0]["probabilities"][c] for c in result["classes"]])
    assert np.allclose(got, expected, atol=2e-6)


def _settings(run: Path) -> SliceSettings:
    from glioscope.trained import TrainedRun

    return TrainedRun(run).recipe.data.slices
