"""The slices that decided: an attention run's most attended slices in its report, in `glioscope predict` (one study
and many) and in the web app's prediction."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from glioscope import split
from glioscope.cli import main
from glioscope.demo import GRADES, PATIENT_REGEX, _radiomics_cohort
from glioscope.ingest import ingest
from glioscope.report import write_report
from glioscope.rundir import ATTENTION, ATTENTION_SLICES, REPORT, RunFolder
from glioscope.trained import TrainedRun

SMALL = ["backbone.name=smallcnn", "backbone.weights=none", "data.slices.size=32", "data.slices.channels=stack3",
         "data.slices.min_tumour_area=4", "evaluate.bootstrap=20", "attention.epochs=3", "attention.members=1",
         "attention.weight_decay=[0.01]"]  # fmt: skip


@pytest.fixture(scope="module")
def attention_run(tiny_phantom, module_tmp, monkeypatch_module):
    root = module_tmp
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(root / "cache"))
    frame, _ = ingest([tiny_phantom / "imagefolder"], root / "cohort", format="imagefolder",
                      patient_regex=PATIENT_REGEX, select=GRADES, progress=False, echo=None)  # fmt: skip
    table, meta = split.make_splits(frame, folds=3, seed=0)
    split.save(root / "splits", table, meta)
    cohort = _radiomics_cohort(tiny_phantom, root)
    out = root / "runs" / "mil"
    args = ["cv", "mil-tumour", "--cohort", str(cohort), "--splits", str(root / "splits"), "-o", str(out)]
    assert main(args + [a for item in SMALL for a in ("--set", item)]) == 0
    rows = pd.read_csv(cohort / "cohort.csv", dtype=str, keep_default_na=False)
    return {"run": RunFolder(out), "cohort": cohort, "rows": rows, "root": root}


def _slices_of(run: RunFolder, patient: str) -> set[int]:
    table = pd.read_csv(run / ATTENTION, dtype={"patient_id": str})
    return set(table.loc[table["patient_id"] == patient, "slice_index"].astype(int))


def _check_ranked(ranked: list[dict], slices: set[int]) -> None:
    weights = [a["attention"] for a in ranked]
    assert 1 <= len(ranked) <= 5 and [a["rank"] for a in ranked] == list(range(1, len(ranked) + 1))
    assert weights == sorted(weights, reverse=True) and 0 < sum(weights) <= 1 + 1e-6
    assert {a["slice_index"] for a in ranked} <= slices and len({a["slice_index"] for a in ranked}) == len(ranked)


def test_the_report_shows_the_top_slices_of_a_few_patients(attention_run):
    run = attention_run["run"]
    html = (run / REPORT).read_text(encoding="utf-8")
    assert "<h2>Slices that decided</h2>" in html and "where the model looked, not why" in html
    attention = pd.read_csv(run / ATTENTION, dtype={"patient_id": str})
    shown = re.findall(r'<div class="attended" data-patient="([^"]+)">(.*?)</div></div>', html, re.S)
    assert len(shown) == min(6, attention["patient_id"].nunique()) and len({p for p, _ in shown}) == len(shown)
    for patient, block in shown:
        mine = attention[attention["patient_id"] == patient].sort_values("rank")
        pictures = re.findall(r'<figure class="attended-slice"><img src="data:image/png;base64,', block)
        captions = re.findall(r"slice #(\d+) · attention ([0-9.]+)", block)
        assert len(pictures) == len(captions) // 2 == min(3, len(mine))  # the caption is the alt text too
        top = mine.head(3)
        assert [int(c[0]) for c in captions[1::2]] == top["slice_index"].astype(int).tolist()
        assert np.allclose([float(c[1]) for c in captions[1::2]], top["attention"], atol=0.0006)


def test_without_its_pictures_the_report_lists_the_slices_in_a_table(attention_run, tmp_path):
    import shutil

    copy = tmp_path / "mil"
    shutil.copytree(attention_run["run"].path, copy)
    (copy / ATTENTION_SLICES).unlink()
    html = write_report(copy, n_boot=10).read_text(encoding="utf-8")
    section = html.split("<h2>Slices that decided</h2>")[1].split("<h2>")[0]
    assert "data:image/png" not in section and "The run kept no pictures" in section
    rows = re.findall(r'<tr><td class="label">([^<]+)</td><td class="label">[^<]+</td><td>slice #(\d+)</td>', section)
    attention = pd.read_csv(copy / ATTENTION, dtype={"patient_id": str})
    patients = list(dict.fromkeys(p for p, _ in rows))
    assert len(patients) == min(6, attention["patient_id"].nunique())
    for patient in patients:
        top = attention[attention["patient_id"] == patient].sort_values("rank").head(3)
        assert [int(s) for p, s in rows if p == patient] == top["slice_index"].astype(int).tolist()


def test_predict_lists_each_patients_most_attended_slices(attention_run, capsys):
    run, rows = attention_run["run"], attention_run["rows"]
    first = rows.iloc[0]
    capsys.readouterr()
    assert main(["predict", str(run.path), first["path"], "--mask", first["mask_path"]]) == 0
    printed = capsys.readouterr()
    result = json.loads(printed.out)
    patient = result["patients"][0]
    _check_ranked(patient["attention"], _study_slices(run, first))
    assert all("image" not in a and a["source_path"] for a in patient["attention"])
    assert f"slices that decided: #{patient['attention'][0]['slice_index']} (" in printed.err
    assert any(n.startswith("attention:") for n in result["notes"])


def _study_slices(run: RunFolder, row) -> set[int]:
    """The slice indices the run takes from one study (what predict embeds)."""
    trained = TrainedRun(run.path)
    inputs = trained.study_inputs(row["path"], row["mask_path"])
    return set(inputs.slice_table["slice_index"].astype(int))


def test_batch_prediction_writes_them_in_its_json_and_csv(attention_run, capsys):
    run, out = attention_run["run"], attention_run["root"] / "batch" / "predictions.csv"
    capsys.readouterr()
    assert main(["predict", str(run.path), str(attention_run["cohort"]), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.with_suffix(".json").read_text())
    table = pd.read_csv(out, dtype={"patient_id": str})
    assert len(result["patients"]) == len(table) == attention_run["rows"]["patient_id"].nunique()
    for patient, line in zip(result["patients"], table["slices_that_decided"]):
        _check_ranked(patient["attention"], _slices_of(run, patient["patient_id"]))
        expected = ", ".join(f"#{a['slice_index']} ({a['attention']:.2f})" for a in patient["attention"])
        assert line == expected and f"slices that decided: {expected}" in printed


def test_the_web_app_returns_them_with_thumbnails(attention_run):
    pytest.importorskip("fastapi")
    from test_serve import make_app, signed_in

    run, rows = attention_run["run"], attention_run["rows"]
    client = signed_in(make_app(run.path.parent))
    first = rows.iloc[0]
    files = [("files", (first["path"].rsplit("/", 1)[-1], open(first["path"], "rb").read()))]
    mask = ("mask", (first["mask_path"].rsplit("/", 1)[-1], open(first["mask_path"], "rb").read()))
    answer = client.post("/api/predict", data={"model": "mil"}, files=[*files, mask])
    assert answer.status_code == 200, answer.text
    patient = answer.json()["patients"][0]
    _check_ranked(patient["attention"], _study_slices(run, first))
    assert all(a["thumbnail"].startswith("data:image/png;base64,") for a in patient["attention"])
    page = client.post("/predict", data={"model": "mil"}, files=[*files, mask]).text
    assert page.count('<figure class="attended"') == len(patient["attention"]) and "Slices that decided" in page
