"""glioscope pretrain: supervised and SimCLR pretraining, provenance, loading into recipes, leak checks, resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glioscope.cli import main
from glioscope.errors import PatientLeakError
from glioscope.ingest import ingest
from glioscope.models import create_model
from glioscope.models.build import build_model
from glioscope.models.spec import ModelSpec
from glioscope.pretrain import provenance
from glioscope.pretrain.simclr import nt_xent
from glioscope.recipe import load_recipe
from glioscope.util.tensors import load_tensors

FAST = ["train.epochs=1", "train.batch_size=8", "data.slices.size=32", "model.weights=none", "train.tensorboard=false"]
CLASSES = ("II", "III")


def _image(seed: int) -> np.ndarray:
    """A 40 x 40 grey image: a bright disc with a random texture, so its hashes are its own."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:40, :40]
    disc = ((yy - 20) ** 2 + (xx - 20) ** 2 < 16**2).astype(float)
    return np.clip(disc * rng.uniform(80, 250, (40, 40)), 0, 255).astype(np.uint8)


def _cohort(root: Path, name: str, patients: list[str], seed: int, copies: dict[str, Path] | None = None) -> Path:
    """An image-folder cohort: 3 images per patient, class by patient order; `copies` adds images copied byte for byte."""
    source = root / f"{name}-images"
    for k, patient in enumerate(patients):
        folder = source / CLASSES[k % 2]
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(3):
            Image.fromarray(_image(seed * 1000 + k * 10 + j)).save(folder / f"{patient}_{j}.png")
    for target, original in (copies or {}).items():
        (source / CLASSES[0] / target).write_bytes(original.read_bytes())
    ingest(
        [source], root / name, format="imagefolder", patient_regex=r"^(?P<patient>[^_]+)_", progress=False, echo=None
    )
    return root / name


@pytest.fixture(scope="module")
def cohorts(module_tmp, monkeypatch_module):
    """Pretraining patients P0-P7; evaluation patients E0-E5, one of whose images is a copy of a pretraining one."""
    root = module_tmp
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(root / "cache"))
    pretraining = _cohort(root, "pretraining", [f"P{k}" for k in range(8)], seed=1)
    copied = root / "pretraining-images" / "II" / "P0_0.png"
    evaluation = _cohort(root, "evaluation", [f"E{k}" for k in range(6)], seed=2, copies={"E0_9.png": copied})
    return {"root": root, "pretraining": pretraining, "evaluation": evaluation}


def _pretrain(cohort: Path, out: Path, *extra: str, recipe: str = "r18", settings=FAST) -> int:
    args = [arg for item in settings for arg in ("--set", item)]
    return main(["pretrain", recipe, "--cohort", str(cohort), "-o", str(out), *args, *extra])


@pytest.fixture(scope="module")
def supervised(cohorts):
    out = cohorts["root"] / "supervised"
    assert _pretrain(cohorts["pretraining"], out) == 0
    return out


def test_supervised_pretraining_writes_torchvision_weights_and_provenance(supervised):
    content = load_tensors(supervised / provenance.WEIGHTS)  # weights_only: tensors and plain values
    state = content["state_dict"]
    assert "conv1.weight" in state and "layer4.1.bn2.running_var" in state
    assert not any(k.startswith("fc.") for k in state)  # the pretraining head is not written
    record = json.loads((supervised / provenance.PROVENANCE).read_text())
    assert record["method"] == "supervised" and record["architecture"] == "resnet18"
    assert (record["patients"], record["images"], record["epochs"]) == (8, 24, 1)
    assert record["classes"] == list(CLASSES) and len(record["loss"]) == 1 and record["loss"][0] > 0
    assert record["sources"][0]["cohort"] == "pretraining" and record["wall_seconds"] > 0
    assert record["summary"].startswith(
        "pretrained on pretraining (pretraining-images), 8 patients, 24 images, 1 epoch"
    )
    assert len(content["fingerprints"]["exact"]) == 24
    assert "P0" not in json.dumps(content["fingerprints"]["patients"])  # ids are stored hashed
    assert (supervised / "loss.png").stat().st_size > 0 and not (supervised / "checkpoint_last.pt").exists()


def test_the_weights_load_into_a_recipe_backbone_and_sdl_members_with_a_report(supervised):
    path = str(supervised / provenance.WEIGHTS)
    state = load_tensors(path)["state_dict"]
    built = build_model(ModelSpec(name="resnet18", weights=path), 3, 3)
    assert torch.equal(built.model.backbone.conv1.weight, state["conv1.weight"])
    assert built.model.fc.out_features == 3
    assert any(f"{path}: 120 tensors loaded into resnet18; 0 in the file skipped" in n for n in built.notes)
    sdl = build_model(ModelSpec(name="sdl", backbone="resnet18", weights=path), 3, 3)
    assert all(
        torch.equal(m.backbone.layer1[0].conv1.weight, state["layer1.0.conv1.weight"]) for m in sdl.model.members
    )
    assert any("(each of 2 member networks)" in n for n in sdl.notes)
    recipe = load_recipe("r18", [f"model.weights={path}"])  # --set model.weights=PATH: a recipe-level choice
    assert recipe.model.weights == path


def test_a_run_says_what_its_weights_were_pretrained_on_and_warns_on_copied_images(cohorts, supervised):
    out = cohorts["root"] / "run"
    args = [
        a
        for s in [
            *FAST[:-2],
            "cv.folds=2",
            "evaluate.bootstrap=20",
            "evaluate.gradcam_per_class=0",
            f"model.weights={supervised / provenance.WEIGHTS}",
        ]
        for a in ("--set", s)
    ]
    with pytest.warns(UserWarning, match="identical to images of the patients this run evaluates"):
        assert main(["train", "r18", "--cohort", str(cohorts["evaluation"]), "-o", str(out), *args]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["training"]["weights"]["summary"].startswith("pretrained on pretraining")
    assert info["training"]["weights"]["pretrained"]["method"] == "supervised"
    assert any("120 tensors loaded into resnet18" in n for n in info["notes"])
    assert any("1 pretraining image(s) identical" in n for n in info["notes"])
    assert "pretrained on pretraining (pretraining-images), 8 patients, 24 images" in (out / "report.html").read_text()


def test_a_run_evaluating_patients_the_weights_were_pretrained_on_is_refused(cohorts, supervised, capsys):
    out = cohorts["root"] / "refused"
    args = [
        a for s in [*FAST[:-2], "cv.folds=2", f"model.weights={supervised / provenance.WEIGHTS}"] for a in ("--set", s)
    ]
    assert main(["train", "r18", "--cohort", str(cohorts["pretraining"]), "-o", str(out), *args]) == 2
    error = capsys.readouterr().err
    assert "patient leak" in error and re.search(r"on \d patient\(s\) this run evaluates or validates on: P\d", error)
    assert not out.exists()


@pytest.fixture(scope="module")
def simclr_excluding(cohorts):
    """SimCLR (seed 0) on the pretraining cohort, excluding the evaluation cohort (one image of which is a copy)."""
    out = cohorts["root"] / "simclr-excluding"
    with pytest.warns(UserWarning, match="1 pretraining image\\(s\\) identical to images of the excluded evaluation"):
        assert (
            _pretrain(cohorts["pretraining"], out, "--exclude", str(cohorts["evaluation"]), "--method", "simclr") == 0
        )
    return out


def test_pretraining_refuses_excluded_patients_and_warns_on_identical_images(cohorts, simclr_excluding):
    out = cohorts["root"] / "excluded"
    assert _pretrain(cohorts["pretraining"], out, "--exclude", str(cohorts["pretraining"])) == 2
    assert not (out / provenance.WEIGHTS).exists()
    with pytest.raises(PatientLeakError, match="P3"):
        from glioscope.pretrain.leaks import check_patients

        check_patients({"P3", "X9"}, [cohorts["pretraining"]])
    record = json.loads((simclr_excluding / provenance.PROVENANCE).read_text())
    assert record["excluded"][0]["identical_images"] == 1 and record["method"] == "simclr"
    assert any("identical to images of the excluded evaluation" in n for n in record["notes"])


def test_simclr_same_seed_same_weights(cohorts, simclr_excluding):
    out = cohorts["root"] / "simclr-again"
    assert _pretrain(cohorts["pretraining"], out, "--method", "simclr") == 0
    a, b = (load_tensors(path / provenance.WEIGHTS)["state_dict"] for path in (simclr_excluding, out))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)  # the leak check changes nothing
    torch.manual_seed(0)
    initial = create_model("resnet18", 1, 3, head="linear").backbone.state_dict()
    assert not torch.equal(a["layer1.0.conv1.weight"], initial["layer1.0.conv1.weight"])  # and it trained
    record = json.loads((out / provenance.PROVENANCE).read_text())
    assert record["summary"].endswith("1 epoch, simclr; resnet18") and record["settings"]["augment"]["zoom"] == [
        1.0,
        1.6,
    ]
    assert 0 <= record["train_accuracy"][0] <= 1


def test_nt_xent_is_low_when_each_view_finds_its_pair():
    pairs = torch.eye(8)[:4]
    aligned, found = nt_xent(torch.cat([pairs, pairs]), temperature=0.1)
    shuffled, _ = nt_xent(torch.cat([pairs, pairs.roll(1, 0)]), temperature=0.1)
    assert found == 8 and aligned < 0.01 < shuffled


def test_the_simclr_trainer_builds_nt_xent_at_the_temperature_it_was_given(tmp_path):
    from glioscope.pretrain.simclr import SimCLRNet, SimCLRTrainer

    net = SimCLRNet(torch.nn.Flatten(), 12, projection=4, hidden=8)
    trainer = SimCLRTrainer(
        net, {"precision": "fp32", "tensorboard": False}, ["view"], tmp_path, progress=False, temperature=0.1
    )
    projections = torch.randn(6, 4)
    (loss, found), (expected, pairs) = trainer.criterion(projections), nt_xent(projections, temperature=0.1)
    assert torch.equal(loss, expected) and found == pairs
    assert not torch.equal(loss, nt_xent(projections, temperature=0.5)[0])  # not the class's default


def test_a_killed_pretraining_leaves_no_weights_and_resumes_to_the_same_result(cohorts, monkeypatch):
    from glioscope.train.loop import Trainer

    settings = [*FAST[1:], "train.epochs=2"]
    original = Trainer._run_epoch

    def killed_in_second_epoch(self, train_set, val_set, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, train_set, val_set, epoch)

    out = cohorts["root"] / "resumed"
    monkeypatch.setattr(Trainer, "_run_epoch", killed_in_second_epoch)
    assert _pretrain(cohorts["pretraining"], out, settings=settings) == 130
    assert not (out / provenance.WEIGHTS).exists() and (out / "checkpoint_last.pt").is_file()
    first_epoch = (out / "metrics.csv").read_text()
    monkeypatch.setattr(Trainer, "_run_epoch", original)
    assert _pretrain(cohorts["pretraining"], out, settings=settings) == 2  # a used folder needs --resume
    assert _pretrain(cohorts["pretraining"], out, "--resume", settings=[*settings, "train.lr=0.1"]) == 2  # not the same
    assert _pretrain(cohorts["pretraining"], out, "--resume", settings=settings) == 0
    record = json.loads((out / provenance.PROVENANCE).read_text())
    assert record["epochs"] == 2 and len(record["loss"]) == 2
    assert (out / "metrics.csv").read_text().startswith(first_epoch.strip())  # epoch 1 was not trained again


def test_pretraining_in_a_log_prints_lines_during_an_epoch(cohorts, tmp_path, monkeypatch, capsys):
    from glioscope.train.loop import Trainer

    monkeypatch.setenv("GLIOSCOPE_PROGRESS", "lines")  # as in a log file: no progress bar
    monkeypatch.setattr(Trainer, "progress_every_s", 0.0)  # a line after every batch, instead of every 30 s
    assert _pretrain(cohorts["pretraining"], tmp_path / "out") == 0
    err = capsys.readouterr().err
    found = re.findall(
        r"^pretrain-supervised-resnet18 epoch 1/1: (\d+)/(\d+) batch\(s\), \d+ s, ~\d+ s left", err, re.M
    )
    assert found, err
    assert [int(n) for n, _ in found] == list(range(1, int(found[0][1]) + 1))  # every batch of the epoch, in order
    assert "\r" not in err  # lines, not a bar's rewrites


def test_a_stage_line_is_silent_during_a_stage_unless_asked(capsys):
    from glioscope.util.progress import StageLine

    list(StageLine(range(5), total=5, desc="decoding", unit="file", summary=False))
    assert capsys.readouterr().err == ""
    list(StageLine(range(3), total=3, desc="decoding", unit="file", summary=False, every_s=0.0))
    assert re.findall(r"^decoding: (\d)/3 file\(s\)", capsys.readouterr().err, re.M) == ["1", "2", "3"]
