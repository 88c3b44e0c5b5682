"""The typed recipe: base.yaml is its schema and its defaults, every value is checked when it is loaded."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from glioscope import defaults
from glioscope.augment.settings import AugmentSettings
from glioscope.cli import main
from glioscope.models.spec import ModelSpec
from glioscope.samples.slices import SliceSettings
from glioscope.samples.volumes import VolumeSettings
from glioscope.recipe import RECIPE_DIR, Recipe, load_recipe
from glioscope.samples.settings import DataSettings
from glioscope.train.settings import TrainSettings
from glioscope.util.schema import SettingError

BAD = [
    ("train.epochs=abc", "train.epochs", "'abc'", "an integer"),
    ("train.lr=fast", "train.lr", "'fast'", "a number"),
    ("train.optimizer=adamm", "train.optimizer", "'adamm'", "one of sgd, adam, adamw"),
    ("train.keep_best=maybe", "train.keep_best", "'maybe'", "true or false"),
    ("data.select={plane: [axial", "data.select", "'{plane: [axial'", "not valid YAML"),
    ("data.slices.size=4", "data.slices.size", "4", "an integer >= 8"),
    ("augment.hflip=1.5", "augment.hflip", "1.5", "a number >= 0 and <= 1"),
    ("model.head=deep", "model.head", "'deep'", "one of linear, hidden, efficientnet"),
    ("model.name=alexnett", "model.name", "'alexnett'", "alexnet"),
]


@pytest.mark.parametrize("override, key, value, expected", BAD, ids=[b[0] for b in BAD])
def test_a_bad_value_exits_2_naming_key_value_and_expectation_and_writes_nothing(
    override, key, value, expected, tmp_path, capsys
):
    out = tmp_path / "run"
    assert main(["cv", "sdl", "--cohort", str(tmp_path / "no-cohort"), "-o", str(out), "--set", override]) == 2
    error = capsys.readouterr().err
    assert key in error and value in error and expected in error, error
    assert "Traceback" not in error
    assert not out.exists()  # checked before any output is written (the cohort is not even read)


def test_base_yaml_is_the_schema_and_the_defaults():
    base = defaults.base()
    recipe = Recipe.from_dict(base)
    assert recipe.to_dict() == {
        **base,
        "quick": False,
        "changed": [],
    }  # every key of base.yaml is a field, and every field is there
    assert Recipe() == recipe  # the dataclasses' defaults are base.yaml's
    assert TrainSettings() == recipe.train and ModelSpec() == recipe.model and AugmentSettings() == recipe.augment
    assert SliceSettings() == recipe.data.slices and VolumeSettings() == recipe.data.volumes
    assert DataSettings() == recipe.data


def test_every_shipped_recipe_round_trips_through_config_yaml():
    for path in sorted(RECIPE_DIR.glob("*.yaml")):
        for quick in (False, True):
            recipe = load_recipe(path.stem, quick=quick)
            again = Recipe.from_dict(yaml.safe_load(recipe.dump()))
            assert again == recipe, path.stem


def test_a_recipe_is_immutable():
    recipe = load_recipe("sdl")
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.train.epochs = 3
    with pytest.raises(TypeError):
        recipe.data.select["plane"] = "axial"  # a read-only mapping
    assert isinstance(recipe.augment.zoom, (tuple, type(None))) and isinstance(recipe.task.classes, tuple)


def test_a_recipe_file_with_an_unknown_key_or_a_mismatched_model_is_refused(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("base: sdl\ntrain:\n  epoch: 3\n", encoding="utf-8")
    with pytest.raises(SettingError, match="unknown setting 'train.epoch'"):
        load_recipe(typo)
    with pytest.raises(SettingError, match="data.kind.*r3d_18 reads volumes"):
        load_recipe("sdl", ["model.name=r3d_18"])
    with pytest.raises(SettingError, match="data.normalize.*volumes"):
        load_recipe("st3d", ["data.normalize=imagenet"])
    own = tmp_path / "mine.yaml"
    own.write_text("train:\n  epochs: 2\n", encoding="utf-8")  # no base: base.yaml is implied, the file names it
    recipe = load_recipe(own)
    assert recipe.name == "mine" and recipe.train.epochs == 2 and recipe.model.name == "alexnet"


def test_values_are_coerced_once_and_none_means_none():
    recipe = load_recipe(
        "eff",
        [
            "train.schedule=none",
            "augment.rotation=5",
            "data.slices.channels=[t1ce, flair]",
            "data.slices.percentiles=[1, 99]",
        ],
    )
    assert recipe.train.schedule == "none" and recipe.augment.rotation == 5.0
    assert recipe.data.slices.channels == ("T1c", "FLAIR") and recipe.data.slices.percentiles == (1.0, 99.0)
    assert recipe.data.selection() == {"sequence": ["FLAIR"]}
    with pytest.raises(SettingError, match="augment.zoom"):
        load_recipe("eff", ["augment.zoom=[1.2, 0.8]"])
    with pytest.raises(SettingError, match="train.finetune.epochs"):
        load_recipe("eff", ["train.finetune={epochs: -1}"])


@pytest.mark.parametrize(
    "recipe, size, ok",
    [("alexnet", 62, False), ("alexnet", 63, True), ("sdl", 48, False), ("vgg19", 31, False), ("r18", 16, True)],
)
def test_an_image_too_small_for_the_network_is_refused_when_loaded(recipe, size, ok):
    """AlexNet's pooling leaves nothing of an image under 63 px: a setting error, not a torch error mid-training."""
    if ok:
        assert load_recipe(recipe, [f"data.slices.size={size}"]).data.slices.size == size
        return
    with pytest.raises(
        SettingError, match=rf"data.slices.size: got {size}, but (alexnet|vgg19) needs images of at least"
    ):
        load_recipe(recipe, [f"data.slices.size={size}"])
