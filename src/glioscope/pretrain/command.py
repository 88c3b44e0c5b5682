"""`glioscope pretrain`: its arguments and what it prints (glioscope.cli adds the verb from here)."""

from __future__ import annotations

from pathlib import Path

# SimCLR learns from what its two views share: the recipes' augmentations are for supervised
# training and too weak for it. These come first; the command line's --set wins over them.
SIMCLR_DEFAULTS = (
    "augment.zoom=[1.0,1.6]",
    "augment.shift=0.15",
    "augment.rotation=15",
    "augment.hflip=0.5",
    "augment.brightness=[0.7,1.3]",
    "train.optimizer=adam",
    "train.lr=0.001",
    "train.weight_decay=0.000001",
    "train.schedule=none",
)


def add_parser(verbs) -> None:
    parser = verbs.add_parser(
        "pretrain", help="pretrain a recipe's 2D backbone on other cohorts (supervised or SimCLR)"
    )
    parser.add_argument("recipe", metavar="RECIPE", help="whose backbone, data settings, augmentation and optimiser")
    parser.add_argument(
        "--cohort",
        type=Path,
        action="append",
        required=True,
        dest="cohorts",
        metavar="COHORT",
        help="a cohort to pretrain on (from `glioscope ingest`); repeat for several",
    )
    parser.add_argument(
        "--method",
        default="supervised",
        choices=("supervised", "simclr"),
        help="supervised: the cohorts' labels (task.label); simclr: contrastive, labels unused",
    )
    parser.add_argument(
        "--exclude",
        type=Path,
        action="append",
        default=[],
        metavar="COHORT_OR_RUN",
        help="refuse pretraining data holding any patient of this cohort, run or model package "
        "(and warn on identical images); repeat for several",
    )
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        required=True,
        metavar="OUT",
        help="the pretraining folder: weights, their provenance, per-epoch metrics and the loss curve",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe setting, e.g. train.epochs=5 or data.slices.size=128",
    )
    parser.add_argument("--quick", action="store_true", help="the recipe's short schedule, for a CPU")
    parser.add_argument("--temperature", type=float, default=0.5, help="SimCLR: NT-Xent temperature")
    parser.add_argument("--projection", type=int, default=128, help="SimCLR: projection head output width")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted pretraining in --out")
    parser.set_defaults(run=run_command)


def run_command(args) -> None:
    from glioscope.pretrain import provenance
    from glioscope.pretrain.run import SimCLRSettings, pretrain
    from glioscope.recipe import load_recipe

    defaults = list(SIMCLR_DEFAULTS) if args.method == "simclr" else []
    recipe = load_recipe(args.recipe, defaults + list(args.overrides), quick=args.quick)
    path = pretrain(
        recipe,
        args.cohorts,
        args.out,
        method=args.method,
        excludes=args.exclude,
        resume=args.resume,
        simclr=SimCLRSettings(args.temperature, args.projection),
    )
    record = provenance.read_json(path.parent)
    for note in record.get("notes", []):
        if note.startswith("warning:"):
            print(note)
    print(f"Weights: {path}: {record['summary']}")
    print(
        f"Wall time {record['wall_seconds']:.0f} s ({record['training_seconds']:.0f} s training, "
        f"{record['threads']} thread(s), {record['device']}); loss by epoch: "
        + ", ".join(f"{v:.3f}" for v in record["loss"])
    )
    print(f"Use it in any recipe with the same backbone: --set model.weights={path}")
