"""Logs a person can follow: epoch lines, each run's run.log, serve's request lines, the files named."""

from __future__ import annotations

import contextlib
import io
import re
import warnings

import pytest

from glioscope.cli import main
from glioscope.rundir import RUN_LOG
from glioscope.train.epoch_log import EpochLog
from glioscope.util.stagelog import StageLog

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d "
FAST = ["train.epochs=1", "cv.folds=2", "data.slices.size=64", "evaluate.bootstrap=20", "train.precision=fp32"]


def lines(path) -> list[str]:
    text = path.read_text(encoding="utf-8").splitlines()
    assert all(re.match(STAMP, line) for line in text), text  # every line has its time
    return [re.sub(STAMP, "", line) for line in text]


@pytest.fixture(scope="module")
def alexnet_run(sagittal_cohort, module_tmp, monkeypatch_module):
    """A one-epoch alexnet run of two folds, with what it printed."""
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(module_tmp / "cache"))
    printed = io.StringIO()
    args = [arg for item in FAST for arg in ("--set", item)]
    with contextlib.redirect_stdout(printed):
        assert main(["cv", "alexnet", "--cohort", str(sagittal_cohort), "-o", str(module_tmp / "run"), *args]) == 0
    return module_tmp / "run", printed.getvalue()


def test_each_epoch_line_names_the_fold_the_epoch_of_epochs_and_the_time_left(alexnet_run):
    _, printed = alexnet_run
    epochs = [line for line in printed.splitlines() if " · epoch " in line]
    assert len(epochs) == 2, printed  # one epoch in each of two folds
    for k, line in enumerate(epochs, 1):
        assert line.startswith(f"alexnet · fold {k}/2 · epoch 1/1 · train_loss ")
        assert re.search(r" · \d+\.\d s/epoch · ~0 s left in this fold$", line), line
        assert "val_loss" not in line or re.search(r"val_loss \d", line)


@pytest.mark.parametrize(
    "epoch, epochs, seconds, left",
    [(3, 30, [1.0, 1.0, 1.0], "~27 s left"), (1, 100, [6.0], "~9.9 min left"), (2, 2, [4.0, 5.0], "~0 s left")],
)
def test_the_time_left_is_the_mean_epoch_times_the_epochs_to_go(tmp_path, epoch, epochs, seconds, left):
    row = {"epoch": epoch, "lr": 0.001, "train_loss": 0.59, "train_accuracy": 0.71, "train_loss/net1": 0.5}
    line = EpochLog(tmp_path, "sdl", tensorboard=False).line({**row, "seconds": seconds[-1]}, epochs, seconds)
    assert line.startswith(f"sdl · epoch {epoch}/{epochs} · train_loss 0.59 · train_accuracy 0.71 · lr 0.001")
    assert line.endswith(f"{sum(seconds) / len(seconds):.1f} s/epoch · {left}") and "net1" not in line
    folded = EpochLog(tmp_path, "sdl", tensorboard=False, fold="fold 2/5").line(row, epochs, seconds)
    assert " · fold 2/5 · epoch " in folded and folded.endswith(f"{left} in this fold")


def test_a_deep_run_log_has_a_line_per_stage_and_its_notes(alexnet_run):
    run, printed = alexnet_run
    logged = lines(run / RUN_LOG)
    assert logged[0].startswith("started: recipe alexnet, cohort ")
    assert logged[1].startswith("cohort read: ") and logged[2].startswith("samples decoded: ")
    for fold in ("fold0 (1 of 2)", "fold1 (2 of 2)"):
        assert f"{fold} started" in logged
        assert any(re.fullmatch(rf"{re.escape(fold)} finished in \d+\.\d s", line) for line in logged)
    assert logged.index("fold0 (1 of 2) started") < logged.index("fold1 (2 of 2) started")
    ended = next(k for k, line in enumerate(logged) if re.fullmatch(r"finished in \d+\.\d s", line))
    assert logged.index("fold1 (2 of 2) started") < logged.index("report written") < ended
    notes = [line.strip() for line in printed.splitlines() if line.startswith(("note:", "warning:"))]
    assert notes and all(note in logged for note in notes)  # every note printed is in the log


def test_a_resumed_run_appends_to_its_log(alexnet_run, sagittal_cohort):
    run, _ = alexnet_run
    before = lines(run / RUN_LOG)
    args = [arg for item in FAST for arg in ("--set", item)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["cv", "alexnet", "--cohort", str(sagittal_cohort), "-o", str(run), "--resume", *args]) == 0
    after = lines(run / RUN_LOG)
    assert after[: len(before)] == before and after[len(before)].startswith("resumed: recipe alexnet")
    assert any(line.startswith("finished in ") for line in after[len(before) :])


def test_a_run_refused_before_its_inputs_writes_no_log(sagittal_cohort, tmp_path, capsys):
    out = tmp_path / "refused"
    assert main(["cv", "alexnet", "--cohort", str(sagittal_cohort), "-o", str(out), "--set", "cv.folds=99"]) == 2
    assert not (out / RUN_LOG).exists()  # nor a folder that would need --resume
    capsys.readouterr()


def test_a_stage_log_waits_for_its_file_carries_an_earlier_one_and_keeps_notes_and_warnings(tmp_path):
    earlier = tmp_path / "old" / "run.txt"
    earlier.parent.mkdir()
    earlier.write_text("2026-01-01T00:00:00+00:00 started\n", encoding="utf-8")
    log = StageLog()
    log("resumed")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), log.notes():
        print("note: 3 rows left out")
        print("an epoch line, not a note")
        print("  warning: split", end="")  # a note printed in two writes
        print(" across writes")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("weights saw these patients", UserWarning)
        log.to(tmp_path / "new" / "run.txt", earlier=earlier)
        log("fold0 started")
        print("note: the last", end="")  # no newline before the log ends
    assert "note: 3 rows left out\nan epoch line" in printed.getvalue()  # the terminal still gets everything
    assert lines(tmp_path / "new" / "run.txt") == [
        "started",
        "resumed",
        "note: 3 rows left out",
        "warning: split across writes",
        "warning: UserWarning: weights saw these patients",
        "fold0 started",
        "note: the last",
    ]
    silent = StageLog(tmp_path / "rank1.txt", enabled=False)
    silent("started")
    assert not (tmp_path / "rank1.txt").exists()


def test_serve_logs_each_request_without_its_token_or_query(tmp_path, capsys):
    pytest.importorskip("fastapi", reason="glioscope serve needs fastapi")
    from fastapi.testclient import TestClient

    from glioscope.serve import create_app

    token, key = "s3cret-launch-token", "viewer-key-0123"
    client = TestClient(create_app(tmp_path, token=token), base_url="http://127.0.0.1:8000")
    capsys.readouterr()
    client.get("/", params={"token": token})  # sets the cookie, then redirected to /
    client.get(f"/api/viewer/{key}/image", params={"x": "1"})  # no such study: 404
    TestClient(client.app, base_url="http://127.0.0.1:8000").get("/api/health", params={"token": "wrong"})
    printed = capsys.readouterr()
    assert printed.out == ""  # the log goes to stderr: stdout stays for what a command answers
    logged = printed.err.splitlines()
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (GET|POST) (/\S*) (\d{3}) \d+ ms"
    assert all(re.fullmatch(pattern, line) for line in logged), logged
    requests = [re.fullmatch(pattern, line).group(1, 2, 3) for line in logged]
    assert requests == [  # one line per request, the redirect and a refusal by the guard included
        ("GET", "/", "303"),
        ("GET", "/", "200"),
        ("GET", "/api/viewer/.../image", "404"),
        ("GET", "/api/health", "403"),
    ]
    text = "\n".join(logged)
    assert token not in text and key not in text and "?" not in text and "wrong" not in text


@pytest.mark.parametrize("options", [["--out"], ["--dicom-sr"], ["--out", "--dicom-sr"]])
def test_predict_names_each_file_it_writes_once(tiny_2d_run, tiny_phantom, tmp_path, capsys, options):
    study = sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]
    files = {option: tmp_path / f"written{k}{'.dcm' if option == '--dicom-sr' else '.json'}" for k, option in
             enumerate(options)}  # fmt: skip
    capsys.readouterr()
    given = [str(arg) for option, path in files.items() for arg in (option, path)]
    assert main(["predict", str(tiny_2d_run), str(study), *given]) == 0
    printed = capsys.readouterr()
    for path in files.values():
        assert path.is_file() and printed.err.count(f"Written: {path}") == 1, printed.err
    assert "Written" not in printed.out  # stdout stays the JSON alone
