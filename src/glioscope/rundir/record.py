"""run.json: what a run folder says of itself, one typed record built by every producer.

The common keys say what was predicted and how it was split; one block per producer says
the rest:

    training    a deep recipe's folds: the precision each was trained in, the pretrained weights
    radiomics   a radiomics recipe: PyRadiomics' version and settings, channels, what each fold's inner CV chose
    deepfeatures  a deep-feature recipe: the frozen backbone, the slices and features, what each fold's inner CV chose
    fusion      a late fusion of runs: its inputs, methods, combiners
    ensemble    an ensemble recipe: its members (run folders under members/), its combiner, what each fold's was fit on
    external    an external test: the run applied, the cohort, the leak checks, the operating point
    package     a model package (or an ensemble member in one): where it was exported from, its checks, the
                operating point it carries
    final       a final model on every patient (`train --all --from-cv RUN`): the CV it takes its figures from,
                the epochs it chose, and the statement that it has no held-out figure of its own

A run folder written by an earlier version (precision and weights at the top, a fused run's
inputs at the top, a package's operating point at the top) reads into the same record.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field, fields, replace

import pandas as pd

from glioscope import __version__, references
from glioscope.rundir.labels import run_label

BLOCKS = ("training", "radiomics", "deepfeatures", "fusion", "ensemble", "external", "package", "final")


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


@dataclass
class RunRecord:
    """run.json (see the module docstring); `models` lists the reported models, the headline last."""

    recipe: str
    class_names: list[str]
    models: list[str]
    task: str | None = None  # what is predicted, in words true of the run (glioscope.rundir.labels)
    label: str | None = None
    folds: list[int] = field(default_factory=list)
    leaky: bool = False
    split_statement: str = ""
    paper_tables: list[str] | None = None
    caveat: str | None = None
    patient_ids: bool = True
    notes: list[str] = field(default_factory=list)
    samples: dict = field(default_factory=dict)  # kind (slices | volumes | radiomics | patients), count, settings
    cohort: str = ""
    run_name: str | None = None  # the name comparisons show (default: the recipe)
    title: str | None = None  # the run's title and one-line description when trained (glioscope.rundir.labels)
    description: str | None = None
    created: str = field(default_factory=_now)
    glioscope_version: str = __version__
    training: dict | None = None
    radiomics: dict | None = None
    deepfeatures: dict | None = None
    fusion: dict | None = None
    ensemble: dict | None = None
    external: dict | None = None
    package: dict | None = None
    final: dict | None = None

    @classmethod
    def of_recipe(
        cls,
        recipe,
        class_names: list[str],
        models: list[str],
        splits: pd.DataFrame | None = None,
        split_meta: dict | None = None,
        **rest,
    ) -> RunRecord:
        """The record of a run of `recipe` on `splits` (a split table and its split.json); `rest`: other fields."""
        words = run_label(recipe.to_dict(), class_names)
        made = cls(
            recipe=recipe.name,
            class_names=list(class_names),
            models=list(models),
            task=words.task,
            title=words.title,
            description=words.description,
            label=recipe.task.label,
            paper_tables=list(recipe.evaluate.tables),
            caveat=recipe.task.caveat,
            **rest,
        )
        return made.with_split(splits, split_meta) if splits is not None else made

    def with_split(self, splits: pd.DataFrame, split_meta: dict | None) -> RunRecord:
        """The record with the folds, leakiness and statement of a split table and its split.json."""
        meta = split_meta or {}
        folds = sorted(int(k) for k in splits.loc[splits["partition"] == "cv", "fold"].unique())
        return replace(
            self, folds=folds, leaky=bool(meta.get("leaky", False)), split_statement=meta.get("statement", "")
        )

    def derived(self, **changes) -> RunRecord:
        """A new record from this one (an external test's, a package's): created now, by this version."""
        return replace(self, created=_now(), glioscope_version=__version__, **changes)

    def packaged(self, package: dict, notes: list[str] = ()) -> RunRecord:
        """The record of this run in a model package (an ensemble member's too): no cohort path, the training block
        reduced to each fold's precision, a final model's block without its CV's path, `notes` added, and the package
        block (`package` and this version)."""
        return self.derived(
            notes=list(self.notes) + list(notes),
            cohort="",
            training={"precision": self.precision} if self.training is not None else None,
            final={k: v for k, v in self.final.items() if k != "cv_path"} if self.final else None,
            package={**package, "glioscope_version": __version__},
        )

    @property
    def headline(self) -> str | None:
        """The model a run reports first: the last one listed (an external test: its own headline)."""
        if self.external and self.external.get("headline"):
            return self.external["headline"]
        return self.models[-1] if self.models else None

    @property
    def kind(self) -> str:
        """What the folder is: "package", "external test", "fused" or "run"."""
        if self.package is not None:
            return "package"
        if self.external is not None:
            return "external test"
        return "fused" if self.fusion is not None else "run"

    @property
    def precision(self) -> dict:
        """How each fold's model was trained (dtype, channels_last, chosen_by); {} when not a deep run."""
        return dict((self.training or {}).get("precision") or {})

    @property
    def operating_point(self) -> dict | None:
        """The binary operating point an external test used or a package carries."""
        return ((self.external or self.package) or {}).get("operating_point")

    def to_json(self) -> dict:
        """run.json's mapping: every common key, and the blocks this record has."""
        data = asdict(self)
        for key in ("run_name", "title", "description"):
            if data[key] is None:
                del data[key]
        return {k: v for k, v in data.items() if k not in BLOCKS or v is not None}

    @classmethod
    def from_json(cls, data: dict, default_recipe: str = "run") -> RunRecord:
        """The record of a run.json mapping, of this version or an earlier one (see the module docstring)."""
        data = dict(data)
        if "training" not in data and ("precision" in data or "weights" in data):
            data["training"] = {"precision": data.pop("precision", {}) or {}, "weights": data.pop("weights", None)}
        if "inputs" in data:
            data["fusion"] = {**(data.get("fusion") or {}), "inputs": data.pop("inputs")}
        if "operating_point" in data and "package" in data:
            data["package"] = {**data["package"], "operating_point": data.pop("operating_point")}
        data["paper_tables"] = references.tables_of(data)  # seed_tables, as written before the papers were named
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("recipe", default_recipe)
        values.setdefault("class_names", [])
        values.setdefault("models", [])
        for key in ("folds", "notes"):
            values[key] = list(values.get(key) or [])
        values["samples"] = dict(values.get("samples") or {})
        return cls(**values)
