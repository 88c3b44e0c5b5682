"""A model package: a trained run's models, settings and card, without the run folder and its patients.

    PACKAGE/README.md          the model card (model_card.py): intended use, data, split, metrics, caveats
    PACKAGE/metadata.json      machine-readable, after MONAI bundles' metadata.json: inputs, outputs, use
    PACKAGE/config.yaml        the recipe: preprocessing and model, as the run had them
    PACKAGE/run.json           the run record: classes, models, split statement, the CV operating point (binary)
    PACKAGE/metrics.json       the run's cross-validation metrics
    PACKAGE/conformal.json     the run's calibration of prediction sets (glioscope.evaluate.conformal)
    PACKAGE/fold<k>/model.pt   a deep run's fold weights (tensors only: torch.load(weights_only=True)); with
                               torchscript=True also fold<k>/model.ts, checked against PyTorch
    PACKAGE/fold<k>/classifier.npz   a radiomics run's fold classifiers (plain arrays: allow_pickle=False)
    PACKAGE/fold<k>/combiner.npz     an ensemble run's fold combiners (plain arrays: allow_pickle=False)
    PACKAGE/members/<name>/    an ensemble's members, each a folder of its own kind of method: its config.yaml,
                               run.json (a package block, no cohort) and fold models, written as above; no
                               patients, card, metrics or fingerprints of its own (the package's are the ensemble's)
    PACKAGE/patients.json      the training patients' ids, salted and hashed with scrypt (glioscope.rundir.patients):
                               predict and test flag a patient seen in training; left out with patient_ids=False
    PACKAGE/fingerprints.npz   the training images' hashes (glioscope.leakcheck): test finds duplicates
    PACKAGE/typicality.npz     the run's feature-space calibration (glioscope.typicality), without patient ids
    PACKAGE/manifest.json      every other file's SHA-256 and size (glioscope.rundir.seal), written last

The package is a run-like folder of the same kind of method: `glioscope predict PACKAGE study/`
and `glioscope test PACKAGE --cohort ...` load it as they load a run (glioscope.trained), after
checking it against its manifest (every file, an ensemble's members' too). It holds no image and no
patient id.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np

from glioscope.evaluate.run import load_metrics
from glioscope.model_card import PackageFacts, metadata, model_card
from glioscope.rundir import (
    CONFORMAL,
    FINGERPRINTS,
    METADATA,
    METRICS,
    MODEL_CARD,
    PATIENT_DIGESTS,
    PatientDigests,
    RunFolder,
    write_manifest,
)
from glioscope.trained import TrainedRun
from glioscope.typicality import export_calibration
from glioscope.util import atomic


def export_run(
    run_dir: str | Path,
    out: str | Path,
    torchscript: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    patient_ids: bool = True,
) -> dict:
    """Write the model package of a finished run to `out` (atomically); returns what was checked.

    `patient_ids` False: the training patients' ids are left out, even hashed (predict and test then cannot tell a
    patient the run trained on)."""
    run = TrainedRun(run_dir)
    recipe, record = run.recipe, run.record
    metrics = load_metrics(run_dir, evaluate_if_missing=True, n_boot=recipe.evaluate.bootstrap)
    with atomic.atomic_dir(out, overwrite=overwrite) as tmp:
        package = RunFolder(tmp)
        checks = run.method.export_model(run.folder, package, recipe, record, torchscript)
        cohort = run.folder.cohort()
        prints = run.training_fingerprints(progress)
        digests = PatientDigests.new()
        trained_on = [*cohort["patient_id"], *(prints.patients if prints is not None else [])]
        names = _patient_names(trained_on, digests if patient_ids else None)
        if patient_ids:
            digests.write(tmp / PATIENT_DIGESTS, names.values())
        notes = export_calibration(run, package, progress)
        if prints is not None:
            prints.patients = np.array([names[str(p)] for p in prints.patients])
            prints.ids = np.array([f"training sample {k}" for k in range(len(prints.ids))])
            prints.save(tmp / FINGERPRINTS)
        else:
            notes.append(
                "the training images were not available at export: `glioscope test` cannot look for "
                "duplicate images with this package"
            )
        package.write_record(
            record.packaged(
                {
                    "exported_from": run.path.name,
                    "checks": checks,
                    "operating_point": run.operating_point(),
                    "patient_ids": patient_ids,
                },
                notes,
            )
        )
        atomic.write_json(tmp / METRICS, metrics)
        calibration = run.calibration()  # the package's prediction sets are its run's
        if calibration is not None:
            atomic.write_json(tmp / CONFORMAL, calibration)
        facts = PackageFacts(
            run=run.folder,
            recipe=recipe,
            record=record,
            metrics=metrics,
            cohort=cohort,
            headline=run.headline,
            torchscript=torchscript,
            words={**run.method.input_words(recipe, record), "num_channels": run.takes.get("channels")},
            patients=digests.parameters() if patient_ids else None,
        )
        atomic.write_text(tmp / MODEL_CARD, model_card(facts))
        atomic.write_json(tmp / METADATA, metadata(facts))
        write_manifest(tmp)
    return checks


def _patient_names(patient_ids, digests: PatientDigests | None) -> dict[str, str]:
    """What the package calls each training patient: its salted digest, or (no ids kept) "training patient <k>",
    numbered in a random order so that the numbers say nothing of the ids."""
    unique = sorted(set(map(str, patient_ids)))
    if digests is not None:
        return digests.of(unique)
    order = np.random.default_rng(secrets.randbits(64)).permutation(len(unique))
    return {p: f"training patient {k}" for p, k in zip(unique, order)}
