"""run.json as one typed record (glioscope.rundir.RunRecord): what each producer writes, and older files read back."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from glioscope.errors import InputError
from glioscope.recipe import load_recipe
from glioscope.rundir import RunFolder, RunRecord


def _splits() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "patient_id": ["p", "q", "r", "s"],
            "label": ["II", "III", "II", "III"],
            "partition": ["cv", "cv", "cv", "test"],
            "fold": [0, 1, 1, -1],
            "leaky": False,
        }
    )


def test_a_recipes_record_carries_its_task_and_split(tmp_path):
    recipe = load_recipe("r18-mgmt")
    record = RunRecord.of_recipe(
        recipe,
        ["0", "1"],
        ["r18-mgmt"],
        _splits(),
        {"statement": "Split by patient.", "leaky": False},
        notes=["n"],
        training={"precision": {"fold0": {"dtype": "fp32"}}, "weights": None},
    )
    assert record.folds == [0, 1] and record.split_statement == "Split by patient." and not record.leaky
    assert record.task == recipe.task.name and record.caveat == recipe.task.caveat and record.label == recipe.task.label
    folder = RunFolder(tmp_path)
    folder.write_record(record)
    written = json.loads((tmp_path / "run.json").read_text())
    assert written["training"]["precision"]["fold0"]["dtype"] == "fp32"
    assert written["title"].startswith("resnet18, 224 px middle slices") and "(r18-mgmt recipe)" in written["title"]
    assert written["description"].startswith(recipe.description)  # no --set: the recipe's own words
    assert not {"radiomics", "fusion", "external", "package", "run_name"} & set(written)  # only the blocks it has
    assert folder.record() == record and record.kind == "run" and record.headline == "r18-mgmt"


def test_a_run_json_of_an_earlier_version_reads_into_the_same_record(tmp_path):
    older = {
        "recipe": "sdl",
        "class_names": ["II", "III"],
        "models": ["sdl/net1", "sdl/mean"],
        "folds": [0, 1],
        "precision": {"fold0": {"dtype": "fp32"}},
        "weights": {"source": "imagenet", "on_disk": False},
        "created": "2026-01-01T00:00:00",
        "glioscope_version": "0.1.0",
        "unknown_key": 1,
    }
    (tmp_path / "run.json").write_text(json.dumps(older))
    record = RunFolder(tmp_path).record()
    assert record.precision == {"fold0": {"dtype": "fp32"}} and record.training["weights"]["source"] == "imagenet"
    assert record.created == "2026-01-01T00:00:00" and record.headline == "sdl/mean"
    fused = {
        "recipe": "fusion",
        "class_names": ["0", "1"],
        "models": ["fusion/mean"],
        "inputs": [{"run": "a"}],
        "fusion": {"methods": ["mean"]},
    }
    assert RunRecord.from_json(fused).fusion == {"methods": ["mean"], "inputs": [{"run": "a"}]}
    assert RunRecord.from_json(fused).kind == "fused"
    package = {
        "recipe": "eff",
        "class_names": ["0", "1"],
        "models": ["eff"],
        "operating_point": {"threshold": 0.4},
        "package": {"exported_from": "eff"},
    }
    assert RunRecord.from_json(package).operating_point == {"threshold": 0.4}
    assert RunRecord.from_json(package).kind == "package"


def test_an_unreadable_run_json_is_an_error_naming_it(tmp_path):
    (tmp_path / "run.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="run.json"):
        RunFolder(tmp_path).record()
    with pytest.raises(InputError, match="not found"):
        RunFolder(tmp_path / "nothing").record()


def test_a_derived_record_is_new_and_keeps_what_it_is_not_told(tmp_path):
    record = RunRecord("sdl", ["II", "III"], ["sdl/mean"], created="2026-01-01T00:00:00", notes=["trained"])
    external = record.derived(folds=[], external={"headline": "sdl/mean", "operating_point": None})
    assert external.kind == "external test" and external.notes == ["trained"] and external.created != record.created
    assert record.external is None  # the original is untouched
