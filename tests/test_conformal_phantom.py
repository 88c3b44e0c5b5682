"""Prediction sets end to end on a phantom whose truth is known: a radiomics model trained on an MGMT phantom with
no MGMT signal (mgmt_effect=0) cannot tell, so most of its sets hold both classes; on a larger independent
phantom (another synth seed) `test` measures their coverage; a package gives its run's sets; the web app shows
them with the fold models' spread and the run's CV figure; a bad --level is refused everywhere."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from glioscope.cli import main

N_TRAIN, N_TEST = 20, 40


@pytest.fixture(scope="module")
def phantom(module_tmp, monkeypatch_module, mgmt_cohort):
    root = module_tmp
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(root / "cache"))
    train, _ = mgmt_cohort(root, "train", N_TRAIN, seed=0, effect=0.0)
    test, rows = mgmt_cohort(root, "test", N_TEST, seed=1, effect=0.0)
    run = root / "runs" / "radiomics"
    settings = ["--set", "cv.folds=4", "--set", "evaluate.bootstrap=20", "--permutations", "0"]
    assert main(["cv", "radiomics", "--quick", "--cohort", str(train), "-o", str(run), *settings]) == 0
    return {"root": root, "run": run, "test": test, "rows": rows}


def test_without_signal_most_sets_hold_both_classes_and_say_how_they_were_calibrated(phantom, capsys):
    out = phantom["root"] / "batch.csv"
    assert main(["predict", str(phantom["run"]), str(phantom["test"]), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.with_suffix(".json").read_text())
    sets = [p["prediction_set"] for p in result["patients"]]
    assert len(sets) == N_TEST and sum(sorted(s) == ["0", "1"] for s in sets) > N_TEST / 2
    assert all(p["uncertain"] == (len(p["prediction_set"]) > 1) for p in result["patients"])
    assert all(
        p["prediction_set"] == [p["prediction"]] or p["uncertain"] for p in result["patients"] if p["prediction_set"]
    )
    said = result["conformal"]
    assert said["level"] == 0.9 and said["mondrian"] is False and said["n_patients"] == N_TRAIN
    assert "single fold models" in said["caveat"] and any("calibrated on" in n for n in result["notes"])
    table = pd.read_csv(out, dtype=str)
    assert {"prediction_set", "uncertain"} <= set(table.columns)
    assert "uncertain: 0 or 1" in printed or "uncertain: 1 or 0" in printed
    strict = phantom["root"] / "strict.csv"
    assert main(["predict", str(phantom["run"]), str(phantom["test"]), "--level", "0.5", "-o", str(strict)]) == 0
    narrow = json.loads(strict.with_suffix(".json").read_text())
    assert narrow["conformal"]["level"] == 0.5
    assert sum(map(len, (p["prediction_set"] for p in narrow["patients"]))) < sum(map(len, sets))


@pytest.mark.parametrize("mondrian", [False, True])
def test_coverage_on_an_independent_phantom_is_within_its_interval(phantom, capsys, mondrian):
    out = phantom["root"] / f"test-{mondrian}"
    extra = ["--mondrian"] if mondrian else []
    args = ["test", str(phantom["run"]), "--cohort", str(phantom["test"]), "-o", str(out), "--bootstrap", "20"]
    assert main([*args, *extra]) == 0
    printed = capsys.readouterr().out
    found = json.loads((out / "metrics.json").read_text())["conformal"]
    low, high = found["ci"]
    assert found["n"] == N_TEST and low <= found["coverage"] <= high and low <= 0.9  # not below the level
    assert found["uncertain"] > 0.5 and found["empty"] == 0 and found["calibration"]["n_patients"] == N_TRAIN
    assert (set(found.get("per_class", {})) == {"0", "1"}) == mondrian
    assert f"Prediction sets at 90% ({'Mondrian' if mondrian else 'standard'}" in printed
    report = (out / "report.html").read_text()
    assert "Prediction sets at 90%" in report and "Empirical coverage" in report and "Selective prediction" in report
    assert (out / "figures" / "conformal_coverage.png").is_file() and (
        out / "figures" / "test_risk_coverage.png"
    ).is_file()
    assert "Selective prediction" in (phantom["run"] / "report.html").read_text()


@pytest.mark.parametrize("level", ["0", "1", "1.5", "90", "-0.1"])
def test_a_level_outside_zero_to_one_is_refused_by_predict_test_and_serve(phantom, capsys, level, tmp_path):
    run, cohort = str(phantom["run"]), str(phantom["test"])
    for args in (
        ["predict", run, cohort, "--level", level],
        ["test", run, "--cohort", cohort, "-o", str(tmp_path / "t"), "--level", level],
        ["serve", str(phantom["run"].parent), "--level", level, "--port", "1"],
    ):
        assert main(args) == 2
        assert "--level must be a coverage strictly between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_a_package_gives_the_same_sets_as_its_run(phantom, tmp_path):
    package = tmp_path / "package"
    assert main(["export", str(phantom["run"]), "-o", str(package)]) == 0
    assert (package / "conformal.json").read_text() == (phantom["run"] / "conformal.json").read_text()
    outputs = {}
    for name, where in (("run", phantom["run"]), ("package", package)):
        out = tmp_path / f"{name}.csv"
        assert main(["predict", str(where), str(phantom["test"]), "--mondrian", "--level", "0.8", "-o", str(out)]) == 0
        outputs[name] = json.loads(out.with_suffix(".json").read_text())
    run, packaged = outputs["run"], outputs["package"]
    assert [p["prediction_set"] for p in run["patients"]] == [p["prediction_set"] for p in packaged["patients"]]
    assert run["conformal"] == packaged["conformal"] and run["conformal"]["mondrian"] is True
    (package / "conformal.json").write_text((package / "conformal.json").read_text().replace("0.", "0.9", 1))
    assert main(["predict", str(package), str(phantom["test"])]) == 2  # an altered calibration is refused


def test_the_web_page_shows_the_set_the_fold_spread_and_the_cv_figure_never_a_lone_class(phantom, capsys):
    from test_serve import TOKEN, signed_in

    from glioscope.serve import create_app
    from glioscope.evaluate.conformal import SetOptions

    client = signed_in(create_app(phantom["run"].parent, token=TOKEN, sets=SetOptions(0.9)))
    row = phantom["rows"][0]
    files = [
        ("files", (row["path"].name, row["path"].read_bytes())),
        ("mask", (row["mask_path"].name, row["mask_path"].read_bytes())),
    ]
    assert main(["predict", str(phantom["run"]), str(row["path"]), "--mask", str(row["mask_path"])]) == 0
    printed = capsys.readouterr()
    alone = json.loads(printed.out)["patients"][0]
    assert f"set at 90%: {'uncertain: ' if alone['uncertain'] else ''}" in printed.err
    answer = client.post("/api/predict", data={"model": "radiomics"}, files=files)
    assert answer.status_code == 200, answer.text
    verdict = answer.json()["verdict"]
    assert verdict["set"] == answer.json()["patients"][0]["prediction_set"] == alone["prediction_set"]
    assert verdict["level"] == 0.9 and answer.json()["patients"][0]["probabilities"] == alone["probabilities"]
    assert verdict["folds"]["n"] == 4 and verdict["folds"]["min"] <= verdict["probability"] <= verdict["folds"]["max"]
    assert verdict["cv"]["metric"] == "AUC" and len(verdict["cv"]["ci"]) == 2
    page = client.post("/predict", data={"model": "radiomics"}, files=files).text
    heading = page.split('<h1 id="prediction-set">', 1)[1].split("</h1>", 1)[0]
    assert heading == verdict["shown"] and (heading.startswith("uncertain: ") == verdict["uncertain"])
    assert "prediction set at 90%" in page and f"of 4 say {verdict['most_probable']}" in page
    assert f"AUC {verdict['cv']['value']:.3f}" in page and "patient level" in page
    assert page.count("<h1") == 1  # the set is the only heading: no class stands alone above it
