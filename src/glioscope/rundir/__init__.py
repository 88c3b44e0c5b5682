"""Run folders: every file name (`folder`), the run record run.json (`record`) and the predictions tables
(`tables`), written and read in this package only; a model package's manifest (`seal`) and its salted, hashed
patient ids (`patients`).

    folder = RunFolder("runs/sdl")
    record = folder.record()              # RunRecord: class names, models, split statement, one block per producer
    table = folder.predictions(record.class_names)
"""

from glioscope.rundir.folder import (
    ATTENTION,
    ATTENTION_MODEL,
    ATTENTION_SLICES,
    CLASSIFIER,
    COHORT,
    COMBINER,
    CONFIG,
    DUPLICATES,
    FEATURES,
    FEATURES_SKIPPED,
    FEATURES_USED,
    FINGERPRINTS,
    GRADCAM,
    HISTORY,
    INFO,
    INNER_CV,
    MANIFEST,
    MEMBERS,
    METADATA,
    METRICS,
    MODEL,
    MODEL_CARD,
    PATIENT_DIGESTS,
    PATIENT_HASHES,
    PATIENTS,
    PREDICTIONS,
    REPORT,
    SKIPPED,
    SPLIT_META,
    SPLITS,
    TORCHSCRIPT,
    VALIDATION,
    RunFolder,
)
from glioscope.rundir.patients import PatientDigests, hash_patient
from glioscope.rundir.record import RunRecord
from glioscope.rundir.seal import ACCEPT_OPTION, check_package, stamp, write_manifest
from glioscope.rundir.tables import prediction_table, prob_columns

__all__ = [
    "ATTENTION",
    "ATTENTION_MODEL",
    "ATTENTION_SLICES",
    "CLASSIFIER",
    "COHORT",
    "COMBINER",
    "CONFIG",
    "DUPLICATES",
    "FEATURES",
    "FEATURES_SKIPPED",
    "FEATURES_USED",
    "FINGERPRINTS",
    "GRADCAM",
    "HISTORY",
    "INFO",
    "INNER_CV",
    "MANIFEST",
    "MEMBERS",
    "METADATA",
    "METRICS",
    "MODEL",
    "MODEL_CARD",
    "PATIENT_DIGESTS",
    "PATIENT_HASHES",
    "PATIENTS",
    "PREDICTIONS",
    "REPORT",
    "SKIPPED",
    "SPLIT_META",
    "SPLITS",
    "TORCHSCRIPT",
    "VALIDATION",
    "ACCEPT_OPTION",
    "PatientDigests",
    "RunFolder",
    "RunRecord",
    "check_package",
    "hash_patient",
    "prediction_table",
    "prob_columns",
    "stamp",
    "write_manifest",
]
