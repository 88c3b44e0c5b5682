"""The `glioscope` command: thin wiring from arguments to the stages, one module per group of verbs."""

from __future__ import annotations

import argparse
import sys

from glioscope import __version__, weights_cli
from glioscope.cli import apply, auto, data, runs, share
from glioscope.cli import curve, recipes
from glioscope.cli.helptext import Parser
from glioscope.errors import GlioscopeError
from glioscope.pretrain import command as pretrain_command
from glioscope.util.terminal import escaped_stdout, printable


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="glioscope",
        description="Deep-learning classification of brain tumours in MRI, evaluated by patient.",
    )
    parser.add_argument("--version", action="version", version=f"glioscope {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    data.add_parsers(verbs)  # synth, ingest, split
    runs.add_parsers(verbs)  # cv, train, evaluate, compare, fuse
    apply.add_parsers(verbs)  # predict, test, leakcheck
    pretrain_command.add_parser(verbs)  # pretrain
    weights_cli.add_parser(verbs)  # weights [fetch NAME]
    share.add_parsers(verbs)  # export, serve, demo
    auto.add_parser(verbs)  # auto
    curve.add_parser(verbs)  # curve
    recipes.add_parser(verbs)  # recipes [show NAME]
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with escaped_stdout():  # ids and file names are data: their control characters are shown, not obeyed
            args.run(args)
    except GlioscopeError as exc:
        print(printable(f"glioscope {args.verb}: error: {exc}"), file=sys.stderr)
        return 2
    except OSError as exc:  # the machine's, not the input's: a full disk, a folder without write permission
        where = f"{exc.filename}: " if exc.filename else ""
        print(printable(f"glioscope {args.verb}: error: {where}{exc.strerror or exc}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"glioscope {args.verb}: interrupted", file=sys.stderr)
        return 130
    return 0
