"""The shipped recipes as one table (`glioscope recipes`): each recipe's kind, the data it expects and its description.

    for entry in catalogue():
        print(entry.name, entry.kind, entry.reads, entry.selects, entry.masks, entry.description)

Every column is read from the resolved recipe (its `data` section, and an ensemble's members), so the table says
what `glioscope cv NAME` would use.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One recipe: what it reads (2D slices, 3D volumes, features in a tumour mask), the rows and sequences it
    selects, whether it needs tumour masks ("yes", "no", or "if given"), and its one-line description."""

    name: str
    kind: str
    reads: str
    selects: str
    masks: str
    description: str


HEADER = Entry("recipe", "kind", "reads", "selects", "masks", "description")


def catalogue(names: list[str] | None = None) -> list[Entry]:
    """The table's rows: every shipped recipe (glioscope.methods.recipe_names), or `names`."""
    from glioscope.methods import load_recipe, recipe_names

    rows = []
    for name in names if names is not None else recipe_names():
        method, recipe = load_recipe(name)
        rows.append(entry(name, method.kind, recipe))
    return rows


def entry(name: str, kind: str, recipe) -> Entry:
    """A resolved recipe's row."""
    description = " ".join(str(recipe.description or "").split())
    if kind == "ensemble":
        members = [_member(spec) for spec in recipe.members]
        masks = "yes" if any(m.masks == "yes" for m in members) else "no"
        reads = "members: " + ", ".join(m.name for m in members)
        selects = " | ".join(dict.fromkeys(m.selects for m in members))  # each member's own, once
        return Entry(name, kind, reads, selects, masks, description)
    data = recipe.data
    rows = _rows(data.select)
    if kind == "radiomics":
        channels = ", ".join(data.channels) if data.channels else "every sequence"
        return Entry(name, kind, "features in the tumour mask", f"{rows}; {channels}", "yes", description)
    if kind == "deep" and data.kind == "volumes":
        volumes = data.volumes
        shape = "x".join(str(n) for n in volumes.shape)
        reads = f"3D volumes {shape} at {volumes.spacing:g} mm"
        return Entry(name, kind, reads, f"{rows}; {', '.join(volumes.channels)}", "no", description)
    slices = data.slices
    reads = f"2D {slices.selection} slices, {slices.size} px"
    if kind == "deepfeatures":
        reads = f"{recipe.backbone.name} features of {slices.selection} slices, {slices.size} px"
    if slices.context:
        reads += f", 2.5D (+-{slices.context})"
    return Entry(name, kind, reads, f"{rows}; {_channels(slices.channels)}", _slice_masks(slices), description)


def _member(spec) -> Entry:
    """An ensemble member's row, under the member's name."""
    from glioscope.methods import load_recipe

    method, recipe = load_recipe(spec.recipe, spec.set, quick=spec.quick)
    return entry(spec.name or recipe.name, method.kind, recipe)


def _rows(select) -> str:
    """data.select in words: "plane sagittal, sequence T1", or "every row"."""
    if not select:
        return "every row"
    return ", ".join(
        f"{key} {'|'.join(value) if isinstance(value, (list, tuple)) else value}" for key, value in select.items()
    )


def _channels(channels) -> str:
    """A slice's channels in words."""
    if isinstance(channels, tuple):
        return "channels " + ", ".join(channels)
    return {"stack3": "grey x3", "single": "grey", "native": "the file's channels"}.get(channels, str(channels))


def _slice_masks(slices) -> str:
    """Whether slices need tumour masks: to choose or crop them ("yes"), to choose one per patient ("if given")."""
    if slices.selection == "tumour" or slices.roi_crop or slices.vote == "tumour_area":
        return "yes"
    return "if given" if slices.selection == "representative" else "no"
