"""The demo's comparison faces the models it is about first: SDL's mean against AlexNet is the first paired test, on
the page, in its CSV and in what the demo prints, and the per-fold comparison; the radiomics baselines come after."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from glioscope.demo import compare
from glioscope.evaluate.run import evaluate_run
from glioscope.report.paired import paired_csv_path
from glioscope.report.testing import SDL_MODELS, fake_run, fake_splits

HEADLINES = {"sdl": "sdl: sdl/mean", "alexnet": "alexnet: alexnet", "radiomics": "radiomics: radiomics"}
HEADLINES["radiomics-rf"] = "radiomics-rf: radiomics-rf"


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    """Fake runs named as the demo's, on the same folds; the radiomics ones the strongest (as on the phantom)."""
    root = tmp_path_factory.mktemp("demo-comparison")
    splits = fake_splits(n_patients=36, folds=3, seed=2)
    made = {}
    for seed, (name, models, signal) in enumerate(
        [
            ("radiomics-rf", ["radiomics-rf"], 3.0),
            ("radiomics", ["radiomics"], 3.0),
            ("alexnet", ["alexnet"], 0.5),
            ("sdl", list(SDL_MODELS), 0.8),
        ]
    ):
        made[name] = fake_run(root / name, models=models, splits=splits, seed=seed, signal=signal)
        evaluate_run(made[name], n_boot=30)
    return root, made


def test_sdl_vs_alexnet_comes_first_whatever_order_the_runs_come_in(demo_runs, capsys):
    root, made = demo_runs
    for order in (list(made), list(reversed(made))):
        capsys.readouterr()
        out = compare({name: made[name] for name in order}, root / "comparison.html")
        printed = capsys.readouterr().out
        pairs = pd.read_csv(paired_csv_path(out))
        assert list(zip(pairs["a"], pairs["b"])) == [
            (HEADLINES["sdl"], HEADLINES["alexnet"]),
            (HEADLINES["sdl"], HEADLINES["radiomics"]),
            (HEADLINES["sdl"], HEADLINES["radiomics-rf"]),
            (HEADLINES["alexnet"], HEADLINES["radiomics"]),
            (HEADLINES["alexnet"], HEADLINES["radiomics-rf"]),
            (HEADLINES["radiomics"], HEADLINES["radiomics-rf"]),
        ]
        tests = printed[printed.index("Paired tests") :].splitlines()[1:]
        assert tests[0].startswith(f"{HEADLINES['sdl']} vs {HEADLINES['alexnet']} (36 patients)")
        assert all("radiomics" in line for line in tests[1:] if line)
        html = out.read_text(encoding="utf-8")
        paired = html[html.index("<h2>Paired tests</h2>") :]
        first_row = re.search(r"<tbody>\s*<tr>(.*?)</tr>", paired, re.S).group(1)
        assert re.findall(r"<td[^>]*>([^<]*)</td>", first_row)[:2] == [HEADLINES["sdl"], HEADLINES["alexnet"]]
        assert f"<b>{HEADLINES['sdl']}</b> and <b>{HEADLINES['alexnet']}</b>" in html  # the per-fold comparison
