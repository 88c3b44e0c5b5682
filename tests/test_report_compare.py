"""write_comparison: only runs on the same folds; one table with every model, patient level first."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from glioscope.errors import GlioscopeError
from glioscope.report import check_same_folds, comparison_rows, write_comparison
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


def test_runs_with_other_patients_are_refused(runs, tmp_path):
    _, sdl, _, _ = runs
    fewer = fake_run(tmp_path / "fewer", models=["alexnet"], n_patients=18, folds=3, seed=5)
    with pytest.raises(GlioscopeError, match="in only one of them"):
        check_same_folds([sdl, fewer])


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
    assert text.count('src="data:image/png;base64,') == 2  # overlaid ROC, paired folds
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.IGNORECASE)
    table = pd.read_csv(out.with_suffix(".csv"))
    assert len(table) == 8 and {"run", "model", "level", "accuracy_mean", "accuracy_ci_low"} <= set(table.columns)
