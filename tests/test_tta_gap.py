"""Test-time augmentation (evaluate.tta) alike in cross-validation and when a run is applied; the report's and the
terminal's training vs held-out figures, read from each fold's history and metrics.json."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
import yaml

from glioscope import cohort
from glioscope.cli import main
from glioscope.methods.deep import headline_probabilities
from glioscope.models import create_model
from glioscope.models.build import input_normalisation
from glioscope.models.outputs import probabilities
from glioscope.models.tta import tta_probabilities
from glioscope.recipe import load_recipe
from glioscope.report import gap
from glioscope.report.figures import line_words
from glioscope.rundir import CONFIG, HISTORY, RunFolder
from glioscope.trained import TrainedRun
from glioscope.util.schema import SettingError

SMALL = [
    "train.epochs=2",
    "cv.folds=2",
    "data.slices.size=32",
    "evaluate.bootstrap=20",
    "evaluate.gradcam_per_class=1",
    "model.name=smallcnn",
    "model.head=linear",
    "model.weights=none",
    "model.options={width: 4}",
    "train.validation=inner",
    "train.validation_fraction=0.3",
    "evaluate.tta=hflip",
]


@pytest.fixture(scope="module")
def tta_run(sagittal_cohort, module_tmp):
    """A 2-fold smallcnn run with an inner validation split and hflip test-time augmentation, and what `cv` printed."""
    out = module_tmp / "run"
    args = [a for s in SMALL for a in ("--set", s)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["cv", "alexnet", "--cohort", str(sagittal_cohort), "-o", str(out), *args]) == 0
    return out, printed.getvalue()


def _small_model(in_chans: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return create_model("smallcnn", 3, in_chans=in_chans, width=4).eval()


def test_tta_none_is_one_pass_untouched():
    model, x = _small_model(), torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = probabilities(model(x))
        got = tta_probabilities(model, x, "none")
        assert len(got) == len(expected) and all(torch.equal(a, b) for a, b in zip(got, expected))
        assert np.array_equal(headline_probabilities(model, x), expected[-1].numpy())  # the default: none
        assert np.array_equal(headline_probabilities(model, x, "none"), expected[-1].numpy())
    assert load_recipe("alexnet").evaluate.tta == "none"


def test_hflip_and_flips_average_the_mirrored_passes():
    model, x = _small_model(), torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        one = probabilities(model(x))[-1]
        mirrored = probabilities(model(x.flip(-1)))[-1]
        hflip = tta_probabilities(model, x, "hflip")[-1]
        assert (one - mirrored).abs().max() > 1e-4  # the network is not mirror-symmetric
        assert torch.allclose(hflip, (one + mirrored) / 2, atol=1e-7)
        assert not torch.allclose(hflip, one, atol=1e-5)
        upside = probabilities(model(x.flip(-2)))[-1]
        both = probabilities(model(x.flip(-2).flip(-1)))[-1]
        assert torch.allclose(tta_probabilities(model, x, "flips")[-1], (one + mirrored + upside + both) / 4, atol=1e-7)
        assert np.allclose(headline_probabilities(model, x, "hflip"), hflip.numpy(), atol=0)


def test_a_volume_is_mirrored_left_right_along_its_last_axis_and_each_member_averaged():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(1), nn.Linear(1 * 4 * 5 * 6, 3))  # position-dependent: no symmetry

    def members(v):  # an SDL-like output (members, N, classes)
        return torch.stack([net(v), net(v) * 2])

    x = torch.rand(2, 1, 4, 5, 6)  # (N, C, D, H, W): W the patient's right-left
    with torch.no_grad():
        got = tta_probabilities(members, x, "hflip")
        passes = [probabilities(members(v)) for v in (x, x.flip(-1))]
        assert len(got) == 3  # each member, then their mean
        for k in range(3):
            assert torch.allclose(got[k], (passes[0][k] + passes[1][k]) / 2, atol=1e-7)
        along_d = (probabilities(members(x))[-1] + probabilities(members(x.flip(2)))[-1]) / 2
        assert not torch.allclose(got[-1], along_d, atol=1e-4)  # D (inferior-superior) is not the mirrored axis


def test_a_tta_setting_typo_is_refused_naming_it(tmp_path):
    with pytest.raises(SettingError, match=r"evaluate\.tta: got 'flip'.*hflip") as caught:
        load_recipe("alexnet", ["evaluate.tta=flip"])
    assert caught.value.key == "evaluate.tta"
    own = tmp_path / "mine.yaml"
    own.write_text("base: alexnet\nevaluate:\n  tta: flip\n", encoding="utf-8")
    with pytest.raises(SettingError, match=r"evaluate\.tta"):
        load_recipe(own)
    from glioscope.methods import load_recipe as load_any

    with pytest.raises(SettingError, match=r"evaluate\.tta"):  # radiomics predicts features: no such setting
        load_any("radiomics-rf", ["evaluate.tta=hflip"])


def _held_out(run, frame, per_fold, table) -> list[tuple[np.ndarray, np.ndarray]]:
    """(applied, cross-validation) probabilities of each fold's held-out slices, matched by slice."""
    keys = ["patient_id", "item_id", "slice_id"]
    rows = table.reset_index(drop=True).reset_index()
    cv = RunFolder(run).predictions(TrainedRun(run).class_names)
    pairs = []
    for fold in sorted(cv["fold"].unique()):
        held = cv[(cv["fold"] == fold) & (cv["model"] == TrainedRun(run).headline)].merge(
            rows[keys + ["index"]], on=keys
        )
        assert len(held) == (cv["fold"] == fold).sum() / cv["model"].nunique() > 0
        pairs.append((per_fold[f"fold{fold}"][held["index"].to_numpy()], held.filter(like="prob_").to_numpy()))
    return pairs


def test_a_tta_run_applied_to_its_cohort_reproduces_its_cross_validation(tta_run, sagittal_cohort, tmp_path):
    run, _ = tta_run
    info = json.loads((run / "run.json").read_text())
    assert "test-time augmentation: mean of the image and its left-right mirror (evaluate.tta: hflip)" in info["notes"]
    frame = cohort.load(sagittal_cohort)
    trained = TrainedRun(run)
    result = trained.predict_rows(frame, progress=False)
    for applied, cv in _held_out(run, frame, result.per_fold, result.table):
        assert np.allclose(applied, cv, atol=1e-5)
    # by hand: each fold model's mean of the image and its mirror
    inputs = trained.rows_inputs(frame, progress=False)
    normalisation = input_normalisation(trained.recipe.model, trained.recipe.data.normalize)
    batch = inputs.dataset(np.ones(len(inputs), bool), np.zeros(len(inputs), np.int64), None, normalisation).inputs(
        range(len(inputs))
    )
    with torch.no_grad():
        by_hand = {
            fold: ((probabilities(m(batch))[-1] + probabilities(m(batch.flip(-1)))[-1]) / 2).numpy()
            for fold, m in trained.folds(inputs)
        }
    for applied, cv in _held_out(run, frame, by_hand, inputs.table):
        assert np.allclose(applied, cv, atol=1e-5)
    # the same weights without test-time augmentation do not give the run's predictions
    plain = tmp_path / "plain"
    shutil.copytree(run, plain)
    config = yaml.safe_load((plain / CONFIG).read_text())
    config["evaluate"]["tta"] = "none"
    (plain / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    untouched = TrainedRun(plain).predict_rows(frame, progress=False)
    assert max(np.abs(a - c).max() for a, c in _held_out(plain, frame, untouched.per_fold, untouched.table)) > 1e-4


def _gap_rows(text: str) -> dict[str, list[str]]:
    section = text[text.index("<h2>Training vs held-out</h2>") : text.index("<h2>Learning curves</h2>")]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", section, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if cells:
            rows[cells[0]] = cells
    return rows


def test_the_report_sets_each_folds_training_figures_beside_its_validation_and_held_out_ones(tta_run):
    run, printed = tta_run
    text = (run / "report.html").read_text(encoding="utf-8")
    rows = _gap_rows(text)
    metrics = json.loads((run / "metrics.json").read_text())
    held = {str(f["fold"]): f for f in metrics["cv"][metrics["models"][-1]]["patient"]["per_fold"]}
    train_accuracy, held_accuracy = [], []
    for fold in ("0", "1"):
        history = pd.read_csv(run / f"fold{fold}" / HISTORY)
        kept = history.loc[history["val_loss"].idxmin()]  # keep_best on val_loss: the best epoch's weights
        expected = [
            fold,
            f"{int(kept['epoch'])} (best val_loss)",
            *(f"{kept[c]:.3f}" for c in ("train_accuracy", "train_loss", "val_accuracy", "val_loss")),
            f"{held[fold]['accuracy']:.3f}",
            f"{held[fold]['macro_auc']:.3f}",
            f"{kept['train_accuracy'] - held[fold]['accuracy']:.3f}",
            f"{kept['train_accuracy'] - kept['val_accuracy']:.3f}",
        ]
        assert rows[fold] == expected
        train_accuracy.append(kept["train_accuracy"])
        held_accuracy.append(held[fold]["accuracy"])
    assert rows["mean"][2] == f"{np.mean(train_accuracy):.3f}"
    # the terminal summary of `cv`: one line, the same means
    [line] = [line for line in printed.splitlines() if line.startswith("training vs held-out")]
    assert f"training accuracy {np.mean(train_accuracy):.3f}" in line
    assert f"held-out {np.mean(held_accuracy):.3f} (patients)" in line
    assert f"gap {np.mean(train_accuracy) - np.mean(held_accuracy):.3f}" in line


def _history(train_accuracy: float, val: bool) -> pd.DataFrame:
    history = pd.DataFrame(
        {"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.2], "train_accuracy": [0.5, 0.7, train_accuracy]}
    )
    if val:
        history["val_loss"] = [0.9, 0.8, 1.1]
        history["val_accuracy"] = [0.5, 0.55, 0.5]
    return history


def _metrics(accuracy: float) -> dict:
    return {
        "models": ["m"],
        "cv": {"m": {"patient": {"per_fold": [{"fold": 0, "accuracy": accuracy, "macro_auc": 0.53}]}}},
    }


def test_a_large_gap_gets_its_sentence_and_a_small_one_none():
    without_validation = [(0, _history(0.94, val=False))]
    text = "".join(gap.section(without_validation, _metrics(0.53), {"keep_best": True, "monitor": "val_loss"}))
    assert "3 (last)" in text and "0.410" in text and gap.ADVICE in text  # 0.94 - 0.53, the last epoch
    assert "Validation accuracy" not in text
    assert gap.ADVICE not in "".join(gap.section(without_validation, _metrics(0.9), {}))
    line = gap.summary_line(without_validation, _metrics(0.53), {})
    assert line.endswith(gap.ADVICE) and "training accuracy 0.940" in line and "gap 0.410" in line
    with_validation = [(0, _history(0.94, val=True))]
    text = "".join(gap.section(with_validation, _metrics(0.6), {"keep_best": True, "monitor": "val_loss"}))
    assert "2 (best val_loss)" in text and "0.700" in text and "0.150" in text  # epoch 2: 0.7 - 0.55
    assert gap.ADVICE not in text
    last = "".join(gap.section(with_validation, _metrics(0.6), {"keep_best": False}))
    assert "3 (last)" in last and gap.ADVICE in last  # 0.94 - 0.5 on validation


def test_learning_curves_say_when_there_is_no_validation_split():
    assert line_words(_history(0.9, val=True)) == "training (solid) vs validation (dashed)"
    assert "no validation split" in line_words(_history(0.9, val=False))


def test_a_package_of_a_tta_run_says_so_and_predicts_as_the_run(tta_run, sagittal_cohort, tmp_path):
    run, _ = tta_run
    assert main(["export", str(run), "-o", str(tmp_path / "package")]) == 0
    card = (tmp_path / "package" / "README.md").read_text(encoding="utf-8")
    assert "Test-time augmentation: each fold model's probability is the mean of the image and its left-right" in card
    frame = cohort.load(sagittal_cohort)
    packaged = TrainedRun(tmp_path / "package").predict_rows(frame, progress=False)
    assert np.allclose(packaged.ensemble, TrainedRun(run).predict_rows(frame, progress=False).ensemble, atol=1e-6)
