"""`glioscope predict`, `test` and `leakcheck`: a trained run applied to new studies or an external cohort."""

from __future__ import annotations

from pathlib import Path

from glioscope.errors import GlioscopeError


def add_parsers(verbs) -> None:
    """Add this module's verbs to the command's subparsers."""
    predict = verbs.add_parser(
        "predict", help="apply a trained run to a study (prints JSON) or to many (one row per patient)"
    )
    predict.add_argument(
        "run_dir", type=Path, metavar="RUN", help="a run folder or a model package (`glioscope export`)"
    )
    predict.add_argument(
        "inputs",
        type=Path,
        nargs="+",
        metavar="INPUT",
        help="a DICOM series or study folder, a NIfTI file or a 2D image; or, for many studies at once, "
        "a cohort table, a folder of many patients (any layout ingest reads), or several inputs",
    )
    predict.add_argument(
        "--mask", type=Path, default=None, help="a mask for ROI cropping or slice choice, when the recipe needs one"
    )
    predict.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="also write the JSON to this file (many studies: a CSV, one row per patient, and a JSON beside)",
    )
    predict.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out, --dicom-sr, --dicom-gradcam or --explain file",
    )
    predict.add_argument(
        "--dicom-sr",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the patient's prediction as a DICOM Structured Report referencing the input series",
    )
    predict.add_argument(
        "--explain",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the study image and the Grad-CAM in the study's own geometry as NIfTI files into DIR "
        "(<patient>_image.nii.gz, <patient>_gradcam-<class>.nii.gz), for 3D Slicer, ITK-SNAP or NiiVue",
    )
    predict.add_argument(
        "--dicom-gradcam",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the Grad-CAM as a DICOM Parametric Map over the input series (a DICOM series input)",
    )
    predict.add_argument(
        "--explain-class",
        default=None,
        metavar="CLASS",
        help="the class --explain and --dicom-gradcam map (default: the predicted class)",
    )
    _accept_option(predict)
    add_set_options(predict)
    predict.set_defaults(run=_predict)

    test = verbs.add_parser("test", help="external validation: apply a trained run, untouched, to a labelled cohort")
    test.add_argument("run_dir", type=Path, metavar="RUN", help="a run folder or a model package (`glioscope export`)")
    test.add_argument("--cohort", type=Path, required=True, help="the external cohort (from `glioscope ingest`)")
    test.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="the external test's folder")
    test.add_argument(
        "--map",
        dest="class_map",
        default=None,
        metavar="EXT=RUN,...",
        help="external classes onto the run's, e.g. LGG=II,HGG=IV, when their names differ",
    )
    test.add_argument(
        "--allow-shared-patients",
        action="store_true",
        help="test even when patients are also in the run's cohort (stamped: not an external test)",
    )
    test.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="test even when images are identical to images the run trained on",
    )
    _accept_option(test)
    add_set_options(test)
    test.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of patients")
    test.add_argument("--site-column", default=None, metavar="NAME", help="the cohort column naming each site")
    test.add_argument("--overwrite", action="store_true", help="replace an existing OUT folder")
    test.set_defaults(run=_test)

    leaks = verbs.add_parser(
        "leakcheck", help="patients and images two cohorts share (ids, identical and near-identical images)"
    )
    leaks.add_argument(
        "cohorts", type=Path, nargs=2, metavar="COHORT", help="two cohort folders from `glioscope ingest`"
    )
    leaks.add_argument(
        "--recipe", default="base", help="whose slice or volume settings make the images compared (default: base)"
    )
    leaks.add_argument("-o", "--out", type=Path, default=None, help="write the pairs found to this CSV file")
    leaks.set_defaults(run=_leakcheck)


def _accept_option(parser) -> None:
    parser.add_argument(
        "--accept-altered-package",
        action="store_true",
        help="use a model package whose files differ from its manifest (or that has none); every output says so",
    )


def add_set_options(parser) -> None:
    """--level and --mondrian: the conformal prediction sets (glioscope.evaluate.conformal)."""
    parser.add_argument(
        "--level",
        type=float,
        default=0.9,
        help="coverage of each patient's conformal prediction set, calibrated on the run's CV patients: "
        "strictly between 0 and 1 (default 0.9)",
    )
    parser.add_argument(
        "--mondrian",
        action="store_true",
        help="class-conditional (Mondrian) sets: the level holds within each true class, for imbalanced classes "
        "(default: off, the level holds over all patients)",
    )


def set_options(args):
    """The prediction sets' options of --level and --mondrian (a level outside (0, 1) is refused, naming it)."""
    from glioscope.evaluate.conformal import SetOptions

    return SetOptions(args.level, args.mondrian)


def _predict(args) -> None:
    import json
    import sys

    from glioscope.predict import predict

    from glioscope.batch import many_studies, predict_batch, write_batch
    from glioscope.rundir.seal import STAMPS
    from glioscope.trained import NO_PATIENT_IDS, decided_text
    from glioscope.typicality import CANNOT_TELL, warning_line
    from glioscope.report.conformal import set_words
    from glioscope.util.atomic import check_output_file, write_text

    sets = set_options(args)
    for path in filter(None, (args.out, args.dicom_sr, args.dicom_gradcam)):  # before the work: refused at once
        check_output_file(path, args.overwrite, inputs=[*args.inputs, args.run_dir])
    explaining = args.explain is not None or args.dicom_gradcam is not None
    if args.explain is not None:
        check_output_folder(args.explain, inputs=[*args.inputs, args.run_dir])
    read = many_studies(args.inputs)
    if read is not None:
        for option, given in (
            ("--dicom-sr", args.dicom_sr),
            ("--explain", args.explain),
            ("--dicom-gradcam", args.dicom_gradcam),
        ):
            if given:
                raise GlioscopeError(f"{option} writes one study's outputs: give one study, not many")
        result = predict_batch(
            args.run_dir, args.inputs, read=read, accept_altered=args.accept_altered_package, sets=sets
        )
        for patient in result["patients"]:
            print(
                f"{patient['patient_id']}: {patient['prediction']} "
                + " ".join(f"{k}={v:.3f}" for k, v in patient["probabilities"].items())
                + set_words(patient, sets)
            )
            if "attention" in patient:
                print(f"  slices that decided: {decided_text(patient['attention'])}")
            if (patient["unlike_training"] or {}).get("warning"):
                print(f"  {warning_line(patient)}")
        print(
            f"{len(result['patients'])} patient(s) predicted; {len(result['skipped'])} input(s) not used"
            + "".join(f"\n  {s['path']}: {s['reason']}" for s in result["skipped"][:20])
        )
        for note in result["notes"]:  # what the rows alone do not say
            if note == NO_PATIENT_IDS or note.startswith(STAMPS) or CANNOT_TELL in note:
                print(f"Note: {note}")
        if args.out:
            print("Written: " + ", ".join(str(p) for p in write_batch(result, args.out)))
        return  # a batch with nothing to predict has raised an InputError already
    if explaining:
        result, maps = _explained(args, sets)
    else:
        result = predict(
            args.run_dir, args.inputs[0], mask=args.mask, accept_altered=args.accept_altered_package, sets=sets
        )
    text = json.dumps(result, indent=2)
    for patient in result["patients"]:  # beside the JSON (stdout), the line a person reads
        if "prediction_set" in patient:
            print(f"{patient['patient_id']}:{set_words(patient, sets)}", file=sys.stderr)
        if warning_line(patient):
            print(f"{patient['patient_id']}: {warning_line(patient)}", file=sys.stderr)
        if "attention" in patient:
            print(
                f"{patient['patient_id']}: slices that decided: {decided_text(patient['attention'])}", file=sys.stderr
            )
    if args.out:
        write_text(args.out, text + "\n")
        print(f"Written: {args.out}", file=sys.stderr)  # stderr: stdout is the JSON
    if args.dicom_sr:
        from glioscope.dicom_sr import write_structured_report

        write_structured_report(result, args.dicom_sr, overwrite=args.overwrite)
        print(f"Written: {args.dicom_sr}", file=sys.stderr)
    if explaining:
        for written in _write_explained(args, maps, result["recipe"]):
            print(f"Written: {written}", file=sys.stderr)
    print(text)


def check_output_folder(folder: Path, inputs=()) -> None:
    """Refuse an output folder that is a file or lies inside an input folder."""
    from glioscope.errors import InputError
    from glioscope.util.paths import inside

    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "is a file; give a folder to write the explanation files into")
    for given in inputs:
        if Path(given).is_dir() and inside(folder, given):
            raise InputError(folder, f"is inside the input {given}; write it elsewhere")


def _explained(args, sets):
    """(predict's result, the study's maps), refused at once for a run whose model gives no image map."""
    from glioscope.errors import InputError
    from glioscope.io.study import read_study
    from glioscope.predict import predict_explained
    from glioscope.trained import TrainedRun

    run = TrainedRun(args.run_dir, args.accept_altered_package)
    option = "--explain" if args.explain is not None else "--dicom-gradcam"
    if run.kind not in ("slices", "volumes"):
        raise InputError(
            args.run_dir,
            f"is a {run.kind} model: its input is not an image, so there is no Grad-CAM for {option} to write",
        )
    if args.explain_class is not None and args.explain_class not in run.class_names:
        raise GlioscopeError(
            f"--explain-class {args.explain_class!r}: the run's classes are {', '.join(run.class_names)}"
        )
    study = read_study(args.inputs[0], args.mask)
    if args.dicom_gradcam is not None and not (study.frame["kind"] == "series").any():
        raise InputError(
            args.inputs[0],
            "is not a DICOM series: --dicom-gradcam writes a Parametric Map over the input's DICOM series "
            "(use --explain for NIfTI files)",
        )
    return predict_explained(run, study, sets, args.explain_class, run_dir=args.run_dir)


def _write_explained(args, maps, recipe: str) -> list[Path]:
    """The NIfTI files of --explain and the Parametric Map of --dicom-gradcam; the files written."""
    from glioscope.errors import InputError
    from glioscope.explain import write_study_maps
    from glioscope.explain.nifti import planned_files
    from glioscope.util.atomic import check_output_file

    if not maps:
        raise InputError(args.inputs[0], "gave no image to explain")
    if args.explain is not None:
        for _, _, path in planned_files(maps, args.explain):
            check_output_file(path, args.overwrite)
    written = []
    if args.dicom_gradcam is not None:
        from glioscope.explain.dicom import write_parametric_map

        mapped = [m for m in maps if m.cam is not None]
        if not mapped:
            raise InputError(args.run_dir, "gives no Grad-CAM (its model ranks slices): no Parametric Map to write")
        written.append(write_parametric_map(mapped[0], args.dicom_gradcam, recipe=recipe))
    if args.explain is not None:
        written += write_study_maps(maps, args.explain)
    return written


def _test(args) -> None:
    from glioscope.rundir import REPORT, RunFolder
    from glioscope.external import ExternalSettings, external_test
    from glioscope.report.conformal import coverage_lines
    from glioscope.report import headline_text

    mapping = {}
    for pair in filter(None, (args.class_map or "").split(",")):
        if "=" not in pair:
            raise GlioscopeError(f"--map expects EXTERNAL=RUN pairs, got {pair!r}")
        external, ours = (part.strip() for part in pair.split("=", 1))
        mapping[external] = ours
    settings = ExternalSettings(
        mapping,
        args.allow_shared_patients,
        args.allow_duplicates,
        args.accept_altered_package,
        site_column=args.site_column,
        sets=set_options(args),
    )
    out = external_test(args.run_dir, args.cohort, args.out, settings, overwrite=args.overwrite, n_boot=args.bootstrap)
    print(headline_text(out))
    for line in coverage_lines(RunFolder(out).metrics().get("conformal")):
        print(line)
    for line in _image_lines(RunFolder(out).record()):
        print(line)
    print(f"Report: {out / REPORT}")
    print(f"Test folder: {out}")


def _image_lines(record) -> list[str]:
    """What an external test's image check found, for the terminal (an earlier version's test: nothing)."""
    from glioscope.leakcheck import LEGACY_NOTE, NOT_CHECKED
    from glioscope.rundir import DUPLICATES

    images = (record.external or {}).get("images")
    if not images:
        return []
    if not images.get("checked"):
        return [f"warning: {NOT_CHECKED}"]
    lines = [
        f"Images: {images['identical']} identical to training images, {images['near_identical']} near-identical "
        f"pair(s) ({images['near']})"
    ]
    if images["near_identical"]:
        lines[0] = "warning: " + lines[0]
    lines += [
        f"  external patient {b} ~ training patient {_short(a)}: {n} image pair(s)" for a, b, n in images["patients"]
    ]
    more = images.get("patient_pairs", 0) - len(images["patients"])
    if more > 0:
        lines.append(f"  and {more} more patient pair(s) ({DUPLICATES} in the output lists every image pair)")
    if images.get("legacy_hash"):
        lines.append(f"note: {LEGACY_NOTE}")
    return lines


def _short(patient: str) -> str:
    """A package's training patient ids are hashed: a hash is shown by its first 12 characters."""
    hashed = len(patient) == 64 and all(c in "0123456789abcdef" for c in patient)
    return f"{patient[:12]}… (hashed id)" if hashed else patient


def _leakcheck(args) -> None:
    from glioscope.leakcheck import check_cohorts

    found, shared = check_cohorts(*args.cohorts, recipe=args.recipe)
    print(f"{len(shared)} patient id(s) in both cohorts" + (f": {', '.join(shared[:10])}" if shared else ""))
    print(f"{len(found.exact)} identical image(s), {len(found.near)} near-identical pair(s) ({found.words()})")
    for a, b, n in found.patients[:20]:
        print(f"  patient {a} ~ patient {b}: {n} image pair(s)")
    if args.out:
        from glioscope.util.atomic import write_csv

        write_csv(args.out, found.frame())
        print(f"Pairs: {args.out}")
