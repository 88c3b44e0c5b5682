"""The package's shape: dependencies run one way, modules stay short, run folders are read through rundir."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "glioscope"
MAX_LINES = 400


def imports(path: Path) -> set[str]:
    """Every glioscope module a file imports, at any depth (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("glioscope"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("glioscope"))
    return found


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("package, forbidden", [
    ("evaluate", ("glioscope.report", "glioscope.workflows", "glioscope.runner")),
    ("util", ("glioscope.cohort", "glioscope.io")),
    ("models", ("glioscope.train", "glioscope.runner", "glioscope.recipe")),
    ("samples", ("glioscope.runner", "glioscope.train", "glioscope.recipe")),
])
def test_dependencies_run_one_way(package, forbidden):
    for path in modules(package):
        bad = sorted(m for m in imports(path) if m.startswith(forbidden))
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def file_imports(path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that a file imports; `from package import module` is the module, not the package."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                         for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found & known


@pytest.mark.parametrize("package", ["models", "synth"])
def test_no_two_files_of_a_package_import_each_other(package):
    files = {module_name(path): path for path in modules(package)}
    graph = {name: file_imports(path, set(files)) - {name} for name, path in files.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        for following in sorted(graph[name]):
            assert following not in trail, "import cycle: " + " -> ".join(trail[trail.index(following):] + [following])
            if following not in done:
                visit(following, trail + [following])
        done.add(name)

    for name in sorted(files):
        visit(name, [name])


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long


def test_run_folder_metadata_is_read_and_written_in_rundir_only():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "rundir.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert '"run.json"' not in text and "'run.json'" not in text, path.relative_to(PACKAGE)
