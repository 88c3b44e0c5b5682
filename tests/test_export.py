"""The model package: loadable without the run folder, no patient ids or images inside, TorchScript that agrees."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from glioscope import model_card
from glioscope.cli import main
from glioscope.models.outputs import probabilities
from glioscope.predict import predict
from glioscope.trained import TrainedRun
from glioscope.recipe import load_recipe
from glioscope.rundir import RunRecord
from glioscope.train.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def package(tiny_2d_run, module_tmp):
    out = module_tmp / "sdl-tiny"
    assert main(["export", str(tiny_2d_run), "-o", str(out), "--torchscript"]) == 0
    return out


def test_the_package_has_its_card_metadata_and_weights_and_no_patient(package, tiny_2d_run):
    names = {p.name for p in package.iterdir()}
    assert {
        "README.md",
        "metadata.json",
        "config.yaml",
        "run.json",
        "metrics.json",
        "patients.json",
        "manifest.json",
        "fingerprints.npz",
        "fold0",
        "fold1",
    } <= names and "cohort.csv" not in names
    card = (package / "README.md").read_text()
    assert "not for diagnosis" in card and "9 patients: II 3, III 3, IV 3" in card
    assert "synthetic phantom only" in card and "| AUC |" in card
    meta = json.loads((package / "metadata.json").read_text())
    image = meta["network_data_format"]["inputs"]["image"]
    assert image["modality"] == "MR" and image["num_channels"] == 3 and image["spatial_shape"] == [64, 64]
    assert meta["network_data_format"]["outputs"]["pred"]["channel_def"] == {"0": "II", "1": "III", "2": "IV"}
    assert meta["ensemble"]["headline_model"] == "sdl/mean" and meta["intended_use"].startswith("Research")
    ids = set(pd.read_csv(tiny_2d_run / "cohort.csv", dtype=str)["patient_id"])
    for path in package.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".json", ".yaml", ".sha256"):
            text = path.read_text()
            assert not [i for i in ids if i in text], path.name  # ids only hashed
    state = load_checkpoint(package / "fold0" / "model.pt")  # weights_only=True
    assert set(state) == {"model", "best_epoch", "precision"}


def test_torchscript_gives_the_pytorch_probabilities(package):
    run = TrainedRun(package)
    [(_, model), *_] = run.folds(SimpleNamespace(channels=3))
    scripted = torch.jit.load(str(package / "fold0" / "model.ts"))
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(probabilities(model(x))[-1], probabilities(scripted(x))[-1], atol=1e-5)
    assert json.loads((package / "run.json").read_text())["package"]["checks"]["torchscript_max_difference"]


def test_predict_and_test_load_the_package_as_they_load_the_run(
    package, tiny_2d_run, tiny_phantom, tmp_path, capsys, sagittal_cohort
):
    study = sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]
    from_run, from_package = predict(tiny_2d_run, study), predict(package, study)
    assert from_package["patients"][0]["probabilities"] == from_run["patients"][0]["probabilities"]
    assert from_package["patients"][0]["seen_in_training"] is True  # told by the hashed ids
    frame = pd.read_csv(sagittal_cohort / "cohort.csv", dtype=str, keep_default_na=False)
    frame["patient_id"] = "new-" + frame["patient_id"]
    (tmp_path / "renamed").mkdir()
    frame.to_csv(tmp_path / "renamed" / "cohort.csv", index=False)
    assert main(["test", str(package), "--cohort", str(tmp_path / "renamed"), "-o", str(tmp_path / "t")]) == 2
    assert "identical to images the run trained on" in capsys.readouterr().err  # told by the stored fingerprints


def test_the_card_says_what_a_task_is_known_to_be():
    recipe = load_recipe("eff")
    cohort = pd.DataFrame({"patient_id": ["a", "b"], "label": ["0", "1"], "path": ["/nowhere/a", "/nowhere/b"]})
    caveats = model_card._caveats(recipe, RunRecord("r", ["0", "1"], ["r"], leaky=True), cohort, {"0": 1, "1": 1})
    assert any("MGMT" in c for c in caveats) and any("leaky" in c for c in caveats)
    assert not any("phantom" in c for c in caveats)


def test_the_card_cites_the_papers_of_its_method(package):
    card = (package / "README.md").read_text()
    cited = card[card.index("## References") :]
    assert "Chopra" in cited and "Development of Synergic Deep Learning Model for Glioma Tumor Grading" in cited
    assert "Medical image classification using synergic deep learning" in cited and "2019" in cited
    meta = json.loads((package / "metadata.json").read_text())
    assert [r["year"] for r in meta["references"]] == [None, 2019]
    assert meta["references"][1]["authors"][0] == "Jianpeng Zhang"
