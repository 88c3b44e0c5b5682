"""`glioscope curve`: a recipe's learning curve, patient AUC against the number of training patients."""

from __future__ import annotations

from pathlib import Path


def add_parser(verbs) -> None:
    parser = verbs.add_parser(
        "curve",
        help="learning curve: train a recipe on growing shares of each fold's training patients",
        description="Split the cohort into patient-level folds; for each fold, train the recipe on nested, "
        "label-stratified shares of its training patients and predict its held-out patients (the same for every "
        "share); plot the pooled held-out patient AUC against the number of training patients, with intervals.",
    )
    parser.add_argument(
        "recipe",
        metavar="RECIPE",
        help="a recipe name (radiomics-rf, alexnet-tumour, ...: `glioscope recipes` lists them) or YAML file",
    )
    parser.add_argument("--cohort", type=Path, required=True, help="cohort folder from `glioscope ingest`")
    parser.add_argument(
        "--fractions",
        type=float,
        nargs="+",
        default=[0.25, 0.5, 0.75, 1.0],
        metavar="F",
        help="shares of each fold's training patients, in (0, 1] (default: 0.25 0.5 0.75 1)",
    )
    folds = parser.add_mutually_exclusive_group()
    folds.add_argument(
        "--folds", type=int, default=None, help="outer patient-level folds (default: the recipe's cv.folds)"
    )
    folds.add_argument(
        "--splits", type=Path, default=None, help="take the outer folds from this `glioscope split` folder"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the folds and the subsamples (default: the recipe's cv.seed)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe setting, e.g. classifier.trees=100",
    )
    parser.add_argument("--quick", action="store_true", help="the recipe's short schedule, for a CPU")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (continued with --resume)")
    parser.add_argument("--resume", action="store_true", help="continue OUT, reusing every finished (fraction, fold)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of patients (default: 1000)")
    parser.set_defaults(run=_curve)


def _curve(args) -> None:
    from glioscope.curve import learning_curve
    from glioscope.curve.run import Layout

    out = learning_curve(
        args.recipe,
        args.cohort,
        args.out,
        fractions=args.fractions,
        folds=args.folds,
        splits=args.splits,
        seed=args.seed,
        overrides=args.overrides,
        quick=args.quick,
        resume=args.resume,
        n_boot=args.bootstrap,
    )
    layout = Layout(out)
    print(f"Curve: {layout.csv}")
    print(f"Report: {layout.report}")
