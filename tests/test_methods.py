"""A kind of method is one module that plugs into glioscope.methods: its recipes load, `cv` runs them, and its runs
are applied, tested and exported like every other kind's. Shown here with a method written in this file."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import pytest

from glioscope import cohort, methods, plan
from glioscope.batch import predict_batch
from glioscope.cli import main
from glioscope.external import ExternalSettings, external_test
from glioscope.methods.base import Method
from glioscope.recipe import CVSettings, EvaluateSettings, RecipeKind, ResolvedRecipe, TaskSettings
from glioscope.rundir import RunFolder, RunRecord, prediction_table
from glioscope.samples.settings import CohortData
from glioscope.trained import TrainedRun
from glioscope.workflows import finish

PRIOR = "prior.npy"  # a fold model of this method: its training patients' class frequencies


@dataclass(frozen=True)
class PriorData(CohortData):
    select: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    cache: str | None = None


@dataclass(frozen=True)
class PriorRecipe(ResolvedRecipe):
    kind: Literal["prior"] = "prior"
    name: str = "prior"
    description: str = "the training patients' class frequencies, whatever the images"
    task: TaskSettings = field(default_factory=TaskSettings)
    data: PriorData = field(default_factory=PriorData)
    cv: CVSettings = field(default_factory=CVSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    quick: bool = False


@dataclass
class Patients:
    """The inputs of this method: one row per patient."""

    kind: ClassVar[str] = "patients"
    item_column: ClassVar[str] = "patient_id"
    path_column: ClassVar[str] = "path"
    table: pd.DataFrame
    skipped: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Patients:
        rows = frame.drop_duplicates("patient_id").sort_values("patient_id")
        return cls(rows.assign(path=rows.get("path", ""))[["patient_id", "label", "path"]].reset_index(drop=True))

    def __len__(self):
        return len(self.table)

    def keys(self, mask):
        ids = self.table.loc[mask, "patient_id"].to_numpy()
        return pd.DataFrame({"slice_id": ids, "item_id": ids, "patient_id": ids})

    def targets(self, names):
        return self.table["label"].map({n: k for k, n in enumerate(names)}).to_numpy()

    def vote_weights(self):
        return None

    def describe(self, index):
        return {"patient_id": str(self.table.iloc[index]["patient_id"])}


class PriorMethod(Method):
    def __init__(self, folder: Path):
        self.recipes = RecipeKind("prior", folder, folder / "prior.yaml", PriorRecipe)

    def run(
        self, recipe, cohort, out, splits=None, folds=None, resume=False, progress=True, report=True, cache_dir=None
    ):
        frame, notes = plan.load_cohort(cohort, recipe.task, recipe.data)
        names = plan.class_names(recipe.task, frame, notes)
        table, meta = plan.make_or_load_splits(recipe.cv, frame, splits)
        jobs = plan.plan_jobs(table, meta.get("mode") or recipe.cv.mode, None, folds)
        run = RunFolder(out)
        run.write_inputs(recipe, frame, table, meta)
        for job in jobs:
            train = job.train.drop_duplicates("patient_id")["label"].map(names.index)
            prior = np.bincount(train, minlength=len(names)) / len(train)
            run.fold(job.name).mkdir(parents=True, exist_ok=True)
            np.save(run.fold(job.name) / PRIOR, prior)
            for label, held in job.evaluate.items():
                inputs = Patients.of(held)
                probs = {recipe.name: np.tile(prior, (len(inputs), 1))}
                everything = np.ones(len(inputs), bool)
                run.write_fold_predictions(
                    job.name, prediction_table(probs, inputs.keys(everything), inputs.targets(names), label, names)
                )
        run.write_record(
            RunRecord.of_recipe(
                recipe,
                names,
                [recipe.name],
                table,
                meta,
                notes=notes,
                samples={"kind": "patients", "count": int(frame["patient_id"].nunique())},
            )
        )
        run.merge_predictions([job.name for job in jobs])
        if report:
            finish(out, n_boot=recipe.evaluate.bootstrap)
        return Path(out)

    def fold_files(self, folder):
        return [(path.parent.name, path) for path in sorted(folder.path.glob(f"*/{PRIOR}"))]

    def inputs(self, recipe, record, frame, cache_dir, progress):
        return Patients.of(frame)

    def study_inputs(self, recipe, record, study):
        return Patients.of(study.frame)

    def load_folds(self, folder, recipe, record, inputs):
        return [(fold, np.load(path)) for fold, path in self.fold_files(folder)]

    def probabilities(self, folds, inputs, recipe, record, progress):
        return {fold: np.tile(prior, (len(inputs), 1)) for fold, prior in folds}

    def fingerprints(self, inputs):
        return None

    def training_fingerprints(self, folder, recipe, record, progress):
        return None  # it sees no image

    def export_folds(self, run, package, recipe, record, torchscript=False):
        for fold, path in self.fold_files(run):
            package.fold(fold).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, package.fold(fold) / PRIOR)
        return {"torchscript_max_difference": {}}

    def input_words(self, recipe, record):
        return {
            "network": "No network",
            "channels": [],
            "shape": None,
            "format": "none",
            "value": "none",
            "input": "nothing: the class frequencies of the training patients",
            "files": f"fold<k>/{PRIOR}",
        }


@pytest.fixture
def prior(tmp_path, monkeypatch):
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "prior.yaml").write_text(
        "kind: prior\nname: prior\ndescription: class frequencies\ntask: {}\n"
        "data: {select: {}, cache: null}\ncv: {folds: 3}\nevaluate: {tables: []}\n"
        "quick:\n  evaluate.bootstrap: 20\n"
    )
    (folder / "prior-2.yaml").write_text("base: prior\nname: prior-2\ncv:\n  folds: 2\n")
    monkeypatch.setitem(methods.METHODS, "prior", PriorMethod(folder))
    return folder


def test_a_new_kind_of_method_plugs_in_with_one_module(prior, sagittal_cohort, tmp_path, capsys):
    method, recipe = methods.load_recipe("prior-2", quick=True)
    assert method.kind == "prior" and recipe.cv.folds == 2 and recipe.evaluate.bootstrap == 20
    assert "prior-2" in methods.recipe_names()
    out = tmp_path / "runs" / "prior"
    assert main(["cv", "prior-2", "--cohort", str(sagittal_cohort), "-o", str(out), "--quick"]) == 0
    assert "Report:" in capsys.readouterr().out and (out / "report.html").is_file()
    frame = cohort.load(sagittal_cohort)
    priors = [np.load(out / f"fold{k}" / PRIOR) for k in (0, 1)]
    run = TrainedRun(out)
    result = run.predict_rows(frame, progress=False)
    assert np.allclose(result.ensemble, np.mean(priors, axis=0))  # the fold models' mean, for every patient
    [first, *_] = predict_batch(out, [sagittal_cohort], progress=False)["patients"]
    assert first["probabilities"] == pytest.approx(dict(zip(run.class_names, np.mean(priors, axis=0))), abs=1e-6)
    assert main(["export", str(out), "-o", str(tmp_path / "package")]) == 0
    assert "class frequencies of the training patients" in (tmp_path / "package" / "README.md").read_text()
    packaged = TrainedRun(tmp_path / "package").predict_rows(frame, progress=False)
    assert np.allclose(packaged.ensemble, result.ensemble)
    tested = external_test(
        tmp_path / "package",
        sagittal_cohort,
        tmp_path / "external",
        ExternalSettings(allow_shared_patients=True),
        n_boot=10,
        progress=False,
    )
    assert (tested / "metrics.json").is_file()
    assert any("Duplicate images were NOT checked" in note for note in RunFolder(tested).record().notes)
