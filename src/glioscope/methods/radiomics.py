"""The radiomics method: PyRadiomics features in the tumour mask and a classifier per fold (glioscope.radiomics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glioscope import leakcheck
from glioscope.errors import InputError
from glioscope.methods.base import Method
from glioscope.methods.embeddings import classifier_embeddings
from glioscope.radiomics.classifier import probabilities
from glioscope.radiomics.feature_set import FeatureSet, feature_set
from glioscope.radiomics.portable import PortableClassifier
from glioscope.radiomics.run import run_radiomics
from glioscope.radiomics.settings import RADIOMICS
from glioscope.rundir import CLASSIFIER, CONFIG, FEATURES, FINGERPRINTS, INFO, RunFolder
from glioscope.util import csvfiles


class RadiomicsMethod(Method):
    recipes = RADIOMICS
    seed_setting = "classifier.seed"  # its inner CV writes every training patient's out-of-fold prediction

    def run(
        self, recipe, cohort, out, splits=None, folds=None, resume=False, progress=True, report=True, cache_dir=None
    ) -> Path:
        return run_radiomics(
            recipe, cohort, out, splits_path=splits, folds=folds, resume=resume, progress=progress, report=report
        )

    def fold_files(self, folder: RunFolder) -> list[tuple[str, Path]]:
        files = sorted(folder.path.glob(f"*/{CLASSIFIER}"))
        if not files:
            raise InputError(
                folder.path,
                f"no fitted classifier ({CLASSIFIER}) in any fold folder: a radiomics run "
                "made before classifiers were kept cannot be applied; run it again",
            )
        return [(path.parent.name, path) for path in files]

    def inputs(self, recipe, record, frame, cache_dir, progress) -> FeatureSet:
        return feature_set(frame, recipe, _channels(record), progress)

    def study_inputs(self, recipe, record, study) -> FeatureSet:
        frame, channels = study.frame.copy(), _channels(record)
        if len(frame) == 1 and len(channels) == 1 and frame.loc[0, "sequence"] not in channels:
            frame.loc[0, "sequence"] = channels[0]  # the one volume the user pointed at is the channel
        if not (frame["mask_path"].astype(str) != "").any():
            raise InputError(
                study.path,
                "has no tumour mask: a radiomics model computes its features inside it "
                "(give --mask, or a BraTS case folder with its _seg file)",
            )
        made = feature_set(frame, recipe, channels, progress=False)
        made.skipped[:0] = study.skipped
        return made

    def check_folds(self, folder, recipe, record) -> dict:
        """Each fold classifier's classes against run.json's, and its features against the channels run.json names."""
        names, channels = list(record.class_names), _channels(record)
        trained_on = set()
        for _, path in self.fold_files(folder):
            model = PortableClassifier.load(path)
            classes = {int(c) for c in model.classes_}
            trained_on |= classes
            if max(classes, default=0) >= len(names) or min(classes, default=0) < 0:
                raise InputError(
                    folder / INFO,
                    f"names {len(names)} class(es) ({', '.join(names)}), but {path.relative_to(folder.path)} "
                    f"predicts class indices {sorted(classes)}: the class names do not belong to these classifiers",
                )
            foreign = [f for f in model.features if not f.startswith(("shape", *(f"{c}_" for c in channels)))]
            if foreign:
                raise InputError(
                    path,
                    f"takes features of channels that {INFO}'s radiomics channels ({', '.join(channels)}) do not "
                    f"give, e.g. {foreign[0]}",
                )
        unseen = [names[k] for k in range(len(names)) if k not in trained_on]
        if unseen:
            raise InputError(
                folder / INFO,
                f"names class(es) {', '.join(unseen)} that no fold's classifier was trained on: the class names do "
                "not belong to these classifiers",
            )
        return {"channels": len(channels)}

    def load_folds(self, folder, recipe, record, inputs) -> list[tuple[str, PortableClassifier]]:
        return [(fold, PortableClassifier.load(path)) for fold, path in self.fold_files(folder)]

    def probabilities(self, folds, inputs: FeatureSet, recipe, record, progress) -> dict[str, np.ndarray]:
        n = len(record.class_names)
        return {fold: probabilities(model, inputs.columns(model.features), n) for fold, model in folds}

    def embeddings(self, folds, inputs, recipe, record, progress):
        return classifier_embeddings(folds, inputs)

    def fingerprints(self, inputs: FeatureSet):
        return leakcheck.Fingerprints.of_vectors(
            inputs.table["patient_id"], inputs.table["patient_id"], inputs.matrix.to_numpy(dtype=float)
        )

    def training_fingerprints(self, folder, recipe, record, progress):
        if (folder / FINGERPRINTS).is_file():
            return leakcheck.Fingerprints.load(folder / FINGERPRINTS)
        if not (folder / FEATURES).is_file():
            return None
        features = csvfiles.read(folder / FEATURES)
        columns = [c for c in features.columns if c not in ("patient_id", "label")]
        features = csvfiles.numbers(features, columns, folder / FEATURES)
        return leakcheck.Fingerprints.of_vectors(
            features["patient_id"], features["patient_id"], features[columns].to_numpy(dtype=float)
        )

    def export_folds(self, run, package, recipe, record, torchscript=False) -> dict:
        for fold, path in self.fold_files(run):
            PortableClassifier.load(path).save(package.fold(fold) / CLASSIFIER)
        return {"torchscript_max_difference": {}}

    def input_words(self, recipe, record) -> dict:
        channels = _channels(record)
        count = (record.radiomics or {}).get("features_per_patient")
        return {
            "network": f"A {recipe.classifier.model} classifier on {count} PyRadiomics features",
            "channels": channels,
            "shape": None,
            "format": "radiomics features",
            "value": f"features computed inside the tumour mask ({CONFIG} features), standardised by the model",
            "input": f"PyRadiomics features inside the tumour mask of {', '.join(channels)} (a mask is "
            "needed with every study); the settings are the recipe's `data` and `features` sections",
            "files": f"fold<k>/{CLASSIFIER} (the fitted classifier as plain arrays, read with `allow_pickle=False`)",
        }


def _channels(record) -> list[str]:
    """The channels the run was trained on (run.json "radiomics")."""
    found = (record.radiomics or {}).get("channels")
    if not found:
        raise InputError(None, f"run {record.recipe}: its {INFO} names no radiomics channels")
    return list(found)
