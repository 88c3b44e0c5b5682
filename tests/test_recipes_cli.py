"""`glioscope recipes` and `recipes show`, recipe lists in errors, and the message of a selection that empties a cohort."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from glioscope import cohort, plan
from glioscope.cli import main
from glioscope.errors import InputError
from glioscope.methods import METHODS, SCHEMAS_ONLY, load_recipe, recipe_names
from glioscope.methods.catalogue import catalogue


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def table() -> str:
    """`glioscope recipes`' output, run once for the module (it loads every recipe)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["recipes"]) == 0
    return out.getvalue()


def test_recipes_lists_every_recipe_once_and_no_schema_only(table):
    listed = [line.split()[0] for line in table.splitlines()[1:] if line.strip() and not line.startswith("`")]
    assert listed == recipe_names() and len(listed) == len(set(listed))
    assert "base" not in listed and "ensemble" not in listed
    assert {"radiomics", "deepfeatures"} <= set(listed)  # schemas that are recipes too
    assert {entry.kind for entry in catalogue()} == set(METHODS)  # every kind of method has a recipe listed


def test_recipes_table_is_aligned_and_says_what_each_reads(table):
    lines = [line for line in table.splitlines() if line.strip()][: len(recipe_names()) + 1]
    header = lines[0]
    for column in ("kind", "reads", "selects", "masks", "description"):
        start = header.index(column)
        assert all(line[start - 2 : start] == "  " and line[start] != " " for line in lines[1:]), column
    rows = {entry.name: entry for entry in catalogue()}
    assert rows["sdl"].reads.startswith("2D") and "sagittal" in rows["sdl"].selects and rows["sdl"].masks == "no"
    assert rows["st3d"].reads.startswith("3D volumes") and "T1c" in rows["st3d"].selects
    assert rows["radiomics"].reads == "features in the tumour mask" and rows["radiomics"].masks == "yes"
    assert rows["alexnet-tumour"].masks == "yes"  # tumour slices, cropped: a mask per study
    assert rows["stack-radiomics"].masks == "yes" and "radiomics-rf" in rows["stack-radiomics"].reads
    for name, entry in rows.items():
        description = load_recipe(name)[1].description
        assert entry.description == " ".join(description.split()) and entry.description in table


@pytest.mark.parametrize("name", ["radiomics", "sdl", "deepfeat-lite0-rf", "stack-radiomics", "st3d"])
@pytest.mark.parametrize("quick", [False, True])
def test_show_prints_the_resolved_recipe_of_every_kind(capsys, name, quick):
    code, out, _ = _run(capsys, "recipes", "show", name, *(["--quick"] if quick else []))
    assert code == 0
    assert yaml.safe_load(out) == yaml.safe_load(load_recipe(name, quick=quick)[1].dump())
    assert yaml.safe_load(out)["quick"] is quick


def test_show_applies_every_set(capsys):
    code, out, _ = _run(capsys, "recipes", "show", "radiomics", "--set", "classifier.C=[1]", "--set", "cv.folds=4")
    shown = yaml.safe_load(out)
    assert code == 0 and shown["classifier"]["C"] == [1] and shown["cv"]["folds"] == 4
    plain = yaml.safe_load(_run(capsys, "recipes", "show", "radiomics")[1])
    assert plain["classifier"]["C"] != [1] and plain["cv"]["folds"] != 4


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("classifier.nope=1", "classifier.nope"),
        ("classifier.model=tree", "classifier.model"),
        ("cv.folds=x", "cv.folds"),
        ("no_equals_sign", "KEY=VALUE"),
    ],
)
def test_show_refuses_a_bad_setting_as_cv_does(capsys, setting, named, tmp_path):
    code, out, err = _run(capsys, "recipes", "show", "radiomics", "--set", setting)
    assert code == 2 and out == "" and named in err and "Traceback" not in err
    cv_code, _, cv_err = _run(capsys, "cv", "radiomics", "--cohort", str(tmp_path), "--set", setting)
    assert cv_code == 2 and cv_err.replace("glioscope cv", "glioscope recipes") == err


@pytest.mark.parametrize("argv", [["recipes", "show", "nope"], ["cv", "nope", "--cohort", "x"]])
def test_unknown_recipe_lists_the_real_recipes(capsys, argv):
    code, _, err = _run(capsys, *argv)
    listed = err.rpartition("one of: ")[2].strip().split(", ")
    assert code == 2 and "nope" in err
    assert listed == recipe_names()
    assert not set(SCHEMAS_ONLY) & set(listed)


def test_a_deep_only_verb_lists_the_deep_recipes_without_the_schema(capsys, tmp_path):
    code, _, err = _run(capsys, "pretrain", "nope", "--cohort", str(tmp_path), "-o", str(tmp_path / "out"))
    listed = err.rpartition("one of: ")[2].strip().split(", ")
    assert code == 2 and "not a deep recipe" in err
    assert set(listed) == set(METHODS["deep"].recipes.names()) - {"base"} and "sdl" in listed
    assert not (tmp_path / "out").exists()


# --- a selection that empties a cohort ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_cohort(tmp_path_factory) -> Path:
    """Image folders (class folders of PNGs, patients in the file names): plane and sequence unknown."""
    from PIL import Image

    from glioscope.ingest import ingest

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for label in ("II", "IV"):
        for patient in range(3):
            folder = root / "images" / label
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (rng.random((32, 32)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"P{label}{patient}_0.png")
    ingest([root / "images"], root / "cohort", format="imagefolder", patient_regex=r"^(?P<patient>[^_]+)_",
           progress=False, echo=None)  # fmt: skip
    return root / "cohort"


EMPTYING = [
    (["data.select={plane: axial}"], ["data.select {'plane': ['axial']}", "left no row of the 6", "plane: unknown"]),
    (
        ["data.select={sequence: [T1, FLAIR]}"],
        ["{'sequence': ['T1', 'FLAIR']} left no row", "of the 6", "sequence: unknown"],
    ),
    (["data.select={label: III}"], ["data.select {'label': ['III']}", "of the 6", "label: II, IV"]),
    (["data.select={site: A}"], ["data.select {'site': ['A']}", "names site", "columns are item_id"]),
    (
        ["task.label=mgmt", "data.select={}"],
        ["no labelled rows: none of the 6 row(s) of the cohort has a value in column 'mgmt'"],
    ),
    (
        ["task.label=mgmt", "data.select={label: IV}"],
        ["none of the 3 row(s) that data.select {'label': ['IV']} keeps has a value in column 'mgmt'"],
    ),
]


@pytest.mark.parametrize(("overrides", "words"), EMPTYING)
def test_a_selection_that_empties_the_cohort_names_the_setting(image_cohort, overrides, words):
    recipe = load_recipe("alexnet", overrides)[1]
    with pytest.raises(InputError) as caught:
        plan.load_cohort(image_cohort, recipe.task, recipe.data)
    assert str(image_cohort) in str(caught.value)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(("overrides", "words"), EMPTYING)
def test_pretrain_names_the_setting_that_emptied_its_data(image_cohort, overrides, words):
    from glioscope.pretrain.data import load_data

    recipe = load_recipe("alexnet", overrides)[1]
    with pytest.raises(InputError) as caught:
        load_data([image_cohort], recipe.data, recipe.task.label, progress=False)
    for word in words:
        assert word in str(caught.value)


def test_pretrain_on_image_folders_names_the_recipes_selection(capsys, image_cohort, tmp_path):
    code, _, err = _run(capsys, "pretrain", "alexnet", "--cohort", str(image_cohort), "-o", str(tmp_path / "out"))
    assert code == 2
    assert "data.select {'plane': ['sagittal'], 'sequence': ['T1']} left no row of the 6" in err
    assert "plane: unknown; sequence: unknown" in err and "data.select={}" in err


def test_a_selection_that_keeps_rows_still_notes_the_rest(image_cohort):
    recipe = load_recipe("alexnet", ["data.select={label: IV}"])[1]
    frame, notes = plan.load_cohort(image_cohort, recipe.task, recipe.data)
    assert set(frame["label"]) == {"IV"} and len(frame) == 3
    assert any("3 of 6 cohort row(s) are not in data.select" in note for note in notes)


def test_the_no_patient_ids_note_names_a_flag_of_the_verb_it_names(tmp_path):
    """The note predict and test pass on names ingest's --patient-regex, and predict takes no such flag."""
    from glioscope.cli import build_parser

    verbs = build_parser()._subparsers._group_actions[0].choices
    flags = {verb: {s for a in verbs[verb]._actions for s in a.option_strings} for verb in ("ingest", "predict")}
    assert "--patient-regex" in cohort.NO_PATIENT_IDS and "glioscope ingest" in cohort.NO_PATIENT_IDS
    assert "--patient-regex" in flags["ingest"] and "--patient-regex" not in flags["predict"]
    for note in (cohort.NO_PATIENT_IDS, cohort.EARLIER_NO_PATIENT_IDS):  # cohorts of this and earlier versions
        (tmp_path / "summary.json").write_text(json.dumps({"notes": [note]}))
        assert cohort.has_patient_ids(tmp_path) is False
    (tmp_path / "summary.json").write_text(json.dumps({"notes": []}))
    assert cohort.has_patient_ids(tmp_path) is True
