"""The ensemble method: member recipes of other kinds on the same folds, combined per fold (stacking or a mean).

A run (glioscope.methods.ensemble_run) trains every member into RUN/members/<name>/ and keeps one
combiner per outer fold (RUN/fold<k>/combiner.npz, glioscope.methods.stacking). Applying it
(glioscope.trained.TrainedRun, bound to the run folder by `bind`) opens every member's run through its
own method: each member makes its own inputs of the same cohort rows or study; a patient that some member
cannot take is skipped, with that member's reason. Fold k's probability of a patient is fold k's combiner
of the members' fold-k patient probabilities (each the mean of the patient's inputs, as in the run), so
that a fold applied anew gives its cross-validation predictions. A model package of an ensemble run
(glioscope.export) holds each member under PACKAGE/members/<name>/ as its own method writes one (config.yaml,
run.json with a package block, the fold models: `Method.export_model`) and each fold's combiner; the package's
manifest covers the members' files, and predict, test and batch prediction apply it as they apply the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from glioscope import leakcheck
from glioscope.radiomics.feature_set import PatientInputs
from glioscope.cohort import Skip
from glioscope.errors import InputError
from glioscope.evaluate.aggregate import patient_mean
from glioscope.evaluate.combiners import Stack
from glioscope.methods.base import Method
from glioscope.methods.ensemble_recipe import ENSEMBLE
from glioscope.methods.ensemble_run import run_ensemble
from glioscope.methods.stacking import Combiner
from glioscope.rundir import COMBINER, CONFIG, FINGERPRINTS, INFO, MEMBERS, TORCHSCRIPT, RunFolder, RunRecord


@dataclass
class _Member:
    """A member's trained run, opened by its own method."""

    name: str
    folder: RunFolder
    method: Method
    recipe: object
    record: RunRecord


@dataclass
class EnsembleInputs(PatientInputs):
    """Every member's inputs of the same patients: `table` (patient_id, label, path) holds the patients that every
    member could take, one row each; `parts` each member's own inputs; the others skipped with the reason."""

    kind: ClassVar[str] = "patients"

    table: pd.DataFrame
    parts: dict[str, object]
    methods: dict[str, Method]
    fingerprinted: str | None = None  # the member whose inputs the leak check compares (run.json "ensemble")
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _joined(parts: dict[str, object], methods: dict[str, Method], fingerprinted: str | None) -> EnsembleInputs:
    """The patients every member's inputs hold; a patient some member lacks is skipped with that member's reason."""
    tables = {name: part.table.reset_index(drop=True) for name, part in parts.items()}
    has = {name: set(map(str, table["patient_id"])) for name, table in tables.items()}
    every = sorted(set.intersection(*has.values()))
    first = tables[next(iter(tables))]
    firsts = first.assign(patient_id=first["patient_id"].astype(str)).drop_duplicates("patient_id")
    firsts = firsts.set_index("patient_id")
    path_column = parts[next(iter(parts))].path_column
    table = pd.DataFrame(
        {
            "patient_id": every,
            "label": [str(firsts.at[p, "label"]) if "label" in firsts else "" for p in every],
            "path": [str(firsts.at[p, path_column]) for p in every],
        }
    )
    skipped, seen = [], set()
    for name, part in parts.items():
        for skip in part.skipped:
            if (skip.path, skip.reason) not in seen:
                seen.add((skip.path, skip.reason))
                skipped.append(Skip(skip.path, f"member {name}: {skip.reason}"))
    for patient in sorted(set.union(*has.values()) - set(every)):
        lacking = [name for name in parts if patient not in has[name]]
        skipped.append(Skip(patient, f"patient {patient}: member(s) {', '.join(lacking)} could not take it"))
    notes = [f"member {name}: {note}" for name, part in parts.items() for note in part.notes]
    if not every:
        raise InputError(None, f"no patient could be given to every member ({skipped[0].reason if skipped else '-'})")
    return EnsembleInputs(table, parts, methods, fingerprinted, skipped, notes)


class EnsembleMethod(Method):
    """Members of any other kind (`kinds`: glioscope.methods.METHODS), combined per fold."""

    recipes = ENSEMBLE

    def __init__(self, kinds: dict[str, Method], folder: RunFolder | None = None):
        self.kinds = kinds
        self.folder = folder

    def bind(self, folder: RunFolder) -> EnsembleMethod:
        return EnsembleMethod(self.kinds, folder)

    def run(
        self, recipe, cohort, out, splits=None, folds=None, resume=False, progress=True, report=True, cache_dir=None
    ) -> Path:
        return run_ensemble(recipe, self.kinds, cohort, out, splits, folds, resume, progress, report, cache_dir)

    # --- the members' runs ------------------------------------------------------------------------------

    def _members(self, record: RunRecord) -> list[_Member]:
        if self.folder is None:
            raise InputError(None, "an ensemble run is applied through glioscope.trained.TrainedRun (its folder)")
        opened = []
        for name in record.models[:-1]:
            folder = RunFolder(self.folder / MEMBERS / name)
            if not (folder / INFO).is_file():
                raise InputError(folder.path, f"member {name} of the ensemble ({INFO} models) has no finished run here")
            config = folder.config()
            kind = config.get("kind") or "deep"
            if kind not in self.kinds or kind == self.kind:
                raise InputError(folder / CONFIG, f"member {name} is of a kind this version cannot apply ({kind!r})")
            method = self.kinds[kind].bind(folder)
            opened.append(_Member(name, folder, method, method.recipe_from_config(config), folder.record()))
        return opened

    def fold_files(self, folder: RunFolder) -> list[tuple[str, Path]]:
        files = sorted(folder.path.glob(f"*/{COMBINER}"))
        if not files:
            raise InputError(folder.path, f"no combiner ({COMBINER}) in any fold folder; has the ensemble finished?")
        return [(path.parent.name, path) for path in files]

    def check_folds(self, folder, recipe, record) -> dict:
        """Each fold's combiner against run.json's members and the member folders, and every member's own folds."""
        members = self.bind(folder)._members(record)
        names = [m.name for m in members]
        for fold, path in self.fold_files(folder):
            combiner = Combiner.load(path)
            if combiner.members != names:
                raise InputError(
                    path,
                    f"combines members {combiner.members}, but {INFO} and {MEMBERS}/ hold {names}: the combiner does "
                    "not belong to these members",
                )
            if combiner.n_classes != len(record.class_names):
                raise InputError(path, f"combines {combiner.n_classes} classes, {INFO} names {record.class_names}")
            for member in members:
                if fold not in {f for f, _ in member.method.fold_files(member.folder)}:
                    raise InputError(member.folder.path, f"member {member.name} has no trained {fold}")
        for member in members:
            if list(member.record.class_names) != list(record.class_names):
                raise InputError(member.folder / INFO, f"member {member.name}'s classes are not the ensemble's")
            member.method.check_folds(member.folder, member.recipe, member.record)
        return {}

    # --- applying -----------------------------------------------------------------------------------------

    def inputs(self, recipe, record, frame, cache_dir, progress) -> EnsembleInputs:
        members = self._members(record)
        parts = {m.name: m.method.inputs(m.recipe, m.record, frame, cache_dir, progress) for m in members}
        return _joined(parts, {m.name: m.method for m in members}, (record.ensemble or {}).get("fingerprints"))

    def study_inputs(self, recipe, record, study) -> EnsembleInputs:
        members = self._members(record)
        parts = {m.name: m.method.study_inputs(m.recipe, m.record, study) for m in members}
        return _joined(parts, {m.name: m.method for m in members}, (record.ensemble or {}).get("fingerprints"))

    def load_folds(self, folder, recipe, record, inputs: EnsembleInputs) -> list[tuple[str, tuple]]:
        """(fold, (its combiner, every member's loaded fold models)) of every fold."""
        members = self.bind(folder)._members(record)
        loaded = {m.name: (m, m.method.load_folds(m.folder, m.recipe, m.record, inputs.parts[m.name])) for m in members}
        return [(fold, (Combiner.load(path), loaded)) for fold, path in self.fold_files(folder)]

    def probabilities(self, folds, inputs: EnsembleInputs, recipe, record, progress) -> dict[str, np.ndarray]:
        if not folds:
            return {}
        patients = list(inputs.table["patient_id"])
        n = len(record.class_names)
        _, loaded = folds[0][1]
        per_member = {}  # member -> fold -> (patients, classes)
        for name, (member, models) in loaded.items():
            part = inputs.parts[name]
            given = member.method.probabilities(models, part, member.recipe, member.record, progress)
            ids = part.table["patient_id"].astype(str).reset_index(drop=True)
            rows = {p: np.flatnonzero(ids.to_numpy() == p) for p in patients}
            weights = part.vote_weights()
            per_member[name] = {
                fold: np.array(
                    [patient_mean(p[rows[q]], None if weights is None else weights[rows[q]]) for q in patients]
                ).reshape(len(patients), n)
                for fold, p in given.items()
            }
        found = {}
        for fold, (combiner, _) in folds:
            probs = np.stack([per_member[name][fold] for name in combiner.members], axis=1)
            found[fold] = combiner.apply(Stack(patients, np.zeros(len(patients), dtype=int), probs))
        return found

    def fingerprints(self, inputs: EnsembleInputs):
        name = inputs.fingerprinted
        return None if name is None else inputs.methods[name].fingerprints(inputs.parts[name])

    def training_fingerprints(self, folder, recipe, record, progress):
        return leakcheck.Fingerprints.load(folder / FINGERPRINTS) if (folder / FINGERPRINTS).is_file() else None

    def export_folds(self, run, package, recipe, record, torchscript=False) -> dict:
        """Every member into PACKAGE/members/<name>/ by its own method (its recipe, fold models and a package's
        run.json; its cohort, patients and fingerprints stay behind), then each fold's combiner; returns each
        member's checks, and their TorchScript differences as members/<name>/fold<k>."""
        checks = {"torchscript_max_difference": {}, "members": {}}
        for member in self.bind(run)._members(record):
            where = RunFolder(package / MEMBERS / member.name)
            done = member.method.export_model(member.folder, where, member.recipe, member.record, torchscript)
            exported_from = f"{run.path.name}/{MEMBERS}/{member.name}"
            where.write_record(
                member.record.packaged({"exported_from": exported_from, "member_of": record.recipe, "checks": done})
            )
            checks["members"][member.name] = done
            for fold, difference in done.get("torchscript_max_difference", {}).items():
                checks["torchscript_max_difference"][f"{MEMBERS}/{member.name}/{fold}"] = difference
        for fold, path in self.fold_files(run):
            Combiner.load(path).save(package.fold(fold) / COMBINER)
        return checks

    def input_words(self, recipe, record) -> dict:
        names = record.models[:-1]
        return {
            "network": f"An ensemble of {len(names)} members ({', '.join(names)}), {recipe.combiner} combiner",
            "channels": [],
            "shape": None,
            "format": "each member's own inputs",
            "value": "each member's patient probability, combined per fold",
            "input": f"what every member takes ({MEMBERS}/<name>/{CONFIG})",
            "files": f"fold<k>/{COMBINER} (the fold's combiner as plain arrays, read with `allow_pickle=False`), and "
            f"each member's own {CONFIG}, {INFO} and fold models in {MEMBERS}/<name>/",
            "torchscript": f"{MEMBERS}/<name>/fold<k>/{TORCHSCRIPT} of a deep member",
        }
