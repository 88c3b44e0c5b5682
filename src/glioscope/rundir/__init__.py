"""Run folders: every file name (`folder`), the run record run.json (`record`) and the predictions tables
(`tables`), written and read in this package only.

    folder = RunFolder("runs/sdl")
    record = folder.record()              # RunRecord: class names, models, split statement, one block per producer
    table = folder.predictions(record.class_names)
"""

from glioscope.rundir.folder import (
    CLASSIFIER,
    COHORT,
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
    METADATA,
    METRICS,
    MODEL,
    MODEL_CARD,
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
    hash_patient,
)
from glioscope.rundir.record import RunRecord
from glioscope.rundir.tables import prediction_table, prob_columns

__all__ = [
    "CLASSIFIER",
    "COHORT",
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
    "METADATA",
    "METRICS",
    "MODEL",
    "MODEL_CARD",
    "PATIENT_HASHES",
    "PATIENTS",
    "PREDICTIONS",
    "REPORT",
    "SKIPPED",
    "SPLIT_META",
    "SPLITS",
    "TORCHSCRIPT",
    "VALIDATION",
    "RunFolder",
    "RunRecord",
    "hash_patient",
    "prediction_table",
    "prob_columns",
]
