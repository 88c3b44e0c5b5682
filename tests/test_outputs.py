"""Outputs that are safe to open: CSV cells a spreadsheet would run are neutralised, ids that look like missing
values stay ids, control characters never reach the terminal raw, and files that belong together are written
together."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from glioscope import cohort, split
from glioscope.batch import write_batch
from glioscope.cli import main
from glioscope.evaluate.run import evaluate_run
from glioscope.report.testing import fake_run, fake_splits
from glioscope.rundir import RunFolder
from glioscope.util import atomic, csvfiles
from glioscope.util.terminal import printable

# Ids a spreadsheet would run as a formula, ids pandas would read as missing, and an id with an escape sequence.
STRANGE = [
    '=HYPERLINK("http://x")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\tTAB",
    "\rCR",
    "NA",
    "nan",
    "None",
    "null",
    "",
    "N/A",
    "\x1b[2Jcleared",
    "-1.5",
]


def test_formula_cells_are_neutralised_on_disk_and_read_back_as_they_were(tmp_path):
    frame = pd.DataFrame({"patient_id": STRANGE, "probability": np.linspace(-1, 1, len(STRANGE))})
    atomic.write_csv(tmp_path / "t.csv", frame)
    raw = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False)["patient_id"]
    for value, written in zip(STRANGE, raw):
        dangerous = value[:1] in ("=", "+", "-", "@", "\t", "\r") and value != "-1.5"
        assert written == ("'" + value if dangerous else value), value  # a number stays a number
    back = csvfiles.read(tmp_path / "t.csv")
    assert list(back["patient_id"]) == STRANGE
    assert np.allclose(csvfiles.numbers(back, ["probability"])["probability"], frame["probability"])


def test_ids_that_look_missing_or_like_formulas_survive_a_run_folder(tmp_path):
    ids = [i for i in STRANGE if i] + [f"P{k}" for k in range(12)]  # every id a patient of a fake run
    splits = fake_splits(len(ids), ("II", "III"), folds=2, seed=3)
    splits["patient_id"] = splits["patient_id"].map(dict(zip(sorted(splits["patient_id"].unique()), ids)))
    run = fake_run(tmp_path / "run", models=("m",), class_names=("II", "III"), splits=splits)
    metrics = evaluate_run(run, n_boot=10)
    assert metrics["cv"]["m"]["patient"]["n_patients"] == len(ids)  # no patient lost as a missing value
    folder = RunFolder(run)
    assert set(folder.predictions(["II", "III"])["patient_id"]) == set(ids)
    patients = csvfiles.read(run / "predictions_patients.csv")
    assert set(patients["patient_id"]) == set(ids)
    assert set(folder.cohort()["patient_id"]) == set(ids) and set(split.fold_assignment(run).index) == set(ids)


def _image_folder(root: Path, names: list[str]) -> Path:
    for k, name in enumerate(names):
        (root / "II").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((16, 16), 40 + k, np.uint8)).save(root / "II" / name)
    return root


def test_control_characters_of_data_are_escaped_on_the_terminal(tmp_path, capsys):
    source = _image_folder(tmp_path / "images", ["a_1.png", "b_1.png"])
    (source / "II" / "evil\x1b[2J_1.png").write_bytes(b"not a png")  # a file name that clears the screen
    assert main(["ingest", str(source), "--format", "imagefolder", "-o", str(tmp_path / "cohort")]) == 0
    out = capsys.readouterr().out
    assert "evil\\x1b[2J_1.png" in out and "\x1b" not in out
    assert main(["split", str(tmp_path / "no\x1b]0;title\x07where"), "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "no\\x1b]0;title\\x07where" in err and "\x1b" not in err and "\x07" not in err
    assert printable("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


def test_ingest_keeps_ids_that_look_missing(tmp_path):
    source = _image_folder(tmp_path / "images", ["NA_1.png", "nan_1.png", "None_2.png", "null_1.png"])
    frame, _ = ingest_ids(source, tmp_path / "cohort")
    assert sorted(frame["patient_id"]) == ["NA", "None", "nan", "null"]
    assert sorted(cohort.load(tmp_path / "cohort")["patient_id"]) == ["NA", "None", "nan", "null"]


def ingest_ids(source: Path, out: Path):
    from glioscope.ingest import ingest

    return ingest([source], out, format="imagefolder", patient_regex=r"^(?P<patient>[^_]+)_", echo=None, progress=False)


def _full_disk(suffix: str):
    original = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name.startswith(".") and suffix in self.name:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return original(self, *args, **kwargs)

    return write_text


def test_a_batch_csv_and_its_json_are_written_together_or_not_at_all(tmp_path, monkeypatch):
    result = {
        "classes": ["II", "III"],
        "skipped": [],
        "notes": [],
        "patients": [
            {
                "patient_id": "=1+1",
                "prediction": "II",
                "probabilities": {"II": 0.7, "III": 0.3},
                "n_samples": 1,
                "n_inputs": 1,
                "seen_in_training": False,
            }
        ],
    }
    monkeypatch.setattr(Path, "write_text", _full_disk(".json"))
    with pytest.raises(OSError):
        write_batch(result, tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []  # no CSV without its JSON, and no temporary file
    monkeypatch.undo()
    csv, js = write_batch(result, tmp_path / "out.csv")
    assert csvfiles.read(csv)["patient_id"].tolist() == ["=1+1"] and json.loads(js.read_text())["patients"]
    assert pd.read_csv(csv, dtype=str)["patient_id"].tolist() == ["'=1+1"]  # safe in a spreadsheet


def test_metrics_and_their_patient_table_are_written_together(tmp_path, monkeypatch):
    run = fake_run(tmp_path / "run", models=("m",), class_names=("II", "III"), n_patients=12, folds=2)
    monkeypatch.setattr(Path, "write_text", _full_disk("metrics.json"))
    with pytest.raises(OSError):
        evaluate_run(run, n_boot=5)
    assert not (run / "metrics.json").exists() and not (run / "predictions_patients.csv").exists()
    assert not [p for p in run.iterdir() if p.name.endswith(".partial")]


def test_a_full_disk_names_the_output_not_its_temporary_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Path, "write_text", _full_disk(".json"))
    with pytest.raises(OSError) as caught:
        atomic.write_json(tmp_path / "result.json", {"a": 1})
    assert caught.value.filename == str(tmp_path / "result.json") and caught.value.errno == errno.ENOSPC
    with pytest.raises(OSError) as caught:
        write_batch({"classes": [], "patients": [], "skipped": [], "notes": []}, tmp_path / "out.csv")
    assert caught.value.filename == str(tmp_path / "out.json")
    assert list(tmp_path.iterdir()) == []
