"""The papers: one table (glioscope.references) that the docs, reports and model cards are generated from, and
methods named as the field names them, never by a number."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from glioscope import references
from glioscope.methods import recipe_names
from glioscope.recipe import load_recipe
from glioscope.rundir import RunRecord

ROOT = Path(__file__).resolve().parents[1]
NUMBERED = re.compile(r"\b[Ss]eed[ -]00\d\b")  # "seed 000", "seed-001": how the papers were once called
OLD_TABLES = re.compile(r"\bseed00\d\b")  # evaluate.tables' earlier names


def test_every_method_names_shipped_recipes_and_known_papers():
    shipped = set(recipe_names())
    for method in references.METHODS.values():
        assert set(method.recipes) <= shipped, method.name
        assert all(key in references.REFERENCES for key in method.papers), method.name
    # each recipe reproduces at most one method
    listed = [r for m in references.METHODS.values() for r in m.recipes]
    assert len(listed) == len(set(listed))


@pytest.mark.parametrize("ref", list(references.REFERENCES.values()), ids=lambda r: r.key)
def test_every_reference_has_authors_a_title_and_a_year_or_says_it_has_none(ref):
    assert ref.authors and all(a.strip() for a in ref.authors) and len(ref.title) > 10
    assert ref.text().startswith(ref.authors[0]) and ref.title in ref.text()
    assert (str(ref.year) in ref.text()) if ref.year else ("undated preprint" in ref.text())


def test_a_run_cites_its_method_its_table_layouts_and_its_sections_once_each():
    assert references.for_run("st3d", tables=["spatiospatial"]) == [
        "harkude-spatiospatial",
        "chatterjee-spatiospatial",
        "tran-video-resnets",
    ]
    keys = references.for_run("alexnet-tumour", tables=["seed000"], gradcam=True, permutation=True)
    assert keys == ["chopra-sdl", "selvaraju-gradcam", "ojala-permutation"]
    assert references.for_run("my-own-recipe") == []
    assert references.html_section([]) == ""


def test_the_earlier_table_names_still_read():
    recipe = load_recipe("sdl", ["evaluate.tables=[seed000, seed002]"])
    assert recipe.evaluate.tables == ("sdl", "spatiospatial")
    assert load_recipe("st3d").evaluate.tables == ("spatiospatial",)
    record = RunRecord.from_json({"recipe": "sdl", "seed_tables": ["seed004"]})
    assert record.paper_tables == ["autoaugment"] and "seed_tables" not in record.to_json()


def test_an_unknown_table_name_is_refused():
    from glioscope.errors import GlioscopeError

    with pytest.raises(GlioscopeError, match="tables"):
        load_recipe("sdl", ["evaluate.tables=[seed001]"])


def test_the_docs_references_page_is_the_generated_one():
    page = ROOT / "docs" / "references.md"
    assert page.read_text(encoding="utf-8") == references.page(), "regenerate: python -m glioscope.references"


def test_the_readme_cites_the_papers_from_the_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- references -->\n(.*?)<!-- /references -->", readme, re.S)
    assert block, "README.md has no generated references block"
    assert block.group(1) == references.readme_block()


def test_no_paper_is_named_by_a_number():
    """Docs, recipes, code and tests call the papers by their methods and authors; the earlier evaluate.tables
    names appear in the code only where they are read for old runs (glioscope.references, recipe.py)."""
    paths = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "src").rglob("*.py")]
    paths += [*(ROOT / "src").rglob("*.yaml"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "src").rglob("*.js")]
    paths += [*(ROOT / "benchmarks").rglob("*.py"), *(ROOT / "docs").rglob("*.py")]
    readers = {ROOT / "src/glioscope/references.py", ROOT / "src/glioscope/recipe.py"}
    found = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in paths
        if p != Path(__file__) and p.is_file()
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if NUMBERED.search(line) or (OLD_TABLES.search(line) and p.is_relative_to(ROOT / "src") and p not in readers)
    ]
    assert not found, "\n".join(found[:20])
