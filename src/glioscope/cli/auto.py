"""`glioscope auto`: the cohort's fingerprint, a plan, every candidate on one set of folds, a nested choice, a model."""

from __future__ import annotations

import re
from pathlib import Path

from glioscope.errors import GlioscopeError


def duration(text: str) -> float:
    """Seconds of a budget such as 90m, 1.5h, 45s or 600 (seconds); `none`: no budget (inf)."""
    if str(text).strip().lower() == "none":
        return float("inf")
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not found or float(found.group(1)) <= 0:
        raise GlioscopeError(f"--budget {text!r}: expected a positive duration such as 60m, 1.5h or 900s")
    return float(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[found.group(2)]


def add_parser(verbs) -> None:
    parser = verbs.add_parser(
        "auto",
        help="choose and train the best honest model for a cohort in a time budget (nested CV)",
        description="Fingerprint the cohort, plan the candidate recipes that fit it (timed by a trial of each), run "
        "them on one set of patient-level folds with inner folds inside each, choose per outer fold on the inner "
        "predictions only, and export the final model as a package.",
    )
    parser.add_argument("cohort", type=Path, metavar="COHORT", help="cohort folder from `glioscope ingest`")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (continued with --resume)")
    parser.add_argument(
        "--budget",
        default=None,
        metavar="TIME",
        help="wall-time budget, trials included: 60m, 1.5h, 900s; none: every candidate runs, whatever the "
        "trials measure (default: 60m, or the plan's)",
    )
    parser.add_argument(
        "--task", default=None, help="the cohort column to learn: label, grade, mgmt (default: label, or the plan's)"
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default=None,
        help="where deep candidates train; CPU takes each recipe's quick schedule "
        "(default: cuda when available, else cpu)",
    )
    parser.add_argument(
        "--dims",
        choices=("2d", "3d"),
        default=None,
        help="use only the 2D images or only the 3D volumes of a cohort that has both (default: none)",
    )
    parser.add_argument("--folds", type=int, default=None, help="outer patient-level folds (default: 3, or the plan's)")
    parser.add_argument(
        "--inner-folds", type=int, default=None, help="inner folds in each outer fold (default: 3, or the plan's)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the folds (default: 0, or the plan's)")
    parser.add_argument(
        "--plan-only",
        action="store_true",
        help="fingerprint, plan and trials only: print the plan (OUT/plan.yaml) and stop",
    )
    parser.add_argument(
        "--plan",
        type=Path,
        default=None,
        metavar="FILE",
        help="run this plan (e.g. OUT/plan.yaml, edited) instead of proposing one",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue OUT (after a kill or --plan-only), reusing every finished training",
    )
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of patients (default: 1000)")
    parser.set_defaults(run=_auto)


def _auto(args) -> None:
    from glioscope.auto import auto
    from glioscope.auto.execute import Layout

    budget = duration(args.budget) if args.budget is not None else None
    out = auto(
        args.cohort,
        args.out,
        budget_s=budget,
        task=args.task,
        device=args.device,
        dims=args.dims,
        folds=args.folds,
        inner_folds=args.inner_folds,
        seed=args.seed,
        plan_only=args.plan_only,
        plan_file=args.plan,
        resume=args.resume,
        n_boot=args.bootstrap,
    )
    if not args.plan_only:
        print(f"Report: {Layout(out).report}")
        print(f"Model package: {Layout(out).model}")
