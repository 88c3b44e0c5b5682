"""`glioscope synth`, `ingest` and `split`: a phantom cohort, a cohort table, patient-level folds."""

from __future__ import annotations

from pathlib import Path


FORMAT_CHOICES = ("auto", "dicom", "rsna-miccai", "brats", "ixi", "kaggle3m", "imagefolder", "manifest")


def add_parsers(verbs) -> None:
    """Add this module's verbs to the command's subparsers."""
    synth = verbs.add_parser("synth", help="write a phantom cohort in real file layouts")
    synth.add_argument("out", type=Path, help="output folder (must not exist, or use --overwrite)")
    synth.add_argument(
        "--preset",
        default="demo",
        choices=("tiny", "demo", "mgmt", "study"),
        help="tiny: 12 subjects on a 4 mm grid, for tests; demo: 44 subjects (grade II / III / IV and healthy) on "
        "a 2 mm grid; mgmt: 60 grade IV subjects, about half methylated; study: 140 subjects on a 2 mm grid",
    )
    synth.add_argument("--seed", type=int, default=0, help="the phantom's random seed: the same seed, the same files")
    # The phantom's own defaults (glioscope.synth.presets), written out: importing it here would load the synthesiser.
    synth.add_argument(
        "--difficulty", type=float, default=None, help="0 = grades well apart, 1 = heavy overlap (default: 0.35)"
    )
    synth.add_argument(
        "--mgmt-effect",
        type=float,
        default=None,
        help="strength of the MGMT imaging correlate; 0 = none (default: 0.5)",
    )
    synth.add_argument(
        "--layouts",
        nargs="+",
        default=None,
        help="subset of: dicom rsna-miccai brats ixi imagefolder (default: every one)",
    )
    synth.add_argument(
        "--site",
        default="A",
        choices=("A", "B"),
        help="the scanner and hospital: B is a second site (other intensities, noise, bias, "
        "slices, subjects and ids) for external validation",
    )
    synth.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    synth.set_defaults(run=_synth)

    ingest = verbs.add_parser("ingest", help="read a data folder into a cohort table")
    ingest.add_argument("sources", type=Path, nargs="+", metavar="SOURCE", help="data folder(s) or a manifest CSV")
    ingest.add_argument(
        "--format", default="auto", choices=FORMAT_CHOICES, help="the sources' layout; auto: recognised from the files"
    )
    ingest.add_argument("--labels", type=Path, default=None, help="CSV of labels joined by patient id")
    ingest.add_argument("--id-column", default=None, help="patient id column of --labels")
    ingest.add_argument("--label-column", default=None, help="label column of --labels")
    ingest.add_argument(
        "--select", default=None, metavar="KEY=VALUE,...", help="keep matching rows, e.g. plane=sagittal,sequence=T1"
    )
    ingest.add_argument(
        "--patient-regex", default=None, help="image folders: regex whose group 'patient' is the patient id"
    )
    ingest.add_argument("--workers", type=int, default=None, help="processes for reading headers (default: all cores)")
    ingest.add_argument(
        "--modality",
        default="MR",
        metavar="MODALITY,...",
        help="DICOM modalities to keep (default MR; 'any' keeps every one); others are skipped",
    )
    ingest.add_argument("-o", "--out", type=Path, required=True, metavar="COHORT", help="output cohort folder")
    ingest.add_argument("--overwrite", action="store_true", help="replace an existing output cohort folder")
    ingest.set_defaults(run=_ingest)

    split = verbs.add_parser("split", help="patient-level stratified folds of a cohort")
    split.add_argument("cohort", type=Path, metavar="COHORT", help="cohort folder from `glioscope ingest`")
    split.add_argument("--folds", type=int, default=5, help="number of cross-validation folds")
    split.add_argument(
        "--test-fraction",
        type=float,
        default=0.0,
        help="share of the patients held out as a test set that no fold trains on",
    )
    split.add_argument("--seed", type=int, default=0, help="seed of the shuffle: the same seed, the same folds")
    split.add_argument("--label-column", default="label", help="the cohort column the folds are stratified by")
    split.add_argument(
        "--drop-unlabelled",
        action="store_true",
        help="leave out the cohort's rows without a label (with a note) instead of refusing them",
    )
    split.add_argument(
        "--leaky-slice-level",
        action="store_true",
        help="split items, not patients (reproduces slice-level protocols; the output is stamped leaky)",
    )
    split.add_argument(
        "--by-site",
        action="store_true",
        help="folds of whole sites: leave-one-site-out when --folds is at least the number of sites",
    )
    split.add_argument("--site-column", default=None, metavar="NAME", help="the cohort column naming each site")
    split.add_argument("-o", "--out", type=Path, required=True, metavar="SPLITS", help="output split folder")
    split.add_argument("--overwrite", action="store_true", help="replace an existing output split folder")
    split.set_defaults(run=_split)


def _synth(args) -> None:
    from glioscope.synth import synthesize

    manifest = synthesize(
        args.out,
        preset=args.preset,
        seed=args.seed,
        difficulty=args.difficulty,
        mgmt_effect=args.mgmt_effect,
        layouts=args.layouts,
        overwrite=args.overwrite,
        site=args.site,
    )
    site = f", site {args.site}" if args.site != "A" else ""
    print(f"Phantom cohort ({args.preset}{site}, seed {args.seed}) written to {args.out}")
    for layout, folder in manifest.get("layouts", {}).items():
        print(f"  {layout:<12} {Path(args.out) / folder}")
    print(f"  montage      {Path(args.out) / 'montage.png'}")


def _ingest(args) -> None:
    from glioscope.cohort import parse_selection
    from glioscope.ingest import ingest

    ingest(
        args.sources,
        args.out,
        format=args.format,
        labels=args.labels,
        select=parse_selection(args.select),
        id_column=args.id_column,
        label_column=args.label_column,
        patient_regex=args.patient_regex,
        workers=args.workers,
        overwrite=args.overwrite,
        modalities=None
        if args.modality.lower() == "any"
        else [m.strip() for m in args.modality.split(",") if m.strip()],
    )
    print(f"Cohort written to {args.out}")


def _by_site(args, frame):
    from glioscope.errors import InputError
    from glioscope.sites import make_site_splits

    if args.test_fraction or args.leaky_slice_level:
        given = "--test-fraction" if args.test_fraction else "--leaky-slice-level"
        raise InputError(None, f"--by-site makes cross-validation folds of whole sites and takes no {given}")
    return make_site_splits(frame, args.folds, args.seed, args.label_column, args.site_column, args.cohort)


def _split(args) -> None:
    from glioscope import cohort, sites, split

    frame = cohort.load(args.cohort)
    dropped = (frame[args.label_column].astype(str) == "") if args.label_column in frame else None
    if args.drop_unlabelled and dropped is not None and dropped.any():
        frame = frame[~dropped].reset_index(drop=True)
    if args.by_site:
        table, meta = _by_site(args, frame)
    else:
        table, meta = split.make_splits(
            frame,
            folds=args.folds,
            test_fraction=args.test_fraction,
            seed=args.seed,
            label_column=args.label_column,
            leaky_slice_level=args.leaky_slice_level,
        )
        if args.site_column:  # checked now, and kept for the evaluation of runs on these folds
            sites.patient_sites(frame, args.site_column, args.cohort)
            meta["site_column"] = args.site_column
    meta["cohort"] = str(args.cohort)
    if args.drop_unlabelled and dropped is not None and dropped.any():
        meta["notes"].append(
            f"{int(dropped.sum())} cohort row(s) without a {args.label_column!r} left out (--drop-unlabelled)"
        )
    split.save(args.out, table, meta, overwrite=args.overwrite)
    print(split.format_split(meta))
    print(f"Splits written to {args.out}")
