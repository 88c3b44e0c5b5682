"""A run's title and description (glioscope.rundir.labels): what its own settings are, wherever the run is shown,
and its recipe's description only where --set left what that describes as it was."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from glioscope.cli import main
from glioscope.methods import load_recipe, recipe_names
from glioscope.rundir import CONFIG, INFO, METADATA, MODEL_CARD, REPORT, RunFolder, run_label

# The site-A example of docs/test.md in small: the alexnet recipe made a small CNN from scratch for II vs IV at 32 px.
CHANGED = [
    "model.name=smallcnn",
    "model.head=linear",
    "model.weights=none",
    "task.classes=[II,IV]",
    "data.select={plane: sagittal, sequence: T1, label: [II, IV]}",
    "data.slices.size=32",
]
FAST = ["train.epochs=1", "cv.folds=2", "evaluate.bootstrap=30", "evaluate.gradcam_per_class=0"]
TITLE = "smallcnn, 32 px slices of sagittal T1: II / IV (alexnet recipe, with --set changes)"
# What the alexnet recipe as written says of itself and no page may say of this run: its description, its task
# name (three grades), its size, its ImageNet weights.
RECIPE_WORDS = ("alexnet baseline", "glioma grade", "III", "128 px", "ImageNet")


def _true_of_the_run(text: str) -> None:
    assert TITLE in text
    for words in RECIPE_WORDS:
        assert words not in text, words


@pytest.fixture(scope="module")
def changed_runs(sagittal_cohort, module_tmp, monkeypatch_module):
    """RUNS_DIR with the changed run, a copy of it (to compare) and its model package."""
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(module_tmp / "cache"))
    root = module_tmp / "runs"
    args = [a for item in CHANGED + FAST for a in ("--set", item)]
    assert main(["cv", "alexnet", "--cohort", str(sagittal_cohort), "-o", str(root / "small"), *args]) == 0
    shutil.copytree(root / "small", root / "small-again")
    assert main(["export", str(root / "small"), "-o", str(root / "small-package")]) == 0
    return root


def test_every_page_of_a_run_whose_set_changed_network_classes_and_size_names_its_own(
    changed_runs, tiny_phantom, capsys
):
    pytest.importorskip("fastapi", reason="glioscope serve needs fastapi (pip install -e .)")
    from fastapi.testclient import TestClient

    from glioscope.serve import create_app

    run = changed_runs / "small"
    record = json.loads((run / INFO).read_text(encoding="utf-8"))
    assert record["title"] == TITLE and record["task"] == "II / IV" and record["class_names"] == ["II", "IV"]
    assert record["description"].startswith("smallcnn from scratch, 32 px slices of sagittal T1, classes II / IV")
    assert "its own description does not describe this run" in record["description"]
    _true_of_the_run(json.dumps({k: record[k] for k in ("title", "description", "task")}))

    report = (run / REPORT).read_text(encoding="utf-8")
    header = report[: report.index("<h2>")]  # the title, description and task; config.yaml is shown further down
    assert f"<h1>glioscope report: {TITLE}</h1>" in header and "<b>Task:</b> II / IV" in header
    _true_of_the_run(header)

    card = (changed_runs / "small-package" / MODEL_CARD).read_text(encoding="utf-8")
    assert card.startswith(f"# {TITLE}\n")
    _true_of_the_run(card)
    metadata = json.loads((changed_runs / "small-package" / METADATA).read_text(encoding="utf-8"))
    assert metadata["title"] == TITLE and metadata["task"] == "II / IV"
    assert {"model.name", "task.classes", "data.slices.size"} <= set(metadata["settings_changed"])
    _true_of_the_run(json.dumps({k: metadata[k] for k in ("title", "description", "task")}))

    token = "the-token-of-the-label-tests-0123456789"
    client = TestClient(create_app(changed_runs, token=token), base_url="http://127.0.0.1:8000")
    client.headers["Origin"] = "http://127.0.0.1:8000"
    assert client.get("/", params={"token": token}).status_code == 200
    listed = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    for name in ("small", "small-package"):
        assert listed[name]["title"] == TITLE and listed[name]["task"] == "II / IV"
    page = client.get("/").text
    row = re.search(r'<tr data-run="small">.*?</tr>', page, re.S).group(0)
    _true_of_the_run(row)
    _true_of_the_run(re.search(r"<dl.*?</dl>", client.get("/run", params={"id": "small"}).text, re.S).group(0))
    form = client.get("/predict").text
    assert f"small — {TITLE}" in form and f"small-package — {TITLE}" in form

    patient = sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]
    series = next(patient.glob("*/*SAG T1*"))
    files = [("files", (p.name, p.read_bytes())) for p in sorted(series.glob("*.dcm"))]
    answer = client.post("/api/predict", data={"model": "small"}, files=files)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["title"] == TITLE and result["task"] == "II / IV" and result["classes"] == ["II", "IV"]
    _true_of_the_run(json.dumps({k: result[k] for k in ("title", "description", "task", "classes")}))
    shown = client.post("/predict", data={"model": "small"}, files=files).text
    _true_of_the_run(re.search(r'<p class="meta"><b>Model:</b>.*?</p>', shown, re.S).group(0))

    capsys.readouterr()
    assert main(["predict", str(changed_runs / "small-package"), str(series)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["title"] == TITLE and printed["task"] == "II / IV"

    compared = client.get("/compare/view", params={"run": ["small", "small-again"]})
    assert compared.status_code == 200 and f"<li><b>small</b>: {TITLE}</li>" in compared.text


@pytest.mark.parametrize("name", recipe_names())
def test_a_recipe_run_as_written_keeps_its_description_and_task_name(name):
    method, recipe = load_recipe(name)
    label = run_label(recipe.to_dict())
    assert label.changed == () and label.recipe == name
    if recipe.description:
        assert label.description == f"{recipe.description} (the {name} recipe's description)"
    if recipe.task.name:
        assert label.task == recipe.task.name and f": {recipe.task.name} ({name} recipe)" in label.title
    assert "with --set changes" not in label.title


@pytest.mark.parametrize(
    "setting, shown, gone",
    [
        ("model.name=resnet18", "resnet18, 128 px", "alexnet, 128 px"),
        ("model.weights=none", "alexnet from scratch", "ImageNet"),
        ("data.slices.size=64", "alexnet, 64 px slices", "128 px"),
        ("data.select={}", "alexnet, 128 px slices:", "sagittal"),
        ("data.select.sequence=T2", "128 px slices of sagittal T2", "sagittal T1"),
        ("task.classes=[II,IV]", ": II / IV (", "III"),
    ],
)
def test_a_set_that_changes_what_the_description_describes_drops_it(setting, shown, gone):
    _, recipe = load_recipe("alexnet", [setting])
    label = run_label(recipe.to_dict())
    key = setting.split("=")[0]
    assert label.changed and all(k == key or k.startswith(key + ".") for k in label.changed)
    assert (
        label.title.endswith("(alexnet recipe, with --set changes)") and shown in f"{label.title} {label.description}"
    )
    assert gone not in f"{label.title} | {label.description}" and recipe.description not in label.description


def test_a_set_that_leaves_what_it_describes_keeps_it_and_says_so():
    _, recipe = load_recipe(
        "alexnet", ["train.epochs=1", "cv.folds=2", "data.select={plane: sagittal, sequence: T1, label: [II, III, IV]}"]
    )
    label = run_label(recipe.to_dict())
    assert recipe.changed == ("cv.folds", "data.select.label", "train.epochs") and label.changed == ()
    assert label.description == (
        f"{recipe.description} (the alexnet recipe's description: --set changed nothing it describes)"
    )
    assert label.title == "alexnet, 128 px slices of sagittal T1: glioma grade II / III / IV (alexnet recipe)"
    # Words given with --set are the user's: a task name with new classes, a description.
    _, renamed = load_recipe("alexnet", ["task.classes=[II,IV]", "task.name=low vs high grade", "description=mine"])
    named = run_label(renamed.to_dict())
    assert named.task == "low vs high grade" and named.description.startswith("mine (given with --set")


def test_quick_changes_count_and_a_config_of_an_earlier_version_is_not_vouched_for(tmp_path):
    _, quick = load_recipe("radiomics-rf", quick=True)  # its quick block: 200 trees, where the description says 500
    label = run_label(quick.to_dict(), ["II", "III", "IV"])
    assert label.changed == ("classifier.trees",) and "with --quick/--set changes" in label.title
    assert "500 trees" not in label.description and label.task == "II / III / IV"
    # the same quick block under logistic regression changes a setting it does not read: the description stands
    _, logistic = load_recipe("radiomics", quick=True)
    kept = run_label(logistic.to_dict(), ["II", "III", "IV"])
    assert "classifier.trees" in logistic.changed and kept.changed == ()
    assert kept.description.startswith(logistic.description.strip()) and "with --" not in kept.title
    _, recipe = load_recipe("alexnet", ["model.name=smallcnn"])
    earlier = {k: v for k, v in recipe.to_dict().items() if k != "changed"}
    old = run_label(earlier)
    assert old.changed is None and "as written" in old.description and old.title.startswith("smallcnn,")
    # --resume of a run an earlier version started: its config.yaml lacks `changed` and is still the same recipe.
    (tmp_path / CONFIG).write_text(yaml.safe_dump(earlier, sort_keys=False), encoding="utf-8")
    assert RunFolder(tmp_path).holds(recipe) and not RunFolder(tmp_path).holds(load_recipe("alexnet")[1])
