"""A run's title and one-line description, built from its resolved recipe (config.yaml), for every page that shows it.

A recipe's `description` and `task.name` are words written for the recipe as shipped: "ResNet18, 224 px ...",
"glioma grade II / III / IV". `--set` (or `--quick`) can change what they describe: the network, the classes, the
image size or volume shape, the input sequence. So the title always says what the run's own settings are, and the
description is the recipe's only when none of the settings it describes changed (config.yaml's `changed`, written
by glioscope.recipe.apply_settings); otherwise it says which did. Every reader passes config.yaml's mapping:

    label = run_label(folder.config(), class_names)
    label.title        # "smallcnn, 64 px slices: II / IV (alexnet recipe, with --set changes)"
    label.description  # "smallcnn from scratch, 64 px slices, classes II / IV (the alexnet recipe with --set ...)"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The settings a recipe's description (or task name) may describe: a change to any of these (or to a setting below
# one) makes its words the recipe's, not the run's.
DESCRIBED = (
    "model.name",
    "model.backbone",
    "model.members",
    "model.weights",
    "task.classes",
    "task.label",
    "data.kind",
    "data.select.plane",
    "data.select.sequence",
    "data.channels",
    "data.slices.size",
    "data.slices.selection",
    "data.slices.channels",
    "data.slices.context",
    "data.volumes.shape",
    "data.volumes.channels",
    "backbone.name",
    "backbone.weights",
    "backbone.taps",
    "classifier.model",
    "classifier.trees",
    "members",
    "combiner",
)
# What task.name describes: the classes and the column they are read from.
TASK_SETTINGS = ("task.classes", "task.label")


@dataclass(frozen=True)
class RunLabel:
    """title: network, input and task, and the recipe; description: one line; task: what is predicted, in words;
    changed: the described settings that --quick or --set changed (None: not recorded, a run of an earlier version)."""

    title: str
    description: str
    task: str
    recipe: str
    changed: tuple[str, ...] | None


def _get(config: Mapping, dotted: str):
    node = config
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _described(key: str, settings: Sequence[str] = DESCRIBED) -> bool:
    return any(key == s or key.startswith(s + ".") for s in settings)


def _unused(config: Mapping, key: str) -> bool:
    """A setting the run's classifier does not read (a forest's trees under logistic regression)."""
    return key == "classifier.trees" and _get(config, "classifier.model") not in (None, "forest")


def _words(value) -> str:
    if isinstance(value, (list, tuple)):
        return " + ".join(str(v) for v in value)
    return str(value)


def _weights(weights) -> str:
    if weights in (None, "", "none", "scratch"):
        return "from scratch"
    named = {"imagenet": "ImageNet", "kinetics": "Kinetics"}
    return f"from {named[weights]} weights" if weights in named else "from a weights file"


def network_words(config: Mapping) -> str:
    """The model in words: the network a deep recipe trains, or what a radiomics, deep-feature or ensemble one fits."""
    model = _get(config, "model.name")
    if model == "sdl":
        backbone = _get(config, "model.backbone") or "alexnet"
        return f"SDL ({_get(config, 'model.members') or 2} × {backbone})"
    if model:
        return str(model)
    if _get(config, "backbone.name"):
        return f"frozen {_get(config, 'backbone.name')} features, {_get(config, 'classifier.model') or 'classifier'}"
    if _get(config, "kind") == "ensemble" or "members" in config:
        members = [m.get("name") or m.get("recipe") for m in config.get("members") or [] if isinstance(m, Mapping)]
        return f"ensemble ({', '.join(map(str, members)) or 'no members'}, {config.get('combiner') or 'combined'})"
    if _get(config, "kind") == "radiomics" or "features" in config:
        return f"radiomics, {_get(config, 'classifier.model') or 'classifier'}"
    return str(config.get("name") or "model")


def input_words(config: Mapping) -> str:
    """What the model reads: '64 px slices of sagittal T1', '96×112×96 volumes of T1c', 'features in the tumour mask'."""
    select = _get(config, "data.select") or {}
    source = " ".join(_words(select[k]) for k in ("plane", "sequence") if isinstance(select, Mapping) and k in select)
    if _get(config, "data.kind") == "volumes":
        shape = _get(config, "data.volumes.shape") or []
        channels = _get(config, "data.volumes.channels")
        return f"{'×'.join(map(str, shape))} volumes" + (f" of {_words(channels)}" if channels else "")
    size = _get(config, "data.slices.size")
    if size is not None:
        selection = _get(config, "data.slices.selection")
        kind = f"{selection} slices" if selection in ("middle", "representative", "tumour") else "slices"
        channels = _get(config, "data.slices.channels")
        of = source or (_words(channels) if isinstance(channels, (list, tuple)) else "")
        context = _get(config, "data.slices.context") or 0
        return f"{size} px {kind}" + (f" of {of}" if of else "") + (f", 2.5D (±{context})" if context else "")
    if "features" in config or _get(config, "kind") == "radiomics":
        channels = _get(config, "data.channels")
        return "features in the tumour mask" + (
            f" of {_words(channels)}" if channels else (f" of {source}" if source else "")
        )
    return f"rows of {source}" if source else ""


def class_words(config: Mapping, class_names: Sequence[str] | None = None) -> str:
    """The classes, 'II / IV', as the run has them (else the recipe's task.classes)."""
    classes = list(class_names or _get(config, "task.classes") or [])
    return " / ".join(map(str, classes))


def run_label(config: Mapping, class_names: Sequence[str] | None = None) -> RunLabel:
    """The title, one-line description and task words of a run with resolved recipe `config` (config.yaml's mapping)
    and classes `class_names` (run.json's; None: the recipe's task.classes)."""
    config = config or {}
    recipe = str(config.get("name") or "run")
    changed = tuple(config["changed"] or ()) if "changed" in config else None
    described = tuple(k for k in changed or () if _described(k) and not _unused(config, k))
    classes = class_words(config, class_names)
    label_column = _get(config, "task.label")
    task_name = _get(config, "task.name")
    task_stale = not task_name or (
        any(_described(k, TASK_SETTINGS) for k in changed or ()) and "task.name" not in (changed or ())
    )
    task = str(task_name) if not task_stale else (classes or str(label_column or "label"))
    if task_stale and classes and label_column and label_column != "label":
        task = f"{label_column}: {classes}"
    network, inputs = network_words(config), input_words(config)
    what = ", ".join(w for w in (network, inputs) if w)
    model = _get(config, "model") or {}
    how = f" {_weights(model['weights'])}" if isinstance(model, Mapping) and "weights" in model else ""
    settings = f"{network}{how}" + (f", {inputs}" if inputs else "") + (f", classes {classes}" if classes else "")
    source = "--quick/--set" if config.get("quick") else "--set"
    own = str(config.get("description") or "").strip()
    title = f"{what}: {task} ({recipe} recipe)"
    if described:
        title = f"{what}: {task} ({recipe} recipe, with {source} changes)"
    if own and "description" in (changed or ()):  # the user's own words, given with --set
        description = f"{own} (given with --set; the settings: {settings})"
    elif described:
        description = (
            f"{settings} (the {recipe} recipe with {source} changes to {', '.join(described)}: "
            "its own description does not describe this run)"
        )
    elif not own:
        description = f"{settings} (the {recipe} recipe)"
    elif changed is None:  # an earlier version's config.yaml: whether --set changed anything was not recorded
        description = f"{own} (the {recipe} recipe's description, as written; the settings: {settings})"
    elif not changed:
        description = f"{own} (the {recipe} recipe's description)"
    else:
        description = f"{own} (the {recipe} recipe's description: {source} changed nothing it describes)"
    return RunLabel(title, description, task, recipe, described if changed is not None else None)
