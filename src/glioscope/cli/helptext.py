"""How every verb's --help shows its options: each option's help followed by its default, where it has one."""

from __future__ import annotations

import argparse
from pathlib import PurePath


def default_text(default) -> str | None:
    """An option's default as its help shows it; None where there is nothing to show (no value, off, empty)."""
    if default is None or default is False or default is argparse.SUPPRESS:
        return None
    if isinstance(default, (list, tuple)):
        return " ".join(default_text(item) or "" for item in default) or None
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, PurePath):
        return str(default)
    return str(default)


class DefaultsFormatter(argparse.HelpFormatter):
    """argparse's formatter with "(default: X)" after an option's help, unless the help says its default itself
    (in words, where the value alone would not say what happens: "default: the recipe's cv.folds")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        shown = default_text(action.default)
        if shown is None or "default" in help_text or action.help is argparse.SUPPRESS:
            return help_text
        return f"{help_text} (default: {shown.replace('%', '%%')})".lstrip()


class Parser(argparse.ArgumentParser):
    """The command's parser: its verbs' parsers are of this class too (argparse makes subparsers of the class of
    their parent), so that every one of them shows defaults the same way."""

    def __init__(self, *args, formatter_class=DefaultsFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)
