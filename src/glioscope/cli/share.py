"""`glioscope export`, `serve` and `demo`: a model package, the local web app, the main job on the phantom."""

from __future__ import annotations

from pathlib import Path

from glioscope.cli.apply import add_set_options, set_options


def add_parsers(verbs) -> None:
    """Add this module's verbs to the command's subparsers."""
    export = verbs.add_parser("export", help="a self-contained model package: weights, settings, model card, metadata")
    export.add_argument("run_dir", type=Path, metavar="RUN", help="a run folder from `glioscope cv` or `train`")
    export.add_argument("-o", "--out", type=Path, required=True, metavar="PACKAGE", help="the package folder to write")
    export.add_argument(
        "--torchscript",
        action="store_true",
        help="also each fold model in TorchScript, checked to give PyTorch's probabilities within 1e-5",
    )
    export.add_argument(
        "--no-patient-ids",
        action="store_true",
        help="leave the training patients' hashed ids out: predict and test then cannot tell a patient it trained on",
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing package folder")
    export.set_defaults(run=_export)

    serve = verbs.add_parser(
        "serve", help="a local web app: browse runs, compare them, apply a model to an uploaded study"
    )
    serve.add_argument(
        "runs_dir",
        type=Path,
        nargs="?",
        default=Path("runs"),
        metavar="RUNS_DIR",
        help="the folder holding run folders and model packages (default: runs)",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only)"
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    serve.add_argument("--max-upload-mb", type=int, default=512, help="the largest upload accepted, in MB")
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the app answers to besides localhost, 127.0.0.1 and [::1] (repeatable): the name "
        "other computers open it by, with --host",
    )
    serve.add_argument("--api-docs", action="store_true", help="serve the OpenAPI schema at /openapi.json")
    add_set_options(serve)
    serve.set_defaults(run=_serve)

    demo = verbs.add_parser(
        "demo",
        help="the main job on a phantom cohort: synthesise, ingest, split, train SDL and AlexNet, fit the radiomics "
        "baselines, compare them, report",
        description="Synthesise the demo phantom (grade II / III / IV), ingest its axial T1c slices, split its "
        "patients into 3 stratified folds, train SDL (an AlexNet pair) and a single AlexNet on them with a short "
        "schedule, fit the radiomics baselines on the same folds, and write each run's report and a comparison "
        "with paired tests. Minutes on a CPU; an existing phantom with the same seed is reused.",
    )
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="the folder every output goes into")
    demo.add_argument("--seed", type=int, default=0, help="seed of the phantom, the folds and the training")
    demo.set_defaults(run=_demo)


def _export(args) -> None:
    from glioscope.export import export_run
    from glioscope.rundir import MODEL_CARD

    checks = export_run(
        args.run_dir,
        args.out,
        torchscript=args.torchscript,
        overwrite=args.overwrite,
        patient_ids=not args.no_patient_ids,
    )
    for fold, difference in checks["torchscript_max_difference"].items():
        print(f"{fold}: TorchScript matches PyTorch within {difference:.1e}")
    print(f"Model package: {args.out} (model card: {args.out / MODEL_CARD})")


def _serve(args) -> None:
    from glioscope.serve import serve

    sets = set_options(args)  # a bad --level is refused before the app starts
    serve(
        args.runs_dir,
        host=args.host,
        port=args.port,
        max_upload_mb=args.max_upload_mb,
        allow_hosts=args.allow_host,
        api_docs=args.api_docs,
        sets=sets,
    )


def _demo(args) -> None:
    from glioscope.demo import run_demo

    run_demo(args.out, seed=args.seed)
