"""Every option of every verb of the real command line has help text that shows its default."""

from __future__ import annotations

import argparse

import pytest

from glioscope.cli import build_parser
from glioscope.cli.helptext import default_text


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(verb path, parser) of the command and of every verb and sub-verb under it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


PARSERS = list(_parsers(build_parser()))
OPTIONS = [
    pytest.param(parser, action, id=" ".join(("glioscope", *path, action.dest)))
    for path, parser in PARSERS
    for action in parser._actions
    if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
]


def _squeezed(text: str) -> str:
    """Text without whitespace: the wrapped help's line breaks (and hyphen breaks) do not matter."""
    return "".join(text.split())


def test_every_verb_is_walked():
    verbs = {path[0] for path, _ in PARSERS if path}
    assert {"synth", "split", "cv", "demo", "serve", "pretrain", "weights", "recipes"} <= verbs
    assert ("weights", "fetch") in {path for path, _ in PARSERS} and ("recipes", "show") in {p for p, _ in PARSERS}
    assert len(OPTIONS) > 150


@pytest.mark.parametrize(("parser", "action"), OPTIONS)
def test_option_has_help_showing_its_default(parser, action):
    assert action.help and action.help.strip(), f"{action.option_strings or action.dest} has no help text"
    formatter = parser._get_formatter()
    expanded = formatter._expand_help(action)
    assert _squeezed(expanded) in _squeezed(parser.format_help())  # the help as --help prints it
    shown = default_text(action.default)
    if shown is not None:
        assert "default" in expanded and _squeezed(shown) in _squeezed(expanded), (action.dest, expanded)


@pytest.mark.parametrize("default", [None, False, [], argparse.SUPPRESS])
def test_nothing_is_shown_for_no_default(default):
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["split"]
    action = sub.add_argument("--probe", default=default, help="a probe")
    assert sub._get_formatter()._expand_help(action) == "a probe"


@pytest.mark.parametrize(
    ("default", "shown"),
    [(5, "5"), (0.0, "0"), ("demo", "demo"), ([0.25, 1.0], "0.25 1"), ("100%", "100%")],
)
def test_a_default_is_shown_once(default, shown):
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["split"]
    action = sub.add_argument("--probe", default=default, help="a probe")
    assert sub._get_formatter()._expand_help(action) == f"a probe (default: {shown})"
    said = sub.add_argument("--said", default=default, help="a probe (default: what the recipe says)")
    assert sub._get_formatter()._expand_help(said) == "a probe (default: what the recipe says)"


def test_top_level_help_describes_the_demo_truly():
    text = " ".join(build_parser().format_help().split())
    for step in ("synthesise", "ingest", "split", "SDL", "AlexNet", "radiomics", "compare", "report"):
        assert step in text
    assert "recipes" in text


def test_synth_help_states_the_phantoms_own_defaults():
    from glioscope.synth.presets import DEFAULT_DIFFICULTY, DEFAULT_MGMT_EFFECT, LAYOUTS

    synth = build_parser()._subparsers._group_actions[0].choices["synth"]
    helps = {action.dest: action.help for action in synth._actions}
    assert f"(default: {DEFAULT_DIFFICULTY:g})" in helps["difficulty"]
    assert f"(default: {DEFAULT_MGMT_EFFECT:g})" in helps["mgmt_effect"]
    assert all(layout in helps["layouts"] for layout in LAYOUTS)
