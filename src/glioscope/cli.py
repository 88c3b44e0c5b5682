"""The `glioscope` command: thin wiring from arguments to the stages."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from glioscope import __version__
from glioscope.errors import GlioscopeError

FORMAT_CHOICES = ("auto", "dicom", "rsna-miccai", "brats", "ixi", "kaggle3m", "imagefolder", "manifest")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glioscope",
        description="Deep-learning classification of brain tumours in MRI, evaluated by patient.",
    )
    parser.add_argument("--version", action="version", version=f"glioscope {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    synth = verbs.add_parser("synth", help="write a phantom cohort in real file layouts")
    synth.add_argument("out", type=Path, help="output folder (must not exist, or use --overwrite)")
    synth.add_argument("--preset", default="demo", choices=("tiny", "demo", "mgmt", "study"))
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--difficulty", type=float, default=None, help="0 = grades well apart, 1 = heavy overlap")
    synth.add_argument("--mgmt-effect", type=float, default=None, help="strength of the MGMT imaging correlate; 0 = none")
    synth.add_argument("--layouts", nargs="+", default=None, help="subset of: dicom rsna-miccai brats ixi imagefolder")
    synth.add_argument("--site", default="A", choices=("A", "B"),
                       help="the scanner and hospital: B is a second site (other intensities, noise, bias, "
                            "slices, subjects and ids) for external validation")
    synth.add_argument("--overwrite", action="store_true")
    synth.set_defaults(run=_synth)

    ingest = verbs.add_parser("ingest", help="read a data folder into a cohort table")
    ingest.add_argument("sources", type=Path, nargs="+", metavar="SOURCE", help="data folder(s) or a manifest CSV")
    ingest.add_argument("--format", default="auto", choices=FORMAT_CHOICES)
    ingest.add_argument("--labels", type=Path, default=None, help="CSV of labels joined by patient id")
    ingest.add_argument("--id-column", default=None, help="patient id column of --labels")
    ingest.add_argument("--label-column", default=None, help="label column of --labels")
    ingest.add_argument("--select", default=None, metavar="KEY=VALUE,...", help="keep matching rows, e.g. plane=sagittal,sequence=T1")
    ingest.add_argument("--patient-regex", default=None, help="image folders: regex whose group 'patient' is the patient id")
    ingest.add_argument("--workers", type=int, default=None, help="processes for reading headers (default: all cores)")
    ingest.add_argument("--modality", default="MR", metavar="MODALITY,...",
                        help="DICOM modalities to keep (default MR; 'any' keeps every one); others are skipped")
    ingest.add_argument("-o", "--out", type=Path, required=True, metavar="COHORT", help="output cohort folder")
    ingest.add_argument("--overwrite", action="store_true")
    ingest.set_defaults(run=_ingest)

    split = verbs.add_parser("split", help="patient-level stratified folds of a cohort")
    split.add_argument("cohort", type=Path, metavar="COHORT")
    split.add_argument("--folds", type=int, default=5)
    split.add_argument("--test-fraction", type=float, default=0.0)
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--label-column", default="label")
    split.add_argument("--drop-unlabelled", action="store_true",
                       help="leave out the cohort's rows without a label (with a note) instead of refusing them")
    split.add_argument(
        "--leaky-slice-level",
        action="store_true",
        help="split items, not patients (reproduces slice-level protocols; the output is stamped leaky)",
    )
    split.add_argument("-o", "--out", type=Path, required=True, metavar="SPLITS")
    split.add_argument("--overwrite", action="store_true")
    split.set_defaults(run=_split)

    for verb, help_text in (("cv", "patient-level cross-validation of a recipe"), ("train", "train a recipe on chosen folds")):
        runner = verbs.add_parser(verb, help=help_text)
        runner.add_argument("recipe", metavar="RECIPE", help="a recipe name (sdl, sdl-n, r18, axt, alexnet, radiomics, ...) or YAML file")
        runner.add_argument("--cohort", type=Path, required=True, help="cohort folder from `glioscope ingest`")
        runner.add_argument("--splits", type=Path, default=None, help="split folder from `glioscope split` (default: made from the recipe's cv settings)")
        runner.add_argument("--folds", type=int, default=None, help="number of folds (overrides cv.folds)")
        if verb == "train":
            runner.add_argument("--fold", type=int, nargs="+", default=[0], help="which folds to train (default: 0)")
        runner.add_argument("-o", "--out", type=Path, default=None, help="run folder (default: runs/<recipe>)")
        runner.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a recipe setting, e.g. train.epochs=5")
        runner.add_argument("--quick", action="store_true", help="the recipe's short schedule, for a CPU")
        runner.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
        runner.add_argument("--no-report", action="store_true", help="skip evaluation and the HTML report")
        runner.set_defaults(run=_train)

    evaluate = verbs.add_parser("evaluate", help="metrics of a run: per patient and per image, folds and bootstrap")
    evaluate.add_argument("run_dir", type=Path, metavar="RUN")
    evaluate.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of patients")
    evaluate.add_argument("--no-report", action="store_true")
    evaluate.set_defaults(run=_evaluate)

    compare = verbs.add_parser("compare", help="one table of several runs on the same folds")
    compare.add_argument("runs", type=Path, nargs="+", metavar="RUN")
    compare.add_argument("-o", "--out", type=Path, default=None, help="HTML file (default: comparison.html beside the first run)")
    compare.set_defaults(run=_compare)

    fuse = verbs.add_parser("fuse", help="late fusion of runs on the same splits, e.g. one run per MRI sequence")
    fuse.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run folders trained on the same splits")
    fuse.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="the fused run folder")
    fuse.add_argument("--methods", nargs="+", default=["mean", "logistic"], choices=("mean", "logistic"),
                      help="mean of the patient probabilities; logistic regression fit on each fold's validation patients")
    fuse.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of patients")
    fuse.add_argument("--overwrite", action="store_true")
    fuse.set_defaults(run=_fuse)

    predict = verbs.add_parser("predict", help="apply a trained run to a study (prints JSON) or to many (one row per patient)")
    predict.add_argument("run_dir", type=Path, metavar="RUN")
    predict.add_argument("inputs", type=Path, nargs="+", metavar="INPUT",
                         help="a DICOM series or study folder, a NIfTI file or a 2D image; or, for many studies at once, "
                              "a cohort table, a folder of many patients (any layout ingest reads), or several inputs")
    predict.add_argument("--mask", type=Path, default=None, help="a mask for ROI cropping or slice choice, when the recipe needs one")
    predict.add_argument("-o", "--out", type=Path, default=None,
                         help="also write the JSON to this file (many studies: a CSV, one row per patient, and a JSON beside)")
    predict.add_argument("--overwrite", action="store_true", help="replace an existing --out or --dicom-sr file")
    predict.add_argument("--dicom-sr", type=Path, default=None, metavar="FILE",
                         help="also write the patient's prediction as a DICOM Structured Report referencing the input series")
    predict.set_defaults(run=_predict)

    test = verbs.add_parser("test", help="external validation: apply a trained run, untouched, to a labelled cohort")
    test.add_argument("run_dir", type=Path, metavar="RUN")
    test.add_argument("--cohort", type=Path, required=True, help="the external cohort (from `glioscope ingest`)")
    test.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="the external test's folder")
    test.add_argument("--map", dest="class_map", default=None, metavar="EXT=RUN,...",
                      help="external classes onto the run's, e.g. LGG=II,HGG=IV, when their names differ")
    test.add_argument("--allow-shared-patients", action="store_true",
                      help="test even when patients are also in the run's cohort (stamped: not an external test)")
    test.add_argument("--allow-duplicates", action="store_true",
                      help="test even when images are identical to images the run trained on")
    test.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of patients")
    test.add_argument("--overwrite", action="store_true")
    test.set_defaults(run=_test)

    leaks = verbs.add_parser("leakcheck", help="patients and images two cohorts share (ids, identical and near-identical images)")
    leaks.add_argument("cohorts", type=Path, nargs=2, metavar="COHORT")
    leaks.add_argument("--recipe", default="base", help="whose slice or volume settings make the images compared (default: base)")
    leaks.add_argument("-o", "--out", type=Path, default=None, help="write the pairs found to this CSV file")
    leaks.set_defaults(run=_leakcheck)

    from glioscope import weights_cli  # glioscope weights [fetch NAME]
    from glioscope.pretrain import command as pretrain_command  # glioscope pretrain
    pretrain_command.add_parser(verbs)
    weights_cli.add_parser(verbs)

    export = verbs.add_parser("export", help="a self-contained model package: weights, settings, model card, metadata")
    export.add_argument("run_dir", type=Path, metavar="RUN")
    export.add_argument("-o", "--out", type=Path, required=True, metavar="PACKAGE")
    export.add_argument("--torchscript", action="store_true",
                        help="also each fold model in TorchScript, checked to give PyTorch's probabilities within 1e-5")
    export.add_argument("--overwrite", action="store_true")
    export.set_defaults(run=_export)

    serve = verbs.add_parser("serve", help="a local web app: browse runs, compare them, apply a model to an uploaded study")
    serve.add_argument("runs_dir", type=Path, nargs="?", default=Path("runs"), metavar="RUNS_DIR",
                       help="the folder holding run folders and model packages (default: runs)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-upload-mb", type=int, default=512, help="the largest upload accepted, in MB")
    serve.set_defaults(run=_serve)

    demo = verbs.add_parser("demo", help="the main job on a phantom cohort: synthesise, ingest, split, summarise")
    demo.add_argument("--out", type=Path, default=Path("demo-output"))
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser


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
        modalities=None if args.modality.lower() == "any" else [m.strip() for m in args.modality.split(",") if m.strip()],
    )
    print(f"Cohort written to {args.out}")


def _split(args) -> None:
    from glioscope import cohort, split

    frame = cohort.load(args.cohort)
    dropped = (frame[args.label_column].astype(str) == "") if args.label_column in frame else None
    if args.drop_unlabelled and dropped is not None and dropped.any():
        frame = frame[~dropped].reset_index(drop=True)
    table, meta = split.make_splits(
        frame,
        folds=args.folds,
        test_fraction=args.test_fraction,
        seed=args.seed,
        label_column=args.label_column,
        leaky_slice_level=args.leaky_slice_level,
    )
    meta["cohort"] = str(args.cohort)
    if args.drop_unlabelled and dropped is not None and dropped.any():
        meta["notes"].append(f"{int(dropped.sum())} cohort row(s) without a {args.label_column!r} left out "
                             "(--drop-unlabelled)")
    split.save(args.out, table, meta, overwrite=args.overwrite)
    print(split.format_split(meta))
    print(f"Splits written to {args.out}")


def _train(args) -> None:
    from glioscope.rundir import REPORT
    from glioscope.methods import load_recipe

    overrides = list(args.overrides) + ([f"cv.folds={args.folds}"] if args.folds else [])
    method, recipe = load_recipe(args.recipe, overrides, quick=args.quick)  # every value checked before any output
    if args.folds and args.splits:
        raise GlioscopeError("--folds and --splits both say how to split: the splits decide; give one of them")
    if args.folds and recipe.cv.mode != "kfold":  # honoured, never ignored: k folds of every patient
        print(f"note: --folds {args.folds}: {args.folds}-fold cross-validation of every patient, instead of the "
              f"recipe's cv.mode {recipe.cv.mode}" + (f" (test fraction {recipe.cv.test_fraction:g})"
                                                      if recipe.cv.test_fraction else ""))
        method, recipe = load_recipe(args.recipe, overrides + ["cv.mode=kfold", "cv.test_fraction=0"], quick=args.quick)
    out = args.out or Path("runs") / recipe.name
    run_dir = method.run(recipe, args.cohort, out, splits=args.splits, folds=getattr(args, "fold", None),
                         resume=args.resume, report=not args.no_report)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, the first process reports
        return
    if not args.no_report:
        from glioscope.report import headline_text

        print(headline_text(run_dir))
        print(f"Report: {run_dir / REPORT}")
    print(f"Run folder: {run_dir}")


def _evaluate(args) -> None:
    from glioscope.rundir import REPORT
    from glioscope.report import headline_text
    from glioscope.workflows import finish

    finish(args.run_dir, n_boot=args.bootstrap, report=not args.no_report)
    print(headline_text(args.run_dir))
    if not args.no_report:
        print(f"Report: {args.run_dir / REPORT}")


def _compare(args) -> None:
    from glioscope.report import comparison_rows, write_comparison

    out = args.out or args.runs[0].parent / "comparison.html"
    html = write_comparison(args.runs, out)
    print(comparison_rows(args.runs).to_string(index=False))
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


def _predict(args) -> None:
    import json

    from glioscope.predict import predict

    from glioscope.batch import many_studies, predict_batch, write_batch
    from glioscope.util.atomic import check_output_file, write_text

    for path in filter(None, (args.out, args.dicom_sr)):  # before the work: a bad output is refused at once
        check_output_file(path, args.overwrite, inputs=[*args.inputs, args.run_dir])
    read = many_studies(args.inputs)
    if read is not None:
        if args.dicom_sr:
            raise GlioscopeError("--dicom-sr writes one study's report: give one study, not many")
        result = predict_batch(args.run_dir, args.inputs, read=read)
        for patient in result["patients"]:
            print(f"{patient['patient_id']}: {patient['prediction']} "
                  + " ".join(f"{k}={v:.3f}" for k, v in patient["probabilities"].items()))
        print(f"{len(result['patients'])} patient(s) predicted; {len(result['skipped'])} input(s) not used"
              + "".join(f"\n  {s['path']}: {s['reason']}" for s in result["skipped"][:20]))
        if args.out:
            print("Written: " + ", ".join(str(p) for p in write_batch(result, args.out)))
        return  # a batch with nothing to predict has raised an InputError already
    result = predict(args.run_dir, args.inputs[0], mask=args.mask)
    text = json.dumps(result, indent=2)
    if args.out:
        write_text(args.out, text + "\n")
    if args.dicom_sr:
        from glioscope.dicom_sr import write_structured_report

        write_structured_report(result, args.dicom_sr, overwrite=args.overwrite)
    print(text)


def _test(args) -> None:
    from glioscope.rundir import REPORT
    from glioscope.external import ExternalSettings, external_test
    from glioscope.report import headline_text

    mapping = {}
    for pair in filter(None, (args.class_map or "").split(",")):
        if "=" not in pair:
            raise GlioscopeError(f"--map expects EXTERNAL=RUN pairs, got {pair!r}")
        external, ours = (part.strip() for part in pair.split("=", 1))
        mapping[external] = ours
    settings = ExternalSettings(mapping, args.allow_shared_patients, args.allow_duplicates)
    out = external_test(args.run_dir, args.cohort, args.out, settings, overwrite=args.overwrite, n_boot=args.bootstrap)
    print(headline_text(out))
    print(f"Report: {out / REPORT}")


def _leakcheck(args) -> None:
    from glioscope.leakcheck import check_cohorts

    found, shared = check_cohorts(*args.cohorts, recipe=args.recipe)
    print(f"{len(shared)} patient id(s) in both cohorts" + (f": {', '.join(shared[:10])}" if shared else ""))
    print(f"{len(found.exact)} identical image(s), {len(found.near)} near-identical pair(s)")
    for a, b, n in found.patients[:20]:
        print(f"  patient {a} ~ patient {b}: {n} image pair(s)")
    if args.out:
        from glioscope.util.atomic import write_csv

        write_csv(args.out, found.frame())
        print(f"Pairs: {args.out}")


def _export(args) -> None:
    from glioscope.export import export_run
    from glioscope.rundir import MODEL_CARD

    checks = export_run(args.run_dir, args.out, torchscript=args.torchscript, overwrite=args.overwrite)
    for fold, difference in checks["torchscript_max_difference"].items():
        print(f"{fold}: TorchScript matches PyTorch within {difference:.1e}")
    print(f"Model package: {args.out} (model card: {args.out / MODEL_CARD})")


def _serve(args) -> None:
    from glioscope.serve import serve

    serve(args.runs_dir, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb)


def _demo(args) -> None:
    from glioscope.demo import run_demo

    run_demo(args.out, seed=args.seed)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except GlioscopeError as exc:
        print(f"glioscope {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine's, not the input's: a full disk, a folder without write permission
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"glioscope {args.verb}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"glioscope {args.verb}: interrupted", file=sys.stderr)
        return 130
    return 0
