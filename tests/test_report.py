"""write_report: one self-contained page that states the split and puts patient level first."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn as nn

from glioscope.evaluate.gradcam import gradcam_panels
from glioscope.evaluate.run import evaluate_run
from glioscope.models.heads import Classifier
from glioscope.report import write_report
from glioscope.report.testing import SDL_MODELS, fake_run
from glioscope.split import LEAKY_WARNING


@pytest.fixture(scope="module")
def sdl_report(tmp_path_factory):
    run = fake_run(tmp_path_factory.mktemp("runs") / "sdl", n_patients=24, folds=2, test_patients=4, epochs=4)
    evaluate_run(run, n_boot=50)
    torch.manual_seed(0)
    model = Classifier(
        nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1)),
        nn.Identity(),
        4,
        3,
    )
    panels = gradcam_panels(model, torch.randn(3, 1, 16, 16), labels=[0, 1, 2], class_names=["II", "III", "IV"])
    return run, write_report(run, gradcam_panels=panels)


def test_report_is_self_contained(sdl_report):
    run, out = sdl_report
    assert out == run / "report.html"
    text = out.read_text(encoding="utf-8")
    assert text.count('src="data:image/png;base64,') >= 2 + 2 + 3 + 1 + 3  # curves, confusion, ROC, Grad-CAM
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.IGNORECASE)
    assert "<script" not in text.lower()
    figures = sorted(p.name for p in (run / "figures").glob("*.png"))
    assert "learning_curves_fold0.png" in figures and "roc_patient.png" in figures and "gradcam_1.png" in figures


def test_report_states_the_split_and_lists_every_model(sdl_report):
    _, out = sdl_report
    text = out.read_text(encoding="utf-8")
    assert "Split by patient: no patient has items in two partitions." in text
    headline = text[text.index("<h3>Patient level</h3>") : text.index("<h3>Image level</h3>")]
    for model in SDL_MODELS:
        assert f'<td class="label">{model}</td>' in headline
    assert "±" in headline and "[" in headline
    assert 'class="banner leaky"' not in text and "LEAKY" not in text
    assert "no patient ids" not in text


def test_report_order_patient_first_then_sections(sdl_report):
    _, out = sdl_report
    text = out.read_text(encoding="utf-8")
    order = [
        "Split by patient",
        "<h3>Patient level</h3>",
        "<h3>Image level</h3>",
        "Per class (patient level)",
        "Table 2 of the SDL paper",
        "Table 3 of the SDL paper",
        "the AutoAugment paper",
        "Learning curves",
        "Confusion matrices",
        "ROC curves",
        "held-out test set",
        "Grad-CAM",
        "Notes",
        "<footer>",
    ]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "fake run written by glioscope.report.testing" in text  # run.json notes


def test_leaky_banner_only_for_leaky_runs(tmp_path):
    run = fake_run(tmp_path / "leaky", models=["alexnet"], n_patients=12, folds=2, leaky=True, epochs=2)
    text = write_report(run, n_boot=20).read_text(encoding="utf-8")
    assert 'class="banner leaky"' in text
    assert text.index('class="banner leaky"') < text.index("<h2>")
    assert LEAKY_WARNING.split(":")[0] in text


def test_warning_without_patient_ids(tmp_path):
    run = fake_run(
        tmp_path / "folder",
        models=["resnet18"],
        class_names=["0", "1"],
        n_patients=12,
        folds=2,
        patient_ids=False,
        prob_by_index=True,
        epochs=2,
    )
    text = write_report(run, n_boot=20).read_text(encoding="utf-8")
    assert "no patient ids: results are per image and may overestimate" in text
    assert 'class="banner leaky"' not in text


def test_the_report_cites_what_it_shows_after_its_notes(sdl_report):
    _, out = sdl_report
    text = out.read_text(encoding="utf-8")
    cited = text[text.index("<h2>References</h2>") :]
    assert text.index("<h2>Notes</h2>") < text.index("<h2>References</h2>")
    # the method (sdl), the three table layouts shown, Grad-CAM; no permutation test was run
    for words in ("Chopra", "Zhang", "Harkude", "Lo, Yu-Chih Chen", "Selvaraju"):
        assert words in cited, words
    assert "Ojala" not in cited and not re.search(r"[Ss]eed[ -]00\d", text)


def test_a_run_written_before_the_papers_were_named_keeps_its_tables(tmp_path):
    import json

    run = fake_run(tmp_path / "old", n_patients=12, folds=2, epochs=2)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "seed_tables": ["seed002"]}))
    evaluate_run(run, n_boot=20)
    text = write_report(run).read_text(encoding="utf-8")
    assert "Tables 2-5 of the spatio-spatial paper" in text and "Table 2 of the SDL paper" not in text
    assert "Harkude" in text[text.index("<h2>References</h2>") :]
