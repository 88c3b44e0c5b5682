"""The documentation: the site builds with --strict, a broken link or a page left out of the nav fails that build,
every figure a page shows is in the site, and every relative link of README.md leads to a file of the repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
# [text](target) and ![alt](target), with an optional "title"; HTML's src= and href= too
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
FENCE = re.compile(r"^(```|~~~)")


def needs_mkdocs():
    for module in ("mkdocs", "material"):
        if not _importable(module):
            pytest.skip(f"{module} is not installed (pip install -e '.[docs]'; make test installs it)")


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def build(project: Path, site: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` of the project folder holding mkdocs.yml, into `site`."""
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)


def relative_links(markdown: str) -> list[str]:
    """The relative link targets of a Markdown text outside its code blocks and code spans (no URL, no bare anchor)."""
    targets, in_fence = [], False
    for line in markdown.splitlines():
        if FENCE.match(line.strip()):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        line = re.sub(r"`[^`]*`", "", line)
        for target in MARKDOWN_LINK.findall(line) + HTML_LINK.findall(line):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("#", "//")):
                continue
            targets.append(target)
    return targets


def unresolved(markdown: str, base: Path) -> list[str]:
    """The relative links of a Markdown file at `base` whose file (the part before any #anchor) does not exist."""
    missing = []
    for target in relative_links(markdown):
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if not (base / path).exists():
            missing.append(target)
    return missing


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> Path:
    """mkdocs.yml and docs/ copied, so that a test can break them."""
    folder = tmp_path_factory.mktemp("docs-project")
    shutil.copy(REPO / "mkdocs.yml", folder / "mkdocs.yml")
    shutil.copytree(REPO / "docs", folder / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_the_site_builds_strictly_with_every_page_and_figure(tmp_path):
    needs_mkdocs()
    site = tmp_path / "site"
    built = build(REPO, site)
    assert built.returncode == 0, built.stdout + built.stderr
    pages = sorted(p.relative_to(REPO / "docs") for p in (REPO / "docs").glob("*.md"))
    assert Path("references.md") in pages and Path("index.md") in pages
    for page in pages:
        html = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert html.is_file(), f"{page} was not built"
    # every figure a page refers to is shown: its <img> leads to a file of the site
    shown = set()
    for html in site.rglob("*.html"):
        for source in re.findall(r'<img[^>]*\bsrc="([^"]+)"', html.read_text(encoding="utf-8")):
            if source.startswith(("http:", "https:", "data:")):
                continue
            assert (html.parent / unquote(source)).resolve().is_file(), f"{html}: {source} is not in the site"
            shown.add(Path(unquote(source)).name)
    used = {Path(t).name for p in pages for t in relative_links((REPO / "docs" / p).read_text()) if t.endswith(".png")}
    assert used and used <= shown
    # the figure scripts stay out of the site
    assert not list(site.rglob("make_*.py"))
    # the README's links to a section of a page find it: the site's anchors are GitHub's (mkdocs.yml's slugify)
    for target in relative_links((REPO / "README.md").read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        if anchor and path.startswith("docs/") and path.endswith(".md"):
            stem = Path(path).stem
            html = site / ("index.html" if stem == "index" else f"{stem}/index.html")
            assert f'id="{anchor}"' in html.read_text(encoding="utf-8"), f"README.md: {target} has no such section"


@pytest.mark.parametrize(
    "mistake",
    [
        "link to a missing page",
        "link to a missing figure",
        "missing anchor",
        "page left out of the nav",
        "nav entry without its page",
        "both",
    ],
)
def test_a_broken_link_or_a_page_left_out_of_the_nav_fails_the_build(mistake, project_copy, tmp_path):
    needs_mkdocs()
    project = tmp_path / "project"
    shutil.copytree(project_copy, project)
    page = project / "docs" / "python.md"
    if mistake in ("link to a missing page", "both"):
        page.write_text(page.read_text() + "\nSee [the missing page](no-such-page.md).\n")
    if mistake == "link to a missing figure":
        page.write_text(page.read_text() + "\n![a figure](no-such-figure.png)\n")
    if mistake == "missing anchor":
        page.write_text(page.read_text() + "\nSee [a section](cli.md#no-such-section).\n")
    if mistake in ("page left out of the nav", "both"):
        (project / "docs" / "orphan.md").write_text("# A page no menu leads to\n")
    if mistake == "nav entry without its page":
        config = project / "mkdocs.yml"
        assert config.read_text().rstrip().endswith("references.md"), "the nav is no longer mkdocs.yml's last key"
        config.write_text(config.read_text().rstrip() + "\n  - Gone: no-such-page.md\n")
    built = build(project, tmp_path / "site")
    output = built.stdout + built.stderr
    assert built.returncode != 0, f"the build passed with a {mistake}:\n{output}"
    if mistake in ("link to a missing page", "nav entry without its page", "both"):
        assert "no-such-page.md" in output
    if mistake == "link to a missing figure":
        assert "no-such-figure.png" in output
    if mistake == "missing anchor":
        assert "no-such-section" in output
    if mistake in ("page left out of the nav", "both"):
        assert "orphan.md" in output and "nav" in output


def test_every_relative_link_of_the_readme_leads_to_a_file_of_the_repository():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    links = relative_links(readme)
    assert any(link.startswith("docs/") for link in links), "the README links to no page of the docs"
    assert unresolved(readme, REPO) == []


def test_the_readme_links_to_every_page_of_the_site():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    linked = {Path(unquote(t.split("#", 1)[0])) for t in relative_links(readme)}
    pages = {p.relative_to(REPO) for p in (REPO / "docs").glob("*.md")}
    assert pages - linked == set()


@pytest.mark.parametrize(
    "text, missing",
    [
        ("[ok](README.md) and [gone](docs/gone.md)", ["docs/gone.md"]),
        ("![figure](docs/no-such.png)", ["docs/no-such.png"]),
        ("[section](docs/nowhere.md#a-section)", ["docs/nowhere.md#a-section"]),
        ('<img src="docs/absent.png" alt="x">', ["docs/absent.png"]),
        ("[web](https://example.org/x.md) [anchor](#here) `[code](no.md)`", []),
        ("```\n[in a code block](no.md)\n```\n[after it](LICENSE)", []),
        ('[titled](docs/missing.md "a title")', ["docs/missing.md"]),
    ],
)
def test_the_readme_link_check_finds_what_does_not_resolve(text, missing):
    assert unresolved(text, REPO) == missing


def test_every_import_the_python_page_lists_exists():
    """docs/python.md's table names real objects: each dotted name imports (and a name listed beside it, e.g.
    `check_splits` after `glioscope.split.make_splits`, is found in the same module)."""
    import importlib

    table = (REPO / "docs" / "python.md").read_text(encoding="utf-8").split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `glioscope")]
    assert len(rows) >= 8
    for cell in rows:
        names = re.findall(r"`([\w.]+)`", cell)
        module_name, _, first = names[0].rpartition(".")
        try:
            module = importlib.import_module(names[0])  # a module listed by itself
            continue
        except ModuleNotFoundError:
            module = importlib.import_module(module_name)
        for name in [first, *names[1:]]:
            assert hasattr(module, name), f"{module_name}.{name}"
