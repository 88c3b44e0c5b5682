"""How unlike the training data a prediction is (glioscope.typicality): calibrated on the run's own held-out patients,
so that patients like the training ones are rarely flagged and images unlike them are."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from glioscope.batch import predict_batch, write_batch
from glioscope.cli import main
from glioscope.evaluate.typicality import ALPHA, MIN_CALIBRATION, Calibration, Reference
from glioscope.ingest import ingest
from glioscope.rundir import COHORT, REPORT, TYPICALITY, UNLIKE
from glioscope.synth import PRESETS, synthesize
from glioscope.trained import TrainedRun
from glioscope.typicality import _patient_vectors

PRESET = replace(PRESETS["tiny"], name="tiny24", n_per_grade=8, n_healthy=0)  # 24 held-out patients: p down to 1/25
FAST = [
    "train.epochs=1",
    "cv.folds=2",
    "data.slices.size=64",
    "data.select={}",
    "model.weights=none",
    "evaluate.bootstrap=20",
    "evaluate.gradcam_per_class=0",
    "train.batch_size=8",
]


def _phantom(root, seed: int, change=None):
    """A 24-patient 2D phantom cohort (PNG slices), its images optionally changed pixel by pixel."""
    synthesize(root / f"phantom{seed}", preset=PRESET, seed=seed, progress=False, layouts=["imagefolder"])
    images = root / f"phantom{seed}" / "imagefolder"
    if change is not None:
        for path in images.rglob("*.png"):
            Image.fromarray(change(np.asarray(Image.open(path)))).save(path)
    out = root / f"cohort{seed}"
    ingest([images], out, format="imagefolder", patient_regex=r"^(?P<patient>[^_]+)_", progress=False, echo=None)
    if seed:  # other patients than the run's (the phantom numbers its patients alike in every cohort)
        table = pd.read_csv(out / COHORT)
        table["patient_id"] = f"S{seed}-" + table["patient_id"].astype(str)
        table.to_csv(out / COHORT, index=False)
    return out


@pytest.fixture(scope="module")
def phantom_run(module_tmp, monkeypatch_module):
    """A 2-fold alexnet run on one phantom, and a fresh phantom of the same preset (another seed)."""
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(module_tmp / "cache"))
    cohort = _phantom(module_tmp, 0)
    args = [arg for item in FAST for arg in ("--set", item)]
    assert main(["cv", "alexnet", "--cohort", str(cohort), "-o", str(module_tmp / "run"), *args]) == 0
    return {"root": module_tmp, "run": module_tmp / "run", "fresh": _phantom(module_tmp, 1)}


def _scores(result) -> tuple[np.ndarray, np.ndarray]:
    entries = [p["unlike_training"] for p in result["patients"]]
    return np.array([e["p_value"] for e in entries]), np.array([e["warning"] for e in entries])


def test_patients_like_the_training_ones_are_rarely_flagged_and_unlike_ones_are(phantom_run, tmp_path, capsys):
    root = phantom_run["root"]
    fresh = predict_batch(phantom_run["run"], [phantom_run["fresh"]], progress=False)
    p_fresh, flagged_fresh = _scores(fresh)
    assert len(p_fresh) == 24 and flagged_fresh.mean() <= 0.25 and np.median(p_fresh) > 0.2
    assert (phantom_run["run"] / TYPICALITY).is_file()  # made once, kept with the run
    assert "Unlike the training data" in (phantom_run["run"] / REPORT).read_text()  # the report states it again
    rng = np.random.default_rng(0)
    unlike = {
        "inverted": lambda a: (255 - a).astype(np.uint8),
        "noise": lambda a: rng.integers(0, 256, a.shape, dtype=np.uint8),
    }
    for seed, (name, change) in enumerate(unlike.items(), start=2):
        cohort = _phantom(root, seed, change)
        result = predict_batch(phantom_run["run"], [cohort], progress=False)
        p, flagged = _scores(result)
        assert flagged.mean() >= 0.9, name
        assert np.median(p) < np.median(p_fresh) and (p < ALPHA).sum() == flagged.sum()
        assert any("unlike the run's training data" in note for note in result["notes"])
    capsys.readouterr()
    assert main(["predict", str(phantom_run["run"]), str(cohort)]) == 0
    assert capsys.readouterr().out.count("Unlike the training data: farther") == flagged.sum()  # a line per patient
    table, everything = write_batch(result, tmp_path / "predictions.csv")
    rows = pd.read_csv(table)
    assert {"unlike_p_value", "unlike_distance", "unlike_threshold", "unlike_warning"} <= set(rows.columns)
    assert (
        rows["unlike_warning"].astype(bool).tolist() == flagged.tolist() and (rows["unlike_threshold"] == ALPHA).all()
    )
    assert json.loads(everything.read_text())["patients"][0]["unlike_training"]["threshold"] == ALPHA


def test_a_changed_fold_model_remakes_the_calibration(phantom_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(phantom_run["run"], run)
    predict_batch(run, [phantom_run["fresh"]], progress=False)
    before = Calibration.load(run / TYPICALITY)
    model = run / "fold0" / "model.pt"
    model.write_bytes(model.read_bytes())  # same weights, same digest: kept
    assert Calibration.load(run / TYPICALITY).key == before.key
    import torch

    state = torch.load(model, weights_only=True)
    state["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in state["model"].items()}
    torch.save(state, model)
    predict_batch(run, [phantom_run["fresh"]], progress=False)
    after = Calibration.load(run / TYPICALITY)
    assert after.key != before.key and not np.allclose(after.held_out, before.held_out)


def test_a_package_gives_the_same_scores_as_its_run_and_holds_no_patient_id(phantom_run, tmp_path):
    package = tmp_path / "package"
    assert main(["export", str(phantom_run["run"]), "-o", str(package)]) == 0
    with np.load(package / TYPICALITY, allow_pickle=False) as archive:
        text = " ".join(str(archive[k]) for k in archive.files if archive[k].dtype.kind == "U")
    ids = pd.read_csv(phantom_run["run"] / COHORT)["patient_id"].astype(str)
    assert not any(p in text for p in ids)
    from_run = predict_batch(phantom_run["run"], [phantom_run["fresh"]], progress=False)
    from_package = predict_batch(package, [phantom_run["fresh"]], progress=False)
    assert [p["unlike_training"] for p in from_run["patients"]] == [
        p["unlike_training"] for p in from_package["patients"]
    ]


def test_a_run_whose_cohort_images_are_gone_says_so_and_still_predicts(phantom_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(phantom_run["run"], run)
    (run / TYPICALITY).unlink(missing_ok=True)
    cohort = pd.read_csv(run / COHORT)
    for column in [c for c in cohort.columns if c.endswith("path")]:
        cohort[column] = [str(tmp_path / "gone" / f"{k}.png") if v == v else v for k, v in enumerate(cohort[column])]
    cohort.to_csv(run / COHORT, index=False)
    result = predict_batch(run, [phantom_run["fresh"]], progress=False)
    assert all(p["unlike_training"] is None for p in result["patients"])
    assert all(
        p["unlike_training_note"].startswith("cannot tell how unlike the training data") for p in result["patients"]
    )
    assert any("cohort images cannot be read" in n or "none of the run's cohort" in n for n in result["notes"])
    assert not (run / TYPICALITY).exists()


def test_an_external_test_reports_the_share_flagged(phantom_run, tmp_path):
    out = tmp_path / "test"
    assert (
        main(
            [
                "test",
                str(phantom_run["run"]),
                "--cohort",
                str(phantom_run["fresh"]),
                "-o",
                str(out),
                "--bootstrap",
                "20",
            ]
        )
        == 0
    )
    summary = json.loads((out / "run.json").read_text())["external"]["unlike_training"]
    table = pd.read_csv(out / UNLIKE)
    assert summary["patients"] == len(table) == 24 and summary["flagged"] == int(table["warning"].sum())
    assert summary["threshold"] == ALPHA and "flagged as unlike the run" in (out / REPORT).read_text()


def test_the_web_app_shows_a_warning_beside_the_verdict_when_flagged(phantom_run, tmp_path):
    pytest.importorskip("fastapi", reason="glioscope serve needs fastapi (pip install -e .)")
    from fastapi.testclient import TestClient

    from glioscope.serve import Limits, create_app

    shutil.copytree(phantom_run["run"], tmp_path / "runs" / "alex")
    token, base = "a-launch-token-for-this-test-0123456789", "http://127.0.0.1:8000"
    client = TestClient(create_app(tmp_path / "runs", Limits(), token=token), base_url=base, headers={"Origin": base})
    assert client.get("/", params={"token": token}).status_code == 200
    fresh = sorted((phantom_run["root"] / "phantom1" / "imagefolder").rglob("*.png"))[0]
    shape = np.asarray(Image.open(fresh)).shape
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)).save(noise)
    pages = {}
    for name, image in {"fresh": fresh, "noise": noise}.items():
        files = [("files", (image.name, image.read_bytes()))]
        answer = client.post("/api/predict", data={"model": "alex"}, files=files).json()
        page = client.post("/predict", data={"model": "alex"}, files=files)
        assert page.status_code == 200
        pages[name] = (answer["patients"][0]["unlike_training"], page.text)
    assert pages["noise"][0]["warning"] and 'class="banner warning" id="unlike-training"' in pages["noise"][1]
    assert not pages["fresh"][0]["warning"] and 'id="unlike-training"' not in pages["fresh"][1]
    assert pages["noise"][1].index('id="unlike-training"') < pages["noise"][1].index('id="probabilities"')


def test_a_run_with_too_few_held_out_patients_says_so(tiny_2d_run, sagittal_cohort):
    """The tiny SDL run (9 patients): no p-value could fall below 0.05, so its cohort is not measured; its members'
    features are there to measure."""
    result = predict_batch(tiny_2d_run, [sagittal_cohort], progress=False)
    assert all(p["unlike_training"] is None for p in result["patients"])
    assert any(f"at least {MIN_CALIBRATION} are needed" in n for n in result["notes"])
    assert not (tiny_2d_run / TYPICALITY).exists()  # told before its cohort was decoded for nothing
    run = TrainedRun(tiny_2d_run)
    inputs = run.rows_inputs(run.folder.cohort(), None, False)
    vectors = _patient_vectors(run, inputs, False)  # an SDL run's members' features, side by side
    patients = pd.read_csv(tiny_2d_run / COHORT)["patient_id"].nunique()
    assert all(v.shape == (patients, 2 * 256) for v in vectors.values()) and patients < MIN_CALIBRATION


def test_conformal_p_values_flag_about_alpha_of_exchangeable_patients_and_most_shifted_ones():
    rng = np.random.default_rng(0)
    references = {f"fold{k}": Reference.of(rng.normal(size=(60, 8))) for k in range(3)}
    held = np.concatenate([r.distances(rng.normal(size=(30, 8))) for r in references.values()])
    made = Calibration(references, held, "key")
    alike = {f: rng.normal(size=(4000, 8)) for f in references}
    same = {f: alike["fold0"] for f in references}
    p, _ = made.score(same)
    assert 0.02 <= (p < ALPHA).mean() <= 0.08
    p_shifted, _ = made.score({f: v + 3.0 for f, v in same.items()})
    assert (p_shifted < ALPHA).mean() > 0.95
    assert np.all((made.p_values(held) >= 1 / (len(held) + 1)) & (made.p_values(held) <= 1))
    threshold = made.distance_threshold()
    assert made.p_values([threshold])[0] >= ALPHA > made.p_values([threshold + 1e-9])[0]


@pytest.mark.parametrize("kind", ["radiomics", "deepfeatures"])
@pytest.mark.parametrize("model", ["logistic", "forest"])
def test_a_classifier_run_measures_its_features_as_the_fitted_pipeline_sees_them(kind, model):
    from glioscope.methods import METHODS, load_recipe
    from glioscope.radiomics.classifier import grid, make_model
    from glioscope.radiomics.feature_set import FeatureSet
    from glioscope.radiomics.portable import PortableClassifier

    rng = np.random.default_rng(0)
    names = ["a", "b", "constant", "d"]
    X = rng.normal(size=(20, 4))
    X[:, 2], X[3, 0] = 1.0, np.nan  # a constant feature is dropped, a missing value imputed
    y = np.arange(20) % 2
    settings = load_recipe("radiomics", [f"classifier.model={model}", "classifier.trees=5"])[1].classifier
    pipeline = make_model(grid(settings)[0], settings).fit(X, y)
    fitted = PortableClassifier.from_pipeline(pipeline, names)
    table = pd.DataFrame({"patient_id": [f"p{k}" for k in range(20)], "label": "", "path": ""})
    inputs = FeatureSet(table, pd.DataFrame(X, index=table["patient_id"], columns=names))
    found = METHODS[kind].embeddings([("fold0", fitted)], inputs, None, None, False)
    assert np.allclose(found["fold0"], pipeline[:-1].transform(X))
    assert found["fold0"].shape[1] < 4  # the constant feature is not a dimension of the distance
