"""The final model of `choose: stack`: an ensemble run of the candidates, its combiner fit on every patient.

    OUT/ensemble/members/<name>/   each finished candidate's outer cross-validation run (a copy)
    OUT/ensemble/fold<k>/combiner.npz   the logistic combiner fit on every patient's out-of-fold predictions
                                   (the rule each outer fold applied to its inner folds, applied to all), the
                                   same in every fold: applied anew, fold k combines the members' fold-k models
    OUT/ensemble/fold<k>/predictions.csv   the NESTED predictions of fold k's held-out patients (the honest
                                   figure, glioscope.auto.select), not the final combiner's
    OUT/ensemble/config.yaml, run.json, splits.csv, cohort.csv   an ensemble run (glioscope.methods.ensemble)

`glioscope export` then packages it as any ensemble run (its members under members/<name>/).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from glioscope import cohort as cohort_table
from glioscope.auto.select import Nested, outer_predictions
from glioscope.evaluate.combiners import LOGISTIC_C
from glioscope.methods.ensemble_recipe import EnsembleRecipe
from glioscope.methods.stacking import fit_combiner, stack
from glioscope.rundir import COHORT, COMBINER, FINGERPRINTS, MEMBERS, RunFolder, RunRecord
from glioscope.split import SPLIT_META, load as load_split

NAME = "auto"


def ensemble_run(plan, nested: Nested, layout, finished: list[str], names: list[str]) -> Path:
    """Write OUT/ensemble (module docstring) from the finished candidates; returns its folder."""
    out = layout.root / "ensemble"
    shutil.rmtree(out, ignore_errors=True)
    folder = RunFolder(out)
    by_name = {c.name: c for c in plan.candidates}
    recipe = EnsembleRecipe.from_dict(
        {
            "kind": "ensemble",
            "name": NAME,
            "description": "glioscope auto: the candidates stacked by a logistic combiner",
            "task": {"label": plan.task},
            "members": [
                {"recipe": by_name[c].recipe, "name": c, "set": list(by_name[c].set), "quick": bool(by_name[c].quick)}
                for c in finished
            ],
            "combiner": "logistic",
            "cv": {"folds": plan.folds, "seed": plan.seed},
        }
    )
    table, meta = load_split(layout.folds)
    frame = cohort_table.load(plan.cohort)
    frame = frame[frame["item_id"].isin(set(table["item_id"]))].reset_index(drop=True)
    folder.write_inputs(recipe, frame, table, meta)
    shutil.copyfile(layout.folds / SPLIT_META, out / SPLIT_META)
    for name in finished:
        shutil.copytree(layout.cv_run(name), out / MEMBERS / name)
    columns = ["patient_id", "target", *(f"prob_{c}" for c in names)]
    every = stack([outer_predictions(layout.cv_run(c), plan.folds, names)[columns] for c in finished], names)
    combiner, _ = fit_combiner("logistic", finished, every, every, len(names))
    for k in range(plan.folds):
        held = nested.predictions[nested.predictions["fold"].astype(str) == str(k)]
        rows = held.assign(model=NAME, slice_id=held["patient_id"], item_id=held["patient_id"])
        folder.write_fold_predictions(
            f"fold{k}", rows[["fold", "model", "slice_id", "item_id", "patient_id", "target", *columns[2:]]]
        )
        combiner.save(folder.fold(f"fold{k}") / COMBINER)
    printed = next((c for c in finished if (layout.cv_run(c) / FINGERPRINTS).is_file()), None)
    if printed is not None:
        shutil.copyfile(layout.cv_run(printed) / FINGERPRINTS, out / FINGERPRINTS)
    folder.write_record(
        RunRecord.of_recipe(
            recipe,
            names,
            [*finished, NAME],
            table,
            meta,
            notes=[
                f"glioscope auto, choose: stack. Each fold's predictions here are the nested procedure's (a combiner "
                f"fit on that fold's inner out-of-fold predictions); the combiner kept in every fold is fit on every "
                f"patient's out-of-fold predictions (L2 logistic, C={LOGISTIC_C}), which is the final model."
            ],
            cohort=str(out / COHORT),
            samples={"kind": "patients", "count": int(frame["patient_id"].nunique())},
            ensemble={
                "combiner": "logistic",
                "logistic_C": LOGISTIC_C,
                "members": [{"name": c, "recipe": by_name[c].recipe, "folder": f"{MEMBERS}/{c}"} for c in finished],
                "fingerprints": printed,
                "folds": {"all": {"patients_fit": len(every.patients), "coef": combiner.coef.tolist()}},
            },
        )
    )
    folder.merge_predictions([f"fold{k}" for k in range(plan.folds)])
    return out
