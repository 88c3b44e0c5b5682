"""Every input accounted for: only MR is kept, what is kept decodes, outputs are safe, logs stay quiet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pydicom.data
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000, SecondaryCaptureImageStorage, generate_uid

from glioscope.cli import main
from glioscope.cohort import format_summary
from glioscope.evaluate.metrics import classification_metrics
from glioscope.ingest import ingest
from glioscope.io.dicom import decode_problem, read_header
from glioscope.io.testing import write_dicom_series
from glioscope.util.atomic import atomic_dir
from glioscope.util.progress import StageLine, progress_bar

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"


def read(*sources, **options):
    return ingest([Path(s) for s in sources], None, workers=1, progress=False, echo=None, **options)


def undecodable_copy(folder: Path, out: Path) -> Path:
    """A copy of a series whose pixel data claims JPEG 2000 but holds no codestream."""
    out.mkdir(parents=True)
    series = generate_uid()
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = JPEG2000
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PixelData = encapsulate([b"\xff\x4f not a codestream"])
        ds.save_as(out / path.name, enforce_file_format=True)
    return out


# --- only MR, and only what decodes ------------------------------------------------------------------


def test_ingest_keeps_mr_series_and_says_why_it_skips_the_others(tmp_path):
    write_dicom_series(tmp_path / "tree" / "mr", "P1", "AX T1")
    write_dicom_series(tmp_path / "tree" / "ct", "P1", "HEAD CT", Modality="CT")
    write_dicom_series(tmp_path / "tree" / "dose", "P1", "DOSE", Modality="RTDOSE")
    write_dicom_series(tmp_path / "tree" / "sc", "P1", "SCREEN", SOPClassUID=SecondaryCaptureImageStorage)
    undecodable_copy(tmp_path / "tree" / "mr", tmp_path / "tree" / "j2k")
    frame, summary = read(tmp_path / "tree")
    assert (
        len(frame) == 1
        and frame.loc[0, "modality"] == "MR"
        and frame.loc[0, "transfer_syntax"] == "1.2.840.10008.1.2.1"
    )
    reasons = sorted(s["reason"].split(": ", 1)[1] for s in summary["skipped"])
    assert (
        reasons[0]
        == "SOP class Secondary Capture Image Storage: not an acquired MR image (a screenshot, map or derived object)"
    )
    assert "modality CT, not MR" in reasons and "modality RTDOSE, not MR" in reasons
    assert any(r.startswith("pixel data cannot be decoded (JPEG 2000 Image Compression") for r in reasons)
    assert "Skipped: 4 (" in format_summary(summary)
    wide, _ = read(tmp_path / "tree", modalities=None)  # --modality any
    assert sorted(wide["modality"]) == ["CT", "MR", "MR", "RTDOSE"]  # the screenshot too; never the undecodable one


def test_predict_refuses_a_ct_series_with_status_2(tiny_2d_run, tmp_path, capsys):
    write_dicom_series(tmp_path / "ct", "P9", "HEAD CT", Modality="CT")
    assert main(["predict", str(tiny_2d_run), str(tmp_path / "ct")]) == 2
    assert "modality CT, not MR" in capsys.readouterr().err


def test_predict_reports_every_series_of_a_folder(tiny_2d_run, tmp_path, capsys):
    study = tmp_path / "study"
    write_dicom_series(
        study / "sag", "P7", "SAG T1", n_slices=6, rows=32, cols=32, orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    )
    undecodable_copy(study / "sag", study / "broken-a")
    undecodable_copy(study / "sag", study / "broken-b")
    capsys.readouterr()
    assert main(["predict", str(tiny_2d_run), str(study)]) == 0
    result = json.loads(capsys.readouterr().out)
    status = Counter(entry["status"] for entry in result["inputs"])
    assert status == {"predicted": 1, "skipped": 2}
    skipped = [e for e in result["inputs"] if e["status"] == "skipped"]
    assert all("cannot be decoded" in e["reason"] for e in skipped)
    only_broken = tmp_path / "only-broken"
    undecodable_copy(study / "sag", only_broken)
    assert main(["predict", str(tiny_2d_run), str(only_broken)]) == 2  # nothing predicted: not a success
    assert "cannot be decoded" in capsys.readouterr().err


SYNTAXES = {  # pydicom's own test files, one per transfer syntax glioscope must read
    "JPEG Baseline (Process 1)": "SC_rgb_jpeg_dcmtk.dcm",
    "JPEG Extended (Process 2 and 4)": "JPGExtended.dcm",
    "JPEG Lossless, SV1": "SC_rgb_jpeg_gdcm.dcm",
    "JPEG-LS Lossless": "MR_small_jpeg_ls_lossless.dcm",
    "JPEG-LS Near-Lossless": "JPEGLSNearLossless_16.dcm",
    "JPEG 2000": "JPEG2000.dcm",
    "JPEG 2000 Lossless": "MR_small_jp2klossless.dcm",
    "RLE Lossless": "MR_small_RLE.dcm",
    "Deflated Explicit VR Little Endian": "image_dfl.dcm",
    "YBR_FULL_422, uncompressed": "SC_ybr_full_422_uncompressed.dcm",
    "Explicit VR Big Endian": "MR_small_bigendian.dcm",
}


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_compressed_and_unusual_pixel_data_decodes(syntax):
    path = PYDICOM_FILES / SYNTAXES[syntax]
    assert isinstance(read_header(path), dict)  # its header is not misread as truncated or mis-sized
    assert decode_problem(str(path)) == ""


def test_the_pydicom_test_corpus_is_accounted_for_file_by_file():
    frame, summary = read(PYDICOM_FILES, format="dicom")
    kinds = Counter()
    for skip in summary["skipped"]:
        reason = skip["reason"].split(": ", 1)[1] if skip["reason"].startswith("series ") else skip["reason"]
        kinds[reason.split(" (")[0].split(" as /")[0]] += 1
    assert len(frame) == 6 and set(frame["modality"]) == {"MR"}
    assert kinds == {
        "DICOM without pixel data": 59,
        "same SOPInstanceUID": 25,
        "truncated or damaged DICOM": 6,
        "a DICOMDIR": 6,
        "modality CT, not MR": 6,
        "not a DICOM file": 5,
        "modality missing, not MR": 4,
        "modality US, not MR": 4,
        "modality OT, not MR": 3,
        "modality CR, not MR": 3,
        "slices have different orientations": 3,
        "truncated DICOM: pixel data needs 8192 bytes": 1,
        "DICOM header has an unreadable value": 1,
        "modality SEG, not MR": 1,
        "modality RTDOSE, not MR": 1,
        "modality NM, not MR": 1,
    }, kinds
    wide, everything = read(PYDICOM_FILES, format="dicom", modalities=None)
    assert len(wide) == 19
    broken = [s["reason"] for s in everything["skipped"] if "cannot be decoded" in s["reason"]]
    assert len(broken) == 1 and "JPEG Extended" in broken[0]  # JPEG-lossy.dcm: a damaged stream, named


# --- the run accounts for its rows ---------------------------------------------------------------------


def test_cv_says_which_rows_it_left_out_and_which_classes_are_empty(tiny_phantom, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GLIOSCOPE_CACHE", str(tmp_path / "cache"))
    frame, _ = read(tiny_phantom / "imagefolder", format="imagefolder", patient_regex=r"^(?P<patient>[^_]+)_")
    frame = frame[frame["label"].isin(["II", "III"])].copy()  # two grades for a three-grade recipe
    frame.loc[frame.index[:2], "label"] = ""  # and two rows nobody labelled
    (tmp_path / "cohort").mkdir()
    frame.to_csv(tmp_path / "cohort" / "cohort.csv", index=False)
    fast = [
        "train.epochs=1",
        "cv.folds=2",
        "data.slices.size=64",
        "evaluate.bootstrap=30",
        "data.select={}",
        "evaluate.gradcam_per_class=0",
        "model.weights=none",
        "model.name=alexnet",
    ]
    args = [a for item in fast for a in ("--set", item)]
    capsys.readouterr()
    assert main(["cv", "sdl", "--cohort", str(tmp_path / "cohort"), "-o", str(tmp_path / "run"), *args]) == 0
    out = capsys.readouterr().out
    assert "note: 2 cohort row(s) have no 'label' and are left out" in out
    assert "class(es) IV of task.classes have no patient in this cohort" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["cv"]["sdl"]["patient"]["pooled"]
    present = [metrics["per_class"][c]["f1"] for c in ("II", "III")]
    assert metrics["per_class"]["IV"]["f1"] is None and metrics["macro_f1"] == pytest.approx(np.mean(present))


def test_macro_metrics_and_their_intervals_skip_a_class_without_cases():
    y = np.array([0, 0, 1, 1, 1])
    proba = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1]])
    m = classification_metrics(y, proba, ["II", "III", "IV"])
    f1 = [m["per_class"][c]["f1"] for c in ("II", "III")]
    assert np.isnan(m["per_class"]["IV"]["f1"]) and m["macro_f1"] == pytest.approx(np.mean(f1))
    assert np.isnan(m["per_class"]["IV"]["sensitivity"]) and m["macro_sensitivity"] == pytest.approx((0.5 + 2 / 3) / 2)


def test_too_few_patients_and_folds_for_a_holdout_recipe_are_clear(tmp_path, capsys):
    from PIL import Image

    rows = []
    for k in range(3):
        Image.fromarray(np.full((32, 32), 40 * k, np.uint8)).save(tmp_path / f"p{k}.png")
        rows.append(
            {"path": str(tmp_path / f"p{k}.png"), "patient_id": f"p{k}", "label": str(k % 2), "sequence": "FLAIR"}
        )
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    ingest([tmp_path / "manifest.csv"], tmp_path / "cohort", progress=False, echo=None)
    base = ["cv", "eff", "--cohort", str(tmp_path / "cohort"), "--quick", "--set", "model.weights=none"]
    assert main([*base, "-o", str(tmp_path / "a")]) == 2
    assert "a test set of 10% of 3 patients holds out none" in capsys.readouterr().err
    assert main([*base, "--folds", "2", "-o", str(tmp_path / "b")]) == 2  # honoured: 2 folds, then too few to validate
    captured = capsys.readouterr()
    assert "--folds 2: 2-fold cross-validation of every patient" in captured.out
    assert "too few for an inner validation split" in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # refused before any output
    assert main([*base, "--folds", "2", "--splits", str(tmp_path), "-o", str(tmp_path / "c")]) == 2


def test_split_drops_unlabelled_rows_only_when_asked(tiny_phantom, tmp_path, capsys):
    frame, _ = read(tiny_phantom / "brats")
    frame.loc[frame.index[:3], "label"] = ""
    (tmp_path / "cohort").mkdir()
    frame.to_csv(tmp_path / "cohort" / "cohort.csv", index=False)
    assert main(["split", str(tmp_path / "cohort"), "--folds", "2", "-o", str(tmp_path / "s")]) == 2
    assert "--drop-unlabelled" in capsys.readouterr().err
    assert (
        main(["split", str(tmp_path / "cohort"), "--folds", "2", "--drop-unlabelled", "-o", str(tmp_path / "s")]) == 0
    )
    assert "3 cohort row(s) without a 'label' left out" in (tmp_path / "s" / "summary.txt").read_text()
    assert len(pd.read_csv(tmp_path / "s" / "splits.csv")) == len(frame) - 3


# --- outputs are safe -------------------------------------------------------------------------------------


def test_predict_output_is_never_a_surprise(tiny_2d_run, tiny_phantom, tmp_path, capsys):
    patient = sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]
    (tmp_path / "folder").mkdir()
    assert main(["predict", str(tiny_2d_run), str(patient), "-o", str(tmp_path / "folder")]) == 2
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "p.json").write_text("mine")
    assert main(["predict", str(tiny_2d_run), str(patient), "-o", str(tmp_path / "p.json")]) == 2
    assert "--overwrite" in capsys.readouterr().err and (tmp_path / "p.json").read_text() == "mine"
    assert main(["predict", str(tiny_2d_run), str(patient), "-o", str(tmp_path / "p.json"), "--overwrite"]) == 0
    assert (tmp_path / "p.json").read_text().startswith("{")
    assert main(["predict", str(tiny_2d_run), str(patient), "-o", str(patient / "p.json")]) == 2
    assert "inside the input" in capsys.readouterr().err


def test_ingest_output_inside_a_source_and_links_out_of_it_are_refused(tmp_path, capsys):
    write_dicom_series(tmp_path / "tree" / "s1", "P1", "AX T1")
    write_dicom_series(tmp_path / "elsewhere", "P2", "AX T2")
    os.symlink(tmp_path / "elsewhere" / "1-01.dcm", tmp_path / "tree" / "s1" / "outside.dcm")
    os.symlink(tmp_path / "elsewhere", tmp_path / "tree" / "linked-folder")
    assert main(["ingest", str(tmp_path / "tree"), "-o", str(tmp_path / "tree" / "cohort")]) == 2
    assert "inside the source" in capsys.readouterr().err
    frame, summary = read(tmp_path / "tree")
    assert set(frame["patient_id"]) == {"P1"} and frame.loc[0, "n_slices"] == 4  # the link was not followed
    notes = [s for s in summary["skipped"] if "outside the source folder: not followed" in s["reason"]]
    assert sorted(Path(s["path"]).name for s in notes) == ["linked-folder", "outside.dcm"]


def test_a_killed_writer_leaves_nothing_the_next_run_does_not_clean(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".phantom.{int(dead.stdout)}.abcd.partial"
    stale.mkdir()
    (stale / "half-written.dcm").write_bytes(b"\0")
    live = tmp_path / f".phantom.{os.getpid()}.efgh.partial"  # this process: still writing, kept
    live.mkdir()
    with atomic_dir(tmp_path / "phantom") as folder:
        (folder / "done.txt").write_text("ok")
    assert not stale.exists() and live.exists() and (tmp_path / "phantom" / "done.txt").is_file()


# --- quiet logs -------------------------------------------------------------------------------------------


def test_progress_in_a_log_is_one_line_per_stage(capsys, monkeypatch):
    monkeypatch.delenv("GLIOSCOPE_PROGRESS", raising=False)
    bar = progress_bar(range(500), desc="decoding items", unit="file")  # pytest's stderr is not a terminal
    assert isinstance(bar, StageLine)
    assert sum(1 for _ in bar) == 500
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("\n") == 1 and err.startswith("decoding items: 500 file(s) in")
    monkeypatch.setenv("GLIOSCOPE_PROGRESS", "bar")
    assert not isinstance(progress_bar(range(3), desc="x", disable=False), StageLine)


def test_a_model_that_cannot_be_built_fails_before_the_run_folder_exists(sagittal_cohort, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "cv",
                "alexnet",
                "--cohort",
                str(sagittal_cohort),
                "-o",
                str(out),
                "--folds",
                "2",
                "--set",
                "model.name=smallcnn",
                "--set",
                "model.weights=none",
            ]
        )
        == 2
    )  # alexnet's head: hidden
    assert "only the linear head" in capsys.readouterr().err and not out.exists()
