"""The deep-feature method: a frozen network's slice embeddings and a classifier per fold (glioscope.deepfeatures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glioscope import leakcheck
from glioscope.deepfeatures.attended import ranked
from glioscope.deepfeatures.embed import Backbone, embed
from glioscope.deepfeatures.inputs import EmbeddingSet, embedding_set
from glioscope.deepfeatures.mil import AttentionEnsemble
from glioscope.deepfeatures.run import featurise, run_deepfeatures
from glioscope.deepfeatures.settings import DEEPFEATURES
from glioscope.errors import InputError
from glioscope.methods.base import Method
from glioscope.methods.embeddings import classifier_embeddings
from glioscope.models.weights import NAMED_WEIGHTS
from glioscope.radiomics.classifier import probabilities
from glioscope.radiomics.portable import PortableClassifier
from glioscope.rundir import ATTENTION_MODEL, CLASSIFIER, CONFIG, FINGERPRINTS, INFO, RunFolder
from glioscope.samples import samples_of_study


class DeepFeatureMethod(Method):
    recipes = DEEPFEATURES
    seed_setting = "classifier.seed"  # its inner CV writes every training patient's out-of-fold prediction

    def run(
        self, recipe, cohort, out, splits=None, folds=None, resume=False, progress=True, report=True, cache_dir=None
    ) -> Path:
        return run_deepfeatures(
            recipe, cohort, out, splits_path=splits, folds=folds, resume=resume, progress=progress, report=report,
            cache_dir=cache_dir,
        )  # fmt: skip

    def fold_files(self, folder: RunFolder) -> list[tuple[str, Path]]:
        files = sorted(folder.path.glob(f"*/{CLASSIFIER}")) + sorted(folder.path.glob(f"*/{ATTENTION_MODEL}"))
        if not files:
            raise InputError(
                folder.path, f"no fitted classifier ({CLASSIFIER} or {ATTENTION_MODEL}) in any fold folder"
            )
        return sorted((path.parent.name, path) for path in files)

    def inputs(self, recipe, record, frame, cache_dir, progress) -> EmbeddingSet:
        return featurise(frame, recipe, cache_dir, progress)

    def study_inputs(self, recipe, record, study) -> EmbeddingSet:
        samples = samples_of_study(study, recipe.data)
        if len(samples) == 0:
            raise InputError(study.path, f"has no slice the recipe takes ({recipe.data.slices.selection} slices)")
        vectors = embed(
            samples,
            Backbone(recipe.backbone, samples.channels, recipe.data.normalize, recipe.data.slices.context),
            progress=False,
        )
        made = embedding_set(samples, vectors, recipe.pooling, list(study.skipped) + list(samples.skipped))
        return made

    def check_folds(self, folder, recipe, record) -> dict:
        """Each fold model's classes against run.json's."""
        names = list(record.class_names)
        for _, path in self.fold_files(folder):
            model = _load(path)
            classes = (
                set(range(model.classes)) if isinstance(model, AttentionEnsemble) else {int(c) for c in model.classes_}
            )
            if max(classes, default=0) >= len(names):
                raise InputError(
                    folder / INFO,
                    f"names {len(names)} class(es) ({', '.join(names)}), but {path.relative_to(folder.path)} "
                    f"predicts class indices {sorted(classes)}: the class names do not belong to these models",
                )
        return {}

    def load_folds(self, folder, recipe, record, inputs) -> list[tuple[str, object]]:
        return [(fold, _load(path)) for fold, path in self.fold_files(folder)]

    def probabilities(self, folds, inputs: EmbeddingSet, recipe, record, progress) -> dict[str, np.ndarray]:
        """Each fold's probabilities; an attention model's slice attention is kept in `inputs.attention[fold]`."""
        n, out = len(record.class_names), {}
        inputs.attention = {}
        for fold, model in folds:
            if isinstance(model, AttentionEnsemble):
                out[fold], inputs.attention[fold] = model.predict(inputs.bags())
            else:
                out[fold] = probabilities(model, inputs.columns(model.features), n)
        return out

    def explain(self, inputs: EmbeddingSet, per_fold, top: int = 5) -> dict[str, list[dict]] | None:
        """An attention model's slices of each patient, ranked by their attention averaged over the fold models."""
        folds = [weights for weights in (getattr(inputs, "attention", None) or {}).values()]
        if not folds:
            return None
        return {
            str(patient): ranked(inputs, k, np.mean([weights[k] for weights in folds], axis=0), top)
            for k, patient in enumerate(inputs.table["patient_id"])
        }

    def embeddings(self, folds, inputs, recipe, record, progress):
        return classifier_embeddings(folds, inputs)

    def fingerprints(self, inputs: EmbeddingSet):
        return leakcheck.Fingerprints.of(inputs.samples)

    def training_fingerprints(self, folder, recipe, record, progress):
        return leakcheck.Fingerprints.load(folder / FINGERPRINTS) if (folder / FINGERPRINTS).is_file() else None

    def export_folds(self, run, package, recipe, record, torchscript=False) -> dict:
        if str(recipe.backbone.weights).lower() not in NAMED_WEIGHTS + ("none",):
            raise InputError(
                run / CONFIG,
                f"backbone.weights is a file ({recipe.backbone.weights}): a package cannot carry it yet; "
                "export runs whose backbone has named weights (imagenet)",
            )
        for fold, path in self.fold_files(run):
            _load(path).save(package.fold(fold) / path.name)
        return {"torchscript_max_difference": {}}

    def input_words(self, recipe, record) -> dict:
        slices, backbone = recipe.data.slices, recipe.backbone
        block = record.deepfeatures or {}
        model = recipe.classifier.model
        head = "a gated-attention patient-level model" if model == "attention" else f"a {model} classifier"
        return {
            "network": f"{head} on the embeddings of a frozen {backbone.name} ({backbone.weights} weights)",
            "channels": list(slices.channels) if isinstance(slices.channels, tuple) else [slices.channels],
            "shape": [slices.size, slices.size],
            "format": "slice embeddings",
            "value": f"uint8 slices scaled to [0, 1], then the backbone's normalisation; {block.get('width')} values "
            "per slice",
            "input": f"{slices.selection} slices ({slices.size} px) of MR images, embedded by the frozen network; "
            f"the settings are the recipe's `data`, `backbone` and `pooling` sections ({CONFIG})",
            "files": f"fold<k>/{CLASSIFIER} (plain arrays) or fold<k>/{ATTENTION_MODEL} (tensors only)",
        }


def _load(path: Path):
    return AttentionEnsemble.load(path) if path.name == ATTENTION_MODEL else PortableClassifier.load(path)
