"""The MGMT recipes end to end on a small RSNA-MICCAI phantom, on splits made once for all runs."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from glioscope.cli import main
from glioscope.synth import synthesize
from glioscope.synth.presets import PRESETS

FAST = [
    "data.slices.size=32",
    "train.epochs=1",
    "train.finetune.epochs=0",
    "model.weights=none",
    "evaluate.bootstrap=20",
    "evaluate.gradcam_per_class=0",
    "train.precision=fp32",
]


def sets(*items):
    return [arg for item in [*FAST, *items] for arg in ("--set", item)]


@pytest.fixture(scope="module")
def rsna(module_tmp, monkeypatch_module):
    root = module_tmp
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(root / "cache"))
    preset = replace(PRESETS["mgmt"], n_grade_iv=10, rsna_slab=2, montage_per_class=1)
    synthesize(root / "phantom", preset, seed=2, layouts=["rsna-miccai"], progress=False)
    assert main(["ingest", str(root / "phantom" / "rsna-miccai"), "-o", str(root / "cohort")]) == 0
    assert main(["split", str(root / "cohort"), "--folds", "2", "-o", str(root / "splits")]) == 0
    return root


def test_four_sequences_as_channels_train_on_given_splits(rsna):
    out = rsna / "runs" / "eff-4ch"
    code = main(
        [
            "cv",
            "eff-4ch",
            "--cohort",
            str(rsna / "cohort"),
            "--splits",
            str(rsna / "splits"),
            "--quick",
            *sets(),
            "-o",
            str(out),
        ]
    )
    assert code == 0
    cohort = pd.read_csv(rsna / "cohort" / "cohort.csv", dtype={"patient_id": str})
    complete = {p for p, rows in cohort.groupby("patient_id") if rows["sequence"].nunique() == 4}
    assert 0 < len(complete) < cohort["patient_id"].nunique()  # the phantom drops a sequence here and there
    slices = pd.read_csv(out / "slices.csv", dtype={"patient_id": str})
    assert set(slices["sequence"]) == {"FLAIR+T1+T1c+T2"}
    predictions = pd.read_csv(out / "predictions.csv", dtype={"patient_id": str, "fold": str})
    assert set(predictions["patient_id"]) == complete  # every patient with all four, each in its own fold
    splits = pd.read_csv(rsna / "splits" / "splits.csv", dtype={"patient_id": str})
    fold_of = splits.drop_duplicates("patient_id").set_index("patient_id")["fold"].astype(str)
    assert (predictions["fold"] == predictions["patient_id"].map(fold_of)).all()


def test_one_sequence_runs_fused_and_compared_with_the_four_channel_run(rsna):
    runs = []
    for sequence in ("FLAIR", "T1c"):
        out = rsna / "runs" / f"eff-{sequence}"
        assert (
            main(
                [
                    "cv",
                    "eff",
                    "--cohort",
                    str(rsna / "cohort"),
                    "--splits",
                    str(rsna / "splits"),
                    "--quick",
                    *sets(f"data.select={{sequence: {sequence}}}"),
                    "-o",
                    str(out),
                ]
            )
            == 0
        )
        runs.append(str(out))
    assert main(["fuse", *runs, "-o", str(rsna / "runs" / "fused"), "--bootstrap", "20"]) == 0
    fused = pd.read_csv(rsna / "runs" / "fused" / "predictions.csv", dtype={"patient_id": str})
    assert set(fused["model"]) == {"fusion/mean", "fusion/logistic"}
    # One report for all of them, on the same folds; eff-4ch lacks the patients without all four sequences.
    html = rsna / "mgmt.html"
    assert main(["compare", str(rsna / "runs" / "eff-4ch"), *runs, str(rsna / "runs" / "fused"), "-o", str(html)]) == 0
    rows = pd.read_csv(html.with_suffix(".csv"))
    assert {"eff-4ch", "fusion/mean", "fusion/logistic"} <= set(rows["model"])
    assert set(rows["run"]) == {"eff-4ch", "eff-FLAIR", "eff-T1c", "fusion"}  # two eff runs: named by folder
    assert "in only some of the runs" in html.read_text()


def test_predict_scores_a_patient_folder_with_both_classes(rsna, capsys):
    # Needs the runs above; one sigmoid unit must give [1 - p, p], not a softmax over one logit (always 1).
    patient = sorted((rsna / "phantom" / "rsna-miccai" / "train").iterdir())[0]
    for run in ("eff-4ch", "eff-FLAIR"):
        capsys.readouterr()
        assert main(["predict", str(rsna / "runs" / run), str(patient)]) == 0
        result = json.loads(capsys.readouterr().out)
        probs = result["patients"][0]["probabilities"]
        assert set(probs) == {"0", "1"} and abs(sum(probs.values()) - 1) < 1e-5
        assert 0 < probs["1"] < 1
        assert {s["item_id"].count("+") for s in result["slices"]} == ({3} if run == "eff-4ch" else {0})


def test_rsna_winner_recipe_on_flair_and_t1c_volumes_beside_eff(rsna, capsys):
    """rsna-r10 (MONAI's 3D ResNet-10) on the same splits as the eff runs, compared with them, and applied."""
    pytest.importorskip("monai")
    out = rsna / "runs" / "rsna-r10"
    tiny = [
        "data.volumes.spacing=8.0",
        "data.volumes.shape=[16,24,20]",
        "train.epochs=1",
        "model.weights=none",
        "evaluate.bootstrap=20",
        "evaluate.gradcam_per_class=1",
        "data.volumes.skull_strip=none",
    ]
    args = [a for s in tiny for a in ("--set", s)]
    assert (
        main(
            [
                "cv",
                "rsna-r10",
                "--cohort",
                str(rsna / "cohort"),
                "--splits",
                str(rsna / "splits"),
                "--quick",
                *args,
                "-o",
                str(out),
            ]
        )
        == 0
    )
    predictions = pd.read_csv(out / "predictions.csv", dtype={"patient_id": str, "fold": str})
    cohort = pd.read_csv(rsna / "cohort" / "cohort.csv", dtype={"patient_id": str})
    both = {p for p, rows in cohort.groupby("patient_id") if {"FLAIR", "T1c"} <= set(rows["sequence"])}
    assert set(predictions["patient_id"]) == both
    assert predictions.groupby("patient_id").size().eq(1).all()  # one volume per patient
    html = rsna / "mgmt-3d.html"
    assert main(["compare", str(out), str(rsna / "runs" / "eff-FLAIR"), "-o", str(html)]) == 0
    assert {"rsna-r10"} <= set(pd.read_csv(html.with_suffix(".csv"))["model"])
    patient = sorted((rsna / "phantom" / "rsna-miccai" / "train").iterdir())[0]
    capsys.readouterr()
    assert main(["predict", str(out), str(patient)]) == 0
    probs = json.loads(capsys.readouterr().out)["patients"][0]["probabilities"]
    assert set(probs) == {"0", "1"} and abs(sum(probs.values()) - 1) < 1e-5
