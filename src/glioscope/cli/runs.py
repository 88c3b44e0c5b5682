"""`glioscope cv`, `train`, `evaluate`, `compare` and `fuse`: any kind of method's recipe run, evaluated, compared, fused."""

from __future__ import annotations

import os
import time
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
            help="a recipe name (sdl, alexnet, radiomics, ...: `glioscope recipes` lists them) or YAML file",
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
            runner.add_argument(
                "--all",
                action="store_true",
                help="train one final model on every patient, with the settings the cross-validation --from-cv "
                "chose; its run carries that CV's figures, operating point and calibration",
            )
            runner.add_argument(
                "--from-cv",
                type=Path,
                default=None,
                metavar="RUN",
                help="with --all: the `glioscope cv` run of the same recipe whose settings and figures it takes",
            )
        else:
            runner.add_argument(
                "--seeds",
                type=int,
                nargs="+",
                default=None,
                help="repeat the run once per seed (split and training seed), one run folder each in --out, and "
                "report the spread over repeats",
            )
            runner.add_argument(
                "--permutations",
                type=int,
                default=None,
                metavar="N",
                help="after the run, retrain N times on its folds with labels shuffled by patient (within site when "
                "sites are known) and report the permutation p-value of its AUC (default: the recipe's "
                "evaluate.permutations: 20 for radiomics recipes, 0 for deep ones)",
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
    evaluate.add_argument("run_dir", type=Path, metavar="RUN", help="a run folder from `glioscope cv` or `train`")
    evaluate.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of patients")
    evaluate.add_argument("--no-report", action="store_true", help="write the metrics only, not the HTML report")
    evaluate.add_argument("--site-column", default=None, metavar="NAME", help=SITE_HELP)
    evaluate.set_defaults(run=_evaluate)

    compare = verbs.add_parser("compare", help="one table of several runs on the same folds")
    compare.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run folders trained on the same folds")
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
    fuse.add_argument("--overwrite", action="store_true", help="replace an existing fused run folder")
    fuse.set_defaults(run=_fuse)


def _train(args) -> None:
    from glioscope.rundir import REPORT, RUN_LOG
    from glioscope.util.stagelog import StageLog
    from glioscope.methods import load_recipe

    if getattr(args, "all", False) or getattr(args, "from_cv", None):
        return _train_all(args)

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
    permutations = _permutations(args, recipe)
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
    start = time.perf_counter()
    if permutations and args.resume:
        from glioscope.permutation import kept

        tested = kept(out)
    run_dir = method.run(
        recipe,
        args.cohort,
        out,
        splits=args.splits,
        folds=getattr(args, "fold", None),
        resume=args.resume,
        report=not args.no_report and not args.site_column and not permutations,
    )
    if os.environ.get("RANK", "0") != "0":  # under torchrun, the first process reports
        return
    if permutations:
        from glioscope.permutation import restore, run_permutations

        seconds = time.perf_counter() - start
        if args.resume:
            restore(run_dir, tested)
        record = run_permutations(
            method, recipe, args.cohort, run_dir, permutations, args.site_column, args.resume, seconds
        )
    if (args.site_column or permutations) and not args.no_report:  # evaluated once the run is whole
        from glioscope.workflows import finish

        finish(run_dir, n_boot=recipe.evaluate.bootstrap, site_column=args.site_column)
    if not args.no_report:
        from glioscope.report import headline_text

        with StageLog(run_dir / RUN_LOG).notes():  # the summary's warnings go into the run's log too
            print(headline_text(run_dir))
    if permutations:
        from glioscope.report.permutation import summary_text

        print(summary_text(record)[0].upper() + summary_text(record)[1:])
    if not args.no_report:
        print(f"Report: {run_dir / REPORT}")
    print(f"Run folder: {run_dir}")


def _permutations(args, recipe) -> int:
    """How many permutations `cv` runs after the run: --permutations, else the recipe's; 0 where they cannot be."""
    asked = getattr(args, "permutations", None)
    n = recipe.evaluate.permutations if asked is None else asked
    if asked is not None and asked < 0:
        raise GlioscopeError(f"--permutations must be at least 0, got {asked}")
    if not n or not hasattr(args, "permutations"):
        return 0
    why = None
    if args.seeds is not None:
        why = "--seeds repeats the run; test one run of them: `glioscope cv ... --splits OUT/seed<k> --permutations N`"
    elif recipe.cv.mode != "kfold" and not args.splits:
        why = f"recipe {recipe.name} trains once (cv.mode {recipe.cv.mode}); the test needs cross-validation folds"
    if why and asked is not None:
        raise GlioscopeError(f"--permutations: {why}")
    if why:
        print(f"note: no permutation test ({recipe.name} asks for {n}): {why}")
        return 0
    from glioscope.permutation import check_cohort, check_count

    check_count(n)
    check_cohort(recipe, args.cohort, n, args.site_column)  # before the run: a cohort too small is refused at once
    return n


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


def _train_all(args) -> None:
    """`train RECIPE --all --from-cv RUN`: the final model on every patient (glioscope.final)."""
    from glioscope.final import train_final
    from glioscope.report import headline_text
    from glioscope.rundir import REPORT, RunFolder
    from glioscope.workflows import finish

    if not (args.all and args.from_cv):
        raise GlioscopeError("--all and --from-cv go together: a final model takes its settings from a CV run")
    given = [name for name, on in (("--set", args.overrides), ("--quick", args.quick), ("--splits", args.splits),
             ("--folds", args.folds), ("--fold", args.fold != [0])) if on]  # fmt: skip
    if given:
        raise GlioscopeError(
            f"--all takes every setting from --from-cv {args.from_cv}; {', '.join(given)} would train a model its "
            "cross-validation did not test"
        )
    out = args.out or Path("runs") / f"{args.recipe}-all"
    run_dir = train_final(args.recipe, args.from_cv, out, args.cohort, resume=args.resume)
    finish(run_dir, n_boot=RunFolder(args.from_cv).metrics().get("n_boot", 1000), report=not args.no_report,
           site_column=args.site_column)  # fmt: skip
    final = RunFolder(run_dir).info()["final"]
    if final.get("epochs"):
        print(f"note: {final['epochs']}")
    print(f"note: {final['statement']}")
    print(headline_text(run_dir))
    if not args.no_report:
        print(f"Report: {run_dir / REPORT}")
    print(f"Run folder: {run_dir}")
