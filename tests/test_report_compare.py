"""write_comparison: only runs on the same folds; one table with every model, patient level first."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from glioscope.errors import GlioscopeError
from glioscope.report import comparison_rows, write_comparison
from glioscope.split import check_same_folds
from glioscope.report.testing import fake_run, fake_splits


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    splits = fake_splits(n_patients=24, folds=3, seed=5)
    sdl = fake_run(root / "sdl", splits=splits, seed=1, label="SDL")
    alexnet = fake_run(root / "alexnet", models=["alexnet"], splits=splits, seed=2, signal=0.8, label="AlexNet")
    other = fake_run(root / "other", models=["alexnet"], splits=fake_splits(n_patients=24, folds=3, seed=6), seed=2)
    return root, sdl, alexnet, other


def test_runs_on_different_folds_are_refused(runs, tmp_path):
    _, sdl, _, other = runs
    with pytest.raises(GlioscopeError, match=r"runs .*sdl and .*other differ"):
        write_comparison([sdl, other], tmp_path / "comparison.html")
    assert not (tmp_path / "comparison.html").exists()


def test_a_run_missing_some_patients_is_compared_on_its_own_patients(runs, tmp_path):
    # A run on one MRI sequence lacks the patients without it: same folds otherwise.
    root, sdl, _, _ = runs
    splits = pd.read_csv(sdl / "splits.csv", dtype={"patient_id": str})
    gone = sorted(splits["patient_id"].unique())[:3]
    fewer = fake_run(tmp_path / "fewer", models=["alexnet"], splits=splits[~splits["patient_id"].isin(gone)], seed=3)
    with pytest.raises(GlioscopeError, match="in only one of them"):
        check_same_folds([sdl, fewer])  # strict: the same patients everywhere
    assert check_same_folds([sdl, fewer], partial=True) == 3
    rows = comparison_rows([sdl, fewer], n_boot=20)
    patients = rows[(rows["set"] == "cv") & (rows["level"] == "patient")].set_index("model")["n_patients"]
    assert patients["sdl/mean"] == 24 and patients["alexnet"] == 21
    text = write_comparison([sdl, fewer], tmp_path / "c.html", n_boot=20).read_text()
    assert "3 patient(s) are in only some of the runs" in text
    # Too little overlap is another cohort, not a missing sequence.
    renamed = splits.assign(
        patient_id=splits["patient_id"].where(splits["patient_id"].isin(gone), "X" + splits["patient_id"])
    )
    few = fake_run(tmp_path / "few", models=["alexnet"], splits=renamed, seed=3)
    with pytest.raises(GlioscopeError, match="share only 3 of 24"):
        check_same_folds([sdl, few], partial=True)


def test_comparison_table_has_every_model_patient_level_first(runs):
    _, sdl, alexnet, _ = runs
    rows = comparison_rows([sdl, alexnet], n_boot=50)
    assert list(rows["level"]) == ["patient"] * 4 + ["image"] * 4
    assert list(rows["model"][:4]) == ["sdl/net1", "sdl/net2", "sdl/mean", "alexnet"]
    assert list(rows["run"][:4]) == ["SDL"] * 3 + ["AlexNet"]
    assert (rows.loc[rows["level"] == "patient", "n"] == 24).all()
    for key in ("accuracy", "macro_f1", "macro_auc"):
        assert (rows[f"{key}_ci_low"] <= rows[f"{key}_pooled"]).all()
        assert (rows[f"{key}_pooled"] <= rows[f"{key}_ci_high"]).all()


def test_comparison_page_and_csv(runs):
    root, sdl, alexnet, _ = runs
    out = write_comparison([sdl, alexnet], root / "out" / "comparison.html", n_boot=50)
    text = out.read_text(encoding="utf-8")
    for model in ("sdl/net1", "sdl/net2", "sdl/mean", "alexnet"):
        assert f'<td class="label">{model}</td>' in text
    assert text.index("<h3>Patient level</h3>") < text.index("<h3>Image level</h3>")
    assert "Paired comparison per fold" in text and "difference" in text
    assert text.count('src="data:image/png;base64,') == 3  # overlaid ROC, paired differences, paired folds
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.IGNORECASE)
    table = pd.read_csv(out.with_suffix(".csv"))
    assert len(table) == 8 and {"run", "model", "level", "accuracy_mean", "accuracy_ci_low"} <= set(table.columns)
