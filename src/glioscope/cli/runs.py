"""`glioscope cv`, `train`, `evaluate`, `compare` and `fuse`: any kind of method's recipe run, evaluated, compared, fused."""

from __future__ import annotations

import os
from pathlib import Path

from glioscope.errors import GlioscopeError

SITE_HELP = "the cohort column naming each patient's site, for the per-site metrics (default: found)"


def add_parsers(verbs) -> None:
    """Add this module's verbs to the command's subparsers."""
    for verb, help_text in (
        ("cv", "patient-level cross-validation of a recipe"),
        ("train", "train a recipe on chosen folds"),
    ):
        runner = verbs.add_parser(verb, help=help_text)
        runner.add_argument(
            "recipe",
            metavar="RECIPE",
            help="a recipe name (sdl, sdl-n, r18, axt, alexnet, radiomics, ...) or YAML file",
        )
        runner.add_argument("--cohort", type=Path, required=True, help="cohort folder from `glioscope ingest`")
        runner.add_argument(
            "--splits",
            type=Path,
            default=None,
            help="split folder from `glioscope split` (default: made from the recipe's cv settings)",
        )
        runner.add_argument("--folds", type=int, default=None, help="number of folds (overrides cv.folds)")
        if verb == "train":
            runner.add_argument("--fold", type=int, nargs="+", default=[0], help="which folds to train (default: 0)")
        else:
            runner.add_argument(
                "--seeds",
                type=int,
                nargs="+",
                default=None,
                help="repeat the run once per seed (split and training seed), one run folder each in --out, and "
                "report the spread over repeats",
            )
        runner.add_argument("-o", "--out", type=Path, default=None, help="run folder (default: runs/<recipe>)")
        runner.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a recipe setting, e.g. train.epochs=5",
        )
        runner.add_argument("--quick", action="store_true", help="the recipe's short schedule, for a CPU")
        runner.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
        runner.add_argument("--no-report", action="store_true", help="skip evaluation and the HTML report")
        runner.add_argument("--site-column", default=None, metavar="NAME", help=SITE_HELP)
        runner.set_defaults(run=_train)

    evaluate = verbs.add_parser("evaluate", help="metrics of a run: per patient and per image, folds and bootstrap")
    evaluate.add_argument("run_dir", type=Path, metavar="RUN")
    evaluate.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of patients")
    evaluate.add_argument("--no-report", action="store_true")
    evaluate.add_argument("--site-column", default=None, metavar="NAME", help=SITE_HELP)
    evaluate.set_defaults(run=_evaluate)

    compare = verbs.add_parser("compare", help="one table of several runs on the same folds")
    compare.add_argument("runs", type=Path, nargs="+", metavar="RUN")
    compare.add_argument(
        "-o", "--out", type=Path, default=None, help="HTML file (default: comparison.html beside the first run)"
    )
    compare.set_defaults(run=_compare)

    fuse = verbs.add_parser("fuse", help="late fusion of runs on the same splits, e.g. one run per MRI sequence")
    fuse.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run folders trained on the same splits")
    fuse.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="the fused run folder")
    fuse.add_argument(
        "--methods",
        nargs="+",
        default=["mean", "logistic"],
        choices=("mean", "logistic"),
        help="mean of the patient probabilities; logistic regression fit on each fold's validation patients",
    )
    fuse.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of patients")
    fuse.add_argument("--overwrite", action="store_true")
    fuse.set_defaults(run=_fuse)


def _train(args) -> None:
    from glioscope.rundir import REPORT
    from glioscope.methods import load_recipe

    overrides = list(args.overrides) + ([f"cv.folds={args.folds}"] if args.folds else [])
    method, recipe = load_recipe(args.recipe, overrides, quick=args.quick)  # every value checked before any output
    if args.folds and args.splits:
        raise GlioscopeError("--folds and --splits both say how to split: the splits decide; give one of them")
    if args.folds and recipe.cv.mode != "kfold":  # honoured, never ignored: k folds of every patient
        print(
            f"note: --folds {args.folds}: {args.folds}-fold cross-validation of every patient, instead of the "
            f"recipe's cv.mode {recipe.cv.mode}"
            + (f" (test fraction {recipe.cv.test_fraction:g})" if recipe.cv.test_fraction else "")
        )
        overrides += ["cv.mode=kfold", "cv.test_fraction=0"]
        method, recipe = load_recipe(args.recipe, overrides, quick=args.quick)
    if args.site_column:  # a column the cohort lacks is refused before any training
        from glioscope import cohort, sites

        sites.patient_sites(cohort.load(args.cohort), args.site_column, args.cohort)
    out = args.out or Path("runs") / recipe.name
    if getattr(args, "seeds", None) is not None:
        from glioscope.repeats import run_repeats

        if args.splits:
            raise GlioscopeError(
                "--seeds varies the split with each seed; a fixed --splits folder cannot: give one of them"
            )
        if args.site_column:
            raise GlioscopeError(
                "--site-column is not passed to repeats: run them, then `glioscope evaluate OUT/seed<k> --site-column`"
            )
        run_repeats(args.recipe, args.cohort, out, args.seeds, overrides, args.quick, args.resume, not args.no_report)
        return
    run_dir = method.run(
        recipe,
        args.cohort,
        out,
        splits=args.splits,
        folds=getattr(args, "fold", None),
        resume=args.resume,
        report=not args.no_report and not args.site_column,
    )
    if os.environ.get("RANK", "0") != "0":  # under torchrun, the first process reports
        return
    if args.site_column and not args.no_report:  # evaluated once the run is whole, with the sites named
        from glioscope.workflows import finish

        finish(run_dir, n_boot=recipe.evaluate.bootstrap, site_column=args.site_column)
    if not args.no_report:
        from glioscope.report import headline_text

        print(headline_text(run_dir))
        print(f"Report: {run_dir / REPORT}")
    print(f"Run folder: {run_dir}")


def _evaluate(args) -> None:
    from glioscope.rundir import REPORT
    from glioscope.report import headline_text
    from glioscope.workflows import finish

    finish(args.run_dir, n_boot=args.bootstrap, report=not args.no_report, site_column=args.site_column)
    print(headline_text(args.run_dir))
    if not args.no_report:
        print(f"Report: {args.run_dir / REPORT}")


def _compare(args) -> None:
    from glioscope.report import write_comparison
    from glioscope.report.repeats import comparison_text

    out = args.out or args.runs[0].parent / "comparison.html"
    html = write_comparison(args.runs, out)
    print(comparison_text(html))
    print(f"Comparison: {html}")


def _fuse(args) -> None:
    from glioscope.rundir import REPORT
    from glioscope.report import headline_text
    from glioscope.rundir import RunFolder
    from glioscope.workflows import fuse

    out = fuse(args.runs, args.out, methods=args.methods, overwrite=args.overwrite, n_boot=args.bootstrap)
    for note in RunFolder(out).info()["fusion"]["skipped"]:
        print(f"note: {note}")
    print(headline_text(out))
    print(f"Report: {out / REPORT}")
    print(f"Run folder: {out}")
