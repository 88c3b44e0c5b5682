"""Deep features: a frozen network's slice embeddings, pooled per patient or weighed by a patient-level attention
model, a classifier per fold chosen by an inner CV, and a run folder that every verb applies (glioscope.deepfeatures)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

from glioscope import split
from glioscope.cli import main
from glioscope.deepfeatures import mil
from glioscope.deepfeatures.inputs import pooled
from glioscope.demo import GRADES, PATIENT_REGEX, _radiomics_cohort
from glioscope.errors import InputError
from glioscope.ingest import ingest
from glioscope.methods import load_recipe
from glioscope.rundir import ATTENTION, ATTENTION_MODEL, CLASSIFIER, INNER_CV, RUN_LOG, RunFolder
from glioscope.trained import TrainedRun
from glioscope.util.schema import SettingError

# A small random network stands in for the ImageNet backbone: the plumbing is what these tests check.
SMALL = ["backbone.name=smallcnn", "backbone.weights=none", "data.slices.size=32", "data.slices.channels=stack3",
         "data.slices.min_tumour_area=4", "evaluate.bootstrap=20", "classifier.trees=25", "attention.epochs=5",
         "attention.members=2", "attention.weight_decay=[0.01, 1.0]"]  # fmt: skip


def _sets(items):
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def phantom(tiny_phantom, module_tmp, monkeypatch_module):
    root = module_tmp
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(root / "cache"))
    frame, _ = ingest([tiny_phantom / "imagefolder"], root / "cohort", format="imagefolder",
                      patient_regex=PATIENT_REGEX, select=GRADES, progress=False, echo=None)  # fmt: skip
    table, meta = split.make_splits(frame, folds=3, seed=0)
    split.save(root / "splits", table, meta)
    return {"root": root, "splits": root / "splits", "table": table, "masks": _radiomics_cohort(tiny_phantom, root)}


def _cv(phantom, recipe: str, name: str, extra=()) -> RunFolder:
    out = phantom["root"] / "runs" / name
    args = ["cv", recipe, "--cohort", str(phantom["masks"]), "--splits", str(phantom["splits"]), "-o", str(out)]
    assert main(args + _sets(SMALL + list(extra))) == 0
    return RunFolder(out)


@pytest.fixture(scope="module")
def pooled_run(phantom):
    return _cv(phantom, "deepfeatures", "pooled")


@pytest.fixture(scope="module")
def attention_run(phantom):
    return _cv(phantom, "mil-tumour", "attention")


def test_each_fold_is_fit_on_its_training_patients_and_predicts_its_held_out_ones_once(pooled_run, phantom):
    record = pooled_run.record()
    table = pooled_run.predictions(record.class_names)
    folds = phantom["table"].drop_duplicates("patient_id").set_index("patient_id")["fold"].astype(str)
    assert sorted(table["patient_id"]) == sorted(folds.index)  # every patient once
    assert (table["fold"].astype(str) == table["patient_id"].map(folds)).all()  # in its own fold
    validation = pooled_run.validation_predictions(record.class_names)
    for fold, rows in validation.groupby("fold"):
        assert not set(rows["patient_id"]) & set(table.loc[table["fold"].astype(str) == str(fold), "patient_id"])
    for k in range(3):
        assert (pooled_run.fold(f"fold{k}") / CLASSIFIER).is_file()
        grid = pd.read_csv(pooled_run.fold(f"fold{k}") / INNER_CV)
        assert len(grid) == 2 * 4 and grid["inner_macro_auc"].notna().any()  # penalties x C
    block = record.deepfeatures
    assert block["backbone"] == "smallcnn" and block["features_per_patient"] == 3 * block["width"]


def test_the_patient_level_model_keeps_each_held_out_slice_attention(attention_run, phantom):
    attention = pd.read_csv(attention_run / ATTENTION)
    sums = attention.groupby("patient_id")["attention"].sum()
    assert np.allclose(sums, 1.0, atol=1e-5) and len(sums) == phantom["table"]["patient_id"].nunique()
    top = attention[attention["rank"] == 1].set_index("patient_id")["attention"].sort_index()
    assert np.allclose(top, attention.groupby("patient_id")["attention"].max().sort_index())
    for k in range(3):
        model = mil.AttentionEnsemble.load(attention_run.fold(f"fold{k}") / ATTENTION_MODEL)
        assert len(model.members) == 2


@pytest.mark.parametrize("kind", ["pooled", "attention"])
def test_a_trained_run_applied_to_its_cohort_gives_each_fold_models_cv_probabilities(kind, pooled_run, attention_run):
    run = {"pooled": pooled_run, "attention": attention_run}[kind]
    trained = TrainedRun(run.path)
    names = trained.class_names
    frame = pd.read_csv(run / "cohort.csv", dtype=str, keep_default_na=False)
    inputs = trained.method.inputs(trained.recipe, trained.record, frame, None, False)
    folds = trained.method.load_folds(trained.folder, trained.recipe, trained.record, inputs)
    probs = trained.method.probabilities(folds, inputs, trained.recipe, trained.record, False)
    cv = run.predictions(names).set_index("patient_id")
    for k, patient in enumerate(inputs.table["patient_id"]):
        fold = f"fold{cv.loc[patient, 'fold']}"
        assert np.allclose(probs[fold][k], cv.loc[patient, [f"prob_{n}" for n in names]].to_numpy(float), atol=1e-5)


def test_the_same_seed_gives_the_same_run_and_the_embeddings_come_from_the_cache(phantom, pooled_run):
    again = _cv(phantom, "deepfeatures", "pooled-again")
    names = pooled_run.record().class_names
    first, second = pooled_run.predictions(names), again.predictions(names)
    assert np.array_equal(first.filter(like="prob_").to_numpy(), second.filter(like="prob_").to_numpy())
    assert len(list((phantom["root"] / "cache" / "embeddings").glob("*.npy"))) == 1


def test_attention_ignores_padding_and_the_order_of_slices():
    rng = np.random.default_rng(0)
    bags = [rng.normal(size=(n, 6)).astype(np.float32) for n in (3, 7, 5)]
    settings = load_recipe("mil-tumour", ["backbone.name=smallcnn", "backbone.weights=none"])[1].attention
    model = mil.fit_ensemble(bags, np.array([0, 1, 0]), 2, settings, weight_decay=0.01, seed=0)
    together, weights = model.predict(bags)
    alone = np.vstack([model.predict([bag])[0] for bag in bags])
    assert np.allclose(together, alone, atol=1e-6)  # a padded slice changes nothing
    shuffled, shuffled_weights = model.predict([bags[1][::-1]])
    assert np.allclose(shuffled[0], together[1], atol=1e-6)
    assert np.allclose(shuffled_weights[0], weights[1][::-1], atol=1e-6)


def test_pooled_statistics_weigh_slices_by_tumour_area():
    vectors = np.array([[0.0, 2.0], [4.0, 2.0]])
    assert np.allclose(pooled(vectors, np.array([1.0, 3.0]), ("mean",)), [3.0, 2.0])
    assert np.allclose(pooled(vectors, None, ("mean", "std", "max")), [2.0, 2.0, 2.0, 0.0, 4.0, 2.0])
    assert np.allclose(pooled(vectors, np.zeros(2), ("mean",)), [2.0, 2.0])  # no tumour anywhere: equal weights


def test_a_saved_attention_model_is_tensors_only_and_a_foreign_file_is_refused(tmp_path):
    settings = load_recipe("mil-tumour", ["backbone.name=smallcnn", "backbone.weights=none"])[1].attention
    bags = [np.ones((2, 4), np.float32), np.zeros((3, 4), np.float32)]
    model = mil.fit_ensemble(bags, np.array([0, 1]), 2, settings, 0.1, seed=1)
    model.save(tmp_path / "attention.pt")
    torch.load(tmp_path / "attention.pt", weights_only=True)  # no pickled object in it
    assert np.allclose(mil.AttentionEnsemble.load(tmp_path / "attention.pt").predict(bags)[0], model.predict(bags)[0])
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="other.pt"):
        mil.AttentionEnsemble.load(tmp_path / "other.pt")


def test_bad_settings_are_refused_when_the_recipe_is_loaded():
    with pytest.raises(SettingError, match="backbone.name"):
        load_recipe("deepfeatures", ["backbone.name=st3d"])
    with pytest.raises(SettingError, match="classifier.model"):
        load_recipe("deepfeatures", ["classifier.model=svm"])
    with pytest.raises(SettingError, match="pooling.stats"):
        load_recipe("deepfeatures", ["pooling.stats=[]"])


def test_taps_embed_a_slice_by_inner_modules_outputs_pooled_and_an_unknown_tap_is_refused():
    from glioscope.deepfeatures.embed import Backbone

    recipe = load_recipe("deepfeatures", ["backbone.name=smallcnn", "backbone.weights=none", "backbone.flip=false"])[1]
    last = Backbone(recipe.backbone, 3, "none")
    tapped_recipe = load_recipe(
        "deepfeatures",
        ["backbone.name=smallcnn", "backbone.weights=none", "backbone.flip=false", "backbone.taps=['2', '6']"],
    )[1]
    tapped = Backbone(tapped_recipe.backbone, 3, "none")
    batch = torch.rand(2, 3, 32, 32)
    torch.manual_seed(0)
    vectors = tapped(batch)
    assert vectors.shape == (2, 16 + 32) and last(batch).shape == (2, 64)
    network = tapped.network  # the same seeded network: blocks 0-2 give the first tap, 3-6 the second
    with torch.no_grad():
        first = network[:3](batch)
        second = network[3:7](first)
    expected = torch.cat([first.mean(dim=(2, 3)), second.mean(dim=(2, 3))], dim=1).numpy()
    assert np.allclose(vectors, expected, atol=1e-6)
    assert tapped.identity != last.identity  # another embedding: another cache entry
    bad = load_recipe("deepfeatures", ["backbone.name=smallcnn", "backbone.weights=none", "backbone.taps=[nope]"])[1]
    with pytest.raises(InputError, match="backbone.taps.*nope"):
        Backbone(bad.backbone, 3, "none")


def test_a_deep_feature_run_log_has_a_line_per_stage(pooled_run):
    logged = [line.split(" ", 1)[1] for line in (pooled_run / RUN_LOG).read_text(encoding="utf-8").splitlines()]
    assert logged[0].startswith("started: recipe deepfeatures") and logged[1].startswith("cohort read: ")
    assert logged[2].startswith("slices embedded: ")
    started = [line for line in logged if re.fullmatch(r"fold\d+ \(\d of \d\) started", line)]
    finished = [line for line in logged if re.fullmatch(r"fold\d+ \(\d of \d\) finished in \d+\.\d s", line)]
    splits = pd.read_csv(pooled_run / "splits.csv")
    assert len(started) == len(finished) == splits.loc[splits["partition"] == "cv", "fold"].nunique()
    ended = next(k for k, line in enumerate(logged) if line.startswith("finished in "))
    assert logged.index(finished[-1]) < logged.index("report written") < ended
