"""A run folder: every file in it is named here, and written and read through `RunFolder`.

    RUN/config.yaml             the resolved recipe (its `dump()`)
    RUN/run.log                 one timestamped line per stage, and every note and warning printed (a resumed run
                                appends; glioscope.util.stagelog)
    RUN/run.json                the run record (glioscope.rundir.record.RunRecord)
    RUN/cohort.csv splits.csv split.json      the inputs: cohort rows used, their folds
    RUN/slices.csv | volumes.csv              the samples (SampleSet.table_file); samples_skipped.csv
    RUN/features.csv features_skipped.csv     a radiomics run's features, one row per patient
    RUN/fold<k>/model.pt        a deep fold's weights (and the trainer's own files; its resume checkpoints
                                go once the fold's predictions are written)
    RUN/fold<k>/classifier.npz  a radiomics fold's classifier, as plain arrays (inner_cv.csv, features_used.csv)
    RUN/fold<k>/classifier.npz or attention.pt  a deep-feature fold's classifier (a patient-level model: attention.pt,
                                tensors only); RUN/attention.csv: each held-out slice's attention,
                                RUN/attention_slices.npz: thumbnails of each patient's most attended slices
    RUN/fold<k>/combiner.npz    an ensemble fold's combiner, as plain arrays (its members' runs: RUN/members/<name>/)
    RUN/fold<k>/predictions.csv validation_predictions.csv gradcam/
    RUN/predictions.csv         every fold's held-out predictions (one row per sample and model; rundir.tables)
    RUN/validation_predictions.csv  every fold's inner-validation predictions (for fusion)
    RUN/metrics.json predictions_patients.csv report.html     evaluation and report
    RUN/conformal.json          the headline's CV non-conformity scores, for prediction sets (evaluate.conformal;
                                a package carries its run's; an external test, the one its sets were made with)
    RUN/fingerprints.npz        the training images' hashes (glioscope.leakcheck), written at the end of training
    RUN/typicality.npz          the fold models' feature-space calibration (glioscope.typicality), made on first use
    PACKAGE/README.md metadata.json fingerprints.npz fold<k>/model.ts   a model package's own files
    PACKAGE/patients.json       its training patients' ids, salted and hashed (rundir.patients; patients.sha256:
                                unsalted, before glioscope salted them); none with `export --no-patient-ids`
    PACKAGE/manifest.json       every other file's SHA-256 and size (rundir.seal), checked on opening
    TEST/duplicates.csv         an external test's images shared with the training cohort
    TEST/unlike_training.csv    an external test's patients: how unlike the run's training data each is

Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

from pathlib import Path

import json
import zipfile

import numpy as np
import pandas as pd
import yaml

from glioscope.cohort import COHORT_FILE as COHORT
from glioscope.errors import InputError
from glioscope.rundir.patients import PatientDigests, hash_patient
from glioscope.rundir.labels import RunLabel, run_label
from glioscope.rundir.record import RunRecord
from glioscope.rundir.tables import prob_columns, read_predictions, read_table
from glioscope.split import SPLIT_META, SPLITS
from glioscope.train.checkpoint import BEST, HISTORY, LAST, load_checkpoint, save_checkpoint
from glioscope.util import atomic, csvfiles

CONFIG, INFO, METRICS, REPORT = "config.yaml", "run.json", "metrics.json", "report.html"
RUN_LOG = "run.log"  # the run's stages and notes, appended (glioscope.util.stagelog)
SKIPPED = "samples_skipped.csv"
PREDICTIONS, VALIDATION, PATIENTS = "predictions.csv", "validation_predictions.csv", "predictions_patients.csv"
MODEL, GRADCAM = "model.pt", "gradcam"
CLASSIFIER, INNER_CV, FEATURES_USED = "classifier.npz", "inner_cv.csv", "features_used.csv"
FEATURES, FEATURES_SKIPPED = "features.csv", "features_skipped.csv"
COMBINER, MEMBERS = "combiner.npz", "members"  # an ensemble run's combiner per fold, and its members' run folders
PATIENT_DIGESTS, FINGERPRINTS = "patients.json", "fingerprints.npz"  # a package's stand-ins for the cohort; a
# run's fingerprints.npz spares predict and test decoding its cohort again
PATIENT_HASHES = "patients.sha256"  # a package's unsalted ids before patients.json, still read
MODEL_CARD, METADATA, TORCHSCRIPT, MANIFEST = "README.md", "metadata.json", "model.ts", "manifest.json"
DUPLICATES = "duplicates.csv"
CONFORMAL = "conformal.json"  # the calibration of prediction sets (glioscope.evaluate.conformal)
ATTENTION, ATTENTION_MODEL = "attention.csv", "attention.pt"  # a patient-level model's slice attention; its fold model
ATTENTION_SLICES = "attention_slices.npz"  # thumbnails of each held-out patient's most attended slices
TYPICALITY = "typicality.npz"  # how unlike the training data an input is: the run's calibration (a package's copy)
UNLIKE = "unlike_training.csv"  # an external test's patients, each with how unlike the training data it is
REPEATS, REPEATS_TABLE, REPEATS_REPORT = "repeats.json", "repeats.csv", "repeats.html"  # `cv --seeds`: a folder of runs
# `cv --permutations`: the test's record, its log, and the scratch folder of the permuted run being trained
PERMUTATION, PERMUTATION_LOG, PERMUTATIONS = "permutation.json", "permutations.log", "permutations"


class RunFolder:
    """The files of one run folder (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # --- starting, the recipe -----------------------------------------------------------------

    def check_start(self, recipe, resume: bool) -> bool:
        """Whether this is a resumed run; errors for a used folder without --resume or another recipe."""
        if self.path.exists() and any(self.path.iterdir()) and not resume:
            raise InputError(
                self.path, "run folder already exists; pass --resume to continue it or choose another folder"
            )
        if not (resume and (self / CONFIG).is_file()):
            return False
        if not self.holds(recipe):
            raise InputError(
                self / CONFIG,
                "the recipe differs from the run being resumed; give the same recipe and --set/--quick options",
            )
        return True

    def holds(self, recipe) -> bool:
        """Whether config.yaml is `recipe`'s (one written before config.yaml listed the `changed` settings too)."""
        stored, wanted = yaml.safe_load((self / CONFIG).read_text(encoding="utf-8")), yaml.safe_load(recipe.dump())
        if isinstance(stored, dict) and "changed" not in stored:
            wanted.pop("changed", None)
        return stored == wanted

    def config(self) -> dict:
        path = self / CONFIG
        if not path.is_file():
            raise InputError(self.path, f"not a glioscope run folder (no {CONFIG})")
        return yaml.safe_load(path.read_text(encoding="utf-8"))

    def label(self) -> RunLabel:
        """The run's title, description and task words from its config.yaml and classes (glioscope.rundir.labels)."""
        try:
            config = self.config()
        except (InputError, OSError, yaml.YAMLError):
            config = None  # a folder without a readable recipe: its name stands for it
        config = config if isinstance(config, dict) else {"name": self.path.name}
        return run_label(config, self.record().class_names if (self / INFO).is_file() else None)

    def write_inputs(self, recipe, cohort: pd.DataFrame, splits: pd.DataFrame, split_meta: dict, samples=None) -> None:
        """The recipe and what the run starts from: cohort rows, splits, the samples (and those skipped) if any."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self / CONFIG, recipe.dump())
        atomic.write_csv(self / COHORT, cohort)
        atomic.write_csv(self / SPLITS, splits)
        atomic.write_json(self / SPLIT_META, split_meta)
        if getattr(samples, "table_file", None):  # a SampleSet's table: the slices or volumes
            atomic.write_csv(self / samples.table_file, samples.table)
        if samples is not None and samples.skipped:
            atomic.write_csv(self / SKIPPED, pd.DataFrame([s.__dict__ for s in samples.skipped]))

    def write_fused(self, fused) -> None:
        """A fused run (glioscope.evaluate.fusion.FusedRun): its config, run.json, inputs and predictions."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self / CONFIG, yaml.safe_dump(fused.config, sort_keys=False))
        self.write_record(fused.record)
        atomic.write_csv(self / SPLITS, fused.splits)
        if fused.cohort is not None:
            atomic.write_csv(self / COHORT, fused.cohort)
        atomic.write_csv(self / PREDICTIONS, fused.predictions)

    def cohort(self) -> pd.DataFrame:
        return csvfiles.read(self / COHORT)

    def seen_patients(self, patient_ids) -> set[str] | None:
        """The given patients that the run trained or validated on: from its cohort, or (a model package, which
        ships no ids) from its hashed ids; None for a package exported without them (nobody can tell)."""
        ids = set(map(str, patient_ids))
        if (self / COHORT).is_file():
            return ids & set(self.cohort()["patient_id"])
        if (self / PATIENT_DIGESTS).is_file():
            return PatientDigests.read(self / PATIENT_DIGESTS).seen(ids)
        if (self / PATIENT_HASHES).is_file():
            hashed = set((self / PATIENT_HASHES).read_text(encoding="utf-8").split())
            return {i for i in ids if hash_patient(i) in hashed}
        if not self.keeps_patient_ids():
            return None
        raise InputError(self.path, f"has neither {COHORT} nor {PATIENT_DIGESTS}: cannot tell which patients it saw")

    def keeps_patient_ids(self) -> bool:
        """False for a model package exported without its patients' ids (`export --no-patient-ids`)."""
        package = self.record().package if (self / INFO).is_file() else None
        return (package or {}).get("patient_ids", True) is not False

    def patients_count(self) -> int | None:
        """How many patients the run trained and was evaluated on (a package: how many ids it holds hashed)."""
        if (self / COHORT).is_file():
            return int(self.cohort()["patient_id"].nunique())
        if (self / PATIENT_DIGESTS).is_file():
            return len(PatientDigests.read(self / PATIENT_DIGESTS).stored)
        if (self / PATIENT_HASHES).is_file():
            return len((self / PATIENT_HASHES).read_text(encoding="utf-8").split())
        return None

    # --- run.json ------------------------------------------------------------------------------

    def write_record(self, record: RunRecord) -> None:
        atomic.write_json(self / INFO, record.to_json())

    def record(self) -> RunRecord:
        """run.json as a RunRecord (an earlier version's too)."""
        path = self / INFO
        if not path.is_file():
            raise InputError(path, "not found: a run folder has a run.json written by `glioscope train`")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(path, f"cannot read run metadata ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(path, "cannot read run metadata (not a JSON object)")
        return RunRecord.from_json(data, default_recipe=self.path.name)

    def info(self) -> dict:
        """run.json's mapping, as this version writes it (see `record`)."""
        return self.record().to_json()

    # --- folds ---------------------------------------------------------------------------------

    def fold(self, name: str) -> Path:
        return self / name

    def fold_finished(self, name: str) -> bool:
        return (self.fold(name) / PREDICTIONS).is_file()

    def write_fold_predictions(self, name: str, frame: pd.DataFrame, validation: bool = False) -> None:
        atomic.write_csv(self.fold(name) / (VALIDATION if validation else PREDICTIONS), frame)

    def finish_fold(self, name: str, best_is_kept: bool) -> None:
        """Remove what only an unfinished fold needs, once its predictions are written: the resume checkpoints
        (checkpoint_last.pt, the weights with the optimiser's state: three times model.pt under Adam) and, when
        model.pt holds the best epoch's weights, checkpoint_best.pt, their copy. A finished fold is never
        retrained (fold_finished), so nothing reads them again."""
        doomed = [LAST] + ([BEST] if best_is_kept else [])
        for file in doomed:
            for path in self.fold(name).rglob(file):  # phases train in subfolders, each with its own
                path.unlink(missing_ok=True)

    def save_model(self, name: str, state: dict, best_epoch: int, precision: dict) -> None:
        """A fold's model: its weights, the epoch they are from, and the precision it trained in."""
        save_checkpoint(self.fold(name) / MODEL, model=state, best_epoch=best_epoch, precision=precision)

    def precisions(self, job_names: list[str]) -> dict[str, dict]:
        """How each fold's model was trained (dtype, channels_last, chosen_by), from its model.pt."""
        found = {}
        for name in job_names:
            path = self.fold(name) / MODEL
            if path.is_file():
                found[name] = load_checkpoint(path).get("precision") or {}
        return found

    def model_files(self) -> list[tuple[str, Path]]:
        """(fold name, model.pt) of every trained fold."""
        files = sorted(self.path.glob(f"*/{MODEL}"))
        if not files:
            raise InputError(self.path, f"no trained model ({MODEL}) in any fold folder; has training finished?")
        return [(path.parent.name, path) for path in files]

    @staticmethod
    def model_state(path: Path, mmap: bool = False) -> dict:
        """A model.pt's weights (`mmap`: mapped, not read: for their shapes); an InputError when it holds none."""
        loaded = load_checkpoint(path, mmap)
        state = loaded.get("model") if isinstance(loaded, dict) else None
        if not isinstance(state, dict) or not state:
            raise InputError(path, "holds no model weights (a model.pt written by glioscope has them under 'model')")
        return state

    @staticmethod
    def load_model(path: Path) -> dict:
        """A model.pt whole: its weights, best epoch and precision."""
        return load_checkpoint(path)

    def write_predictions(self, frame: pd.DataFrame) -> None:
        atomic.write_csv(self / PREDICTIONS, frame)

    def merge_predictions(self, job_names: list[str]) -> None:
        """RUN/predictions.csv (and validation_predictions.csv) from the folds'; the test set's as their mean."""
        validation = [
            read_predictions(self.fold(n) / VALIDATION) for n in job_names if (self.fold(n) / VALIDATION).is_file()
        ]
        if validation:
            atomic.write_csv(self / VALIDATION, pd.concat(validation, ignore_index=True))
        frames = [read_predictions(self.fold(n) / PREDICTIONS) for n in job_names if self.fold_finished(n)]
        merged = pd.concat(frames, ignore_index=True)
        test = merged[merged["fold"] == "test"]
        if len(test) and len(job_names) > 1:
            # Every fold's model predicts the held-out test patients: report their mean (an ensemble).
            probs = prob_columns(test)
            keys = ["model", "slice_id", "item_id", "patient_id", "target"]
            keys += [c for c in ("vote_weight",) if c in test.columns]
            test = test.groupby(keys, sort=False)[probs].mean().reset_index()
            test.insert(0, "fold", "test")
            merged = pd.concat([merged[merged["fold"] != "test"], test], ignore_index=True)
        atomic.write_csv(self / PREDICTIONS, merged)

    def gradcam_dir(self, name: str) -> Path:
        return self.fold(name) / GRADCAM

    def gradcam_panels(self) -> list[tuple[str, bytes]] | None:
        """The Grad-CAM panels saved by the first fold that has them, titled for the report."""
        for folder in sorted(self.path.glob(f"*/{GRADCAM}")):
            files = sorted(folder.glob("*.png"))
            if files:
                return [
                    (f"{folder.parent.name}, held-out patients ({k + 1}/{len(files)})", f.read_bytes())
                    for k, f in enumerate(files)
                ]
        return None

    def attention(self) -> tuple[pd.DataFrame | None, dict[str, np.ndarray]]:
        """A patient-level model's attention table (None when the run has none) and its slices' thumbnails by
        slice_id (empty when the run kept none, or the file cannot be read)."""
        if not (self / ATTENTION).is_file():
            return None, {}
        table = pd.read_csv(self / ATTENTION, dtype={"slice_id": str, "patient_id": str, "fold": str})
        try:
            with np.load(self / ATTENTION_SLICES, allow_pickle=False) as archive:
                return table, dict(zip(archive["slice_id"].astype(str), archive["images"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return table, {}

    def write_history(self, name: str, history: pd.DataFrame) -> None:
        """A fold's per-epoch metrics (its trainer writes them; a two-phase training joins its phases' here)."""
        atomic.write_csv(self.fold(name) / HISTORY, history)

    def histories(self, folds) -> list[tuple[object, pd.DataFrame]]:
        """(fold, per-epoch metrics) of every fold that has a metrics.csv."""
        found = []
        for fold in folds:
            path = self.fold(f"fold{fold}") / HISTORY
            if path.is_file():
                history = pd.read_csv(path)
                if "epoch" not in history:
                    history["epoch"] = np.arange(1, len(history) + 1)
                found.append((fold, history))
        return found

    # --- predictions ---------------------------------------------------------------------------

    def predictions(self, class_names: list[str] | None = None) -> pd.DataFrame:
        """predictions.csv with `set` (cv | test) added and prob_<class> columns in class order.

        The file may name its probability columns by class name or by index (prob_0, prob_1);
        either way they are mapped onto `class_names` (run.json).
        """
        path = self / PREDICTIONS
        if not path.is_file():
            raise InputError(path, "not found: the run has no predictions yet (did training finish?)")
        frame = read_table(path, class_names)
        if frame is None:
            raise InputError(path, "has no rows")
        names = class_names or [c[len("prob_") :] for c in prob_columns(frame)]
        bad = ~frame["target"].between(0, len(names) - 1)
        if bad.any():
            raise InputError(
                path, f"target {int(frame.loc[bad, 'target'].iloc[0])} is not a class index 0..{len(names) - 1}"
            )
        fold = frame["fold"].astype(str).str.strip()
        is_test = fold.str.lower().isin(["test", "-1"])
        frame["fold"] = fold.where(~is_test, "test")
        frame["set"] = np.where(is_test, "test", "cv")
        ordered = [c for c in frame.columns if c.startswith("prob_")]
        return frame[[c for c in frame.columns if c not in ordered] + ordered]

    def validation_predictions(self, class_names: list[str]) -> pd.DataFrame | None:
        """validation_predictions.csv in class order, or None when the run has none."""
        path = self / VALIDATION
        if not path.is_file():
            return None
        frame = read_table(path, class_names)
        if frame is None:
            return None
        frame["fold"] = frame["fold"].astype(str).str.strip()
        if frame["fold"].str.lower().isin(["test", "-1"]).any():
            raise InputError(path, "has rows of the test partition; validation predictions belong to a CV fold")
        return frame

    # --- metrics -------------------------------------------------------------------------------

    def write_metrics(self, metrics: dict, patients: pd.DataFrame) -> None:
        """metrics.json and predictions_patients.csv, written together: never one without the other."""
        with atomic.atomic_paths(self / METRICS, self / PATIENTS) as (json_file, csv_file):
            json_file.write_text(atomic.json_text(metrics), encoding="utf-8")
            atomic.csv_to(csv_file, patients)

    def metrics_stale(self) -> bool:
        """True when metrics.json is missing or older than predictions.csv."""
        path, predictions = self / METRICS, self / PREDICTIONS
        return not path.is_file() or (predictions.is_file() and predictions.stat().st_mtime > path.stat().st_mtime)

    def metrics(self) -> dict:
        path = self / METRICS
        if not path.is_file():
            raise InputError(path, "not found: evaluate the run first (glioscope evaluate)")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(path, f"cannot read metrics ({exc})") from None
