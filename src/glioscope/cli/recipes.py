"""`glioscope recipes`: the shipped recipes and the data each expects; `recipes show NAME`: a recipe resolved."""

from __future__ import annotations


def add_parser(verbs) -> None:
    parser = verbs.add_parser(
        "recipes",
        help="list the shipped recipes and the data each expects; `recipes show NAME`: its resolved settings",
        description="List every recipe shipped with glioscope: its kind, what it reads (2D slices, 3D volumes, "
        "features in a tumour mask), the cohort rows and sequences it selects, whether it needs tumour masks, and "
        "its description. `glioscope recipes show NAME` prints one recipe's resolved settings.",
    )
    parser.set_defaults(run=_list)
    actions = parser.add_subparsers(dest="recipes_action", metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="print a recipe's resolved settings as YAML: the config a run of it records",
        description="Print a recipe with its bases merged, its quick block applied if asked, then every --set, "
        "as YAML: the config that `glioscope cv NAME` with the same --set and --quick records in its run folder.",
    )
    show.add_argument("name", metavar="NAME", help="a recipe name (see `glioscope recipes`) or YAML file")
    show.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe setting, e.g. classifier.C=[1] (repeatable)",
    )
    show.add_argument("--quick", action="store_true", help="the recipe's short schedule, for a CPU")
    show.set_defaults(run=_show)


def table_lines(rows) -> list[str]:
    """The catalogue as aligned columns, the header first; the description, last, is not padded."""
    from dataclasses import astuple

    from glioscope.methods.catalogue import HEADER

    table = [astuple(row) for row in [HEADER, *rows]]
    widths = [max(len(row[k]) for row in table) for k in range(len(HEADER.__dataclass_fields__) - 1)]
    return ["  ".join([*(v.ljust(w) for v, w in zip(row, widths)), row[-1]]).rstrip() for row in table]


def _list(args) -> None:
    from glioscope.methods.catalogue import catalogue

    for line in table_lines(catalogue()):
        print(line)
    print("\n`glioscope recipes show NAME` prints a recipe's settings; `--set KEY=VALUE` changes one in any verb.")


def _show(args) -> None:
    from glioscope.methods import load_recipe

    _, recipe = load_recipe(args.name, args.overrides, quick=args.quick)  # a bad key or value: refused, as cv does
    print(recipe.dump(), end="")
