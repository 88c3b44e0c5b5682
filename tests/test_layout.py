"""The package's shape: imports run one way between layers, no two files import each other, modules stay short, and
every run-folder file name is written out in one place only."""

from __future__ import annotations

import ast
import itertools
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "glioscope"
MAX_LINES = 400

# Every package (or top-level module) of glioscope, lowest first. A unit imports only units of lower layers: data
# flows from files to cohort tables, samples, models and training, then run folders, evaluation and reports, then
# the methods that run recipes, the trained runs they leave, and what applies them; the command line is last.
LAYERS = [
    {"errors"},
    {"util", "defaults", "references"},
    {"cohort", "split", "synth"},
    {"sites"},
    {"io"},
    {"ingest", "augment", "models", "dicom_sr"},
    {"samples"},
    {"train"},
    {"recipe", "plan"},
    {"rundir"},
    {"leakcheck", "evaluate"},
    {"report", "interpret", "pretrain"},
    {"workflows"},
    {"runner", "radiomics"},
    {"deepfeatures"},
    {"methods"},
    {"trained", "model_card", "repeats", "typicality", "permutation", "final"},
    {"explain"},
    {"predict", "batch", "external", "export"},
    {"serve"},
    {"honesty", "demo", "weights_cli", "auto", "curve"},
    {"cli"},
    {"__main__"},
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path) -> set[str]:
    """The glioscope modules a file imports, at any depth (function-level imports too). `from pkg import x` names the
    module pkg.x when there is one, else pkg (whose __init__ defines x)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {_owner(m) for m in found if m.startswith("glioscope")} - {None, name, "glioscope"}


def _owner(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def unit(module: str) -> str:
    """glioscope.io.formats.dicom -> io; glioscope.cli -> cli."""
    return module.split(".")[1]


FILE_GRAPH = {name: imported(name, path) for name, path in MODULES.items()}
RANK = {u: k for k, layer in enumerate(LAYERS) for u in layer}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles of a graph: its strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], itertools.count()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v):
        index[v] = low[v] = next(counter)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, targets in FILE_GRAPH.items():
        if name == "glioscope":
            continue
        graph.setdefault(unit(name), set()).update(unit(t) for t in targets if unit(t) != unit(name))
    return graph


def test_every_package_has_a_layer():
    units = {unit(name) for name in MODULES if name != "glioscope"}
    assert units - set(RANK) == set(), "add the new package to LAYERS, where its imports put it"
    assert set(RANK) - units == set(), "LAYERS names a package that no longer exists"


def test_no_package_imports_a_package_of_its_own_layer_or_above():
    upward = sorted(
        f"{name} ({unit(name)}, layer {RANK[unit(name)]}) imports {t} ({unit(t)}, layer {RANK[unit(t)]})"
        for name, targets in FILE_GRAPH.items()
        if name != "glioscope"
        for t in targets
        if unit(t) != unit(name) and RANK[unit(t)] >= RANK[unit(name)]
    )
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_packages_or_between_files():
    assert strongly_connected(package_graph()) == []
    assert strongly_connected(FILE_GRAPH) == []


def test_the_cycle_check_finds_a_cycle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_module_is_over_400_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long


def _strings(tree: ast.AST) -> list[str]:
    """Every string constant of a module except docstrings (f-strings' literal parts included)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    ]


def _file_names_of_run_folders() -> dict[str, str]:
    """Every file name a run folder has (glioscope.rundir's names with a suffix), by the module that spells it."""
    import glioscope.rundir as rundir

    names = {value for key, value in vars(rundir).items() if key.isupper() and isinstance(value, str) and "." in value}
    owners = {}
    for name, path in MODULES.items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.Tuple)):
                values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                for value in values:
                    if isinstance(value, ast.Constant) and value.value in names:
                        owners[value.value] = name
    assert set(owners) == names, f"no module assigns {sorted(names - set(owners))}"
    return owners


def test_every_run_folder_file_name_is_spelt_out_once():
    owners = _file_names_of_run_folders()
    assert {"run.json", "config.yaml", "predictions.csv", "metrics.json", "splits.csv", "cohort.csv"} <= set(owners)
    spelt = []
    for name, path in MODULES.items():
        for text in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            spelt += [
                f"{name}: {file!r} in {text!r}" for file, owner in owners.items() if file in text and owner != name
            ]
    assert not spelt, "name these files through glioscope.rundir's constants:\n" + "\n".join(spelt)


@pytest.mark.parametrize(
    "source, expected",
    [
        ('X = "a"\nf"{run}/metrics.json"', ["'metrics.json' in '/metrics.json'"]),
        ('"""Writes metrics.json."""\nX = 1', []),
    ],
)
def test_the_file_name_check_sees_through_f_strings_but_not_docstrings(source, expected):
    found = [
        f"{file!r} in {text!r}" for text in _strings(ast.parse(source)) for file in ("metrics.json",) if file in text
    ]
    assert found == expected
