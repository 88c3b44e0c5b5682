"""Is the site talking? Where a patient's site is read, the per-site metrics and the site-alone AUC of a run, the
warning when sites and labels are entangled, and folds that keep sites whole (`split --by-site`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from glioscope import split
from glioscope.cli import main
from glioscope.errors import InputError
from glioscope.evaluate.run import evaluate_run
from glioscope.report import write_report
from glioscope.report.testing import fake_run
from glioscope.rundir import COHORT, METRICS, PATIENTS
from glioscope.sites import make_site_splits, patient_sites, site_of
from glioscope.util import atomic, csvfiles


def _patients(shares: dict[str, tuple[int, int]], prefix: str = "P") -> pd.DataFrame:
    """One row per patient: site -> (patients of class II, of class III)."""
    rows = []
    for site, (n_ii, n_iii) in shares.items():
        for k, label in enumerate(["II"] * n_ii + ["III"] * n_iii):
            rows.append({"patient_id": f"{prefix}{site}{k:03d}", "site": site, "label": label})
    return pd.DataFrame(rows)


def _cohort(patients: pd.DataFrame, slices: int = 2) -> pd.DataFrame:
    """Cohort rows (a few items per patient) with the patients' site column."""
    rows = [
        {**p, "item_id": f"{p['patient_id']}-s{s}", "kind": "image", "path": f"{p['patient_id']}-{s}.png"}
        for p in patients.to_dict("records")
        for s in range(slices)
    ]
    return pd.DataFrame(rows)


def _run(tmp_path, shares, seed=0, signal=2.0) -> tuple:
    """A fake run (3 stratified folds) on patients of these sites; its cohort.csv names each patient's site."""
    cohort = _cohort(_patients(shares))
    table, _ = split.make_splits(cohort, folds=3, seed=seed)
    run = fake_run(tmp_path / "run", models=("m",), class_names=("II", "III"), splits=table, seed=seed, signal=signal)
    atomic.write_csv(run / COHORT, cohort)
    return run, evaluate_run(run, n_boot=200)


# --- where a site is read ----------------------------------------------------------------------------------


def test_a_named_column_wins_then_the_site_column_then_the_headers_then_the_tcga_ids():
    frame = pd.DataFrame(
        {
            "patient_id": ["TCGA_CS_4941", "TCGA_CS_4941", "TCGA_FG_5962", "TCGA-HT-7690"],
            "hospital": ["north", "north", "south", "south"],
            "site": ["a", "a", "b", "c"],
            "institution": ["Mayo", "Mayo", "Emory", "Emory"],
            "scanner": ["Avanto", "Avanto", "Avanto", "Signa"],
        }
    )
    by = lambda found: found.by_patient.to_dict()  # noqa: E731
    named = patient_sites(frame, "hospital")
    assert by(named) == {"TCGA_CS_4941": "north", "TCGA_FG_5962": "south", "TCGA-HT-7690": "south"}
    assert named.column == "hospital" and by(patient_sites(frame))["TCGA-HT-7690"] == "c"
    headers = patient_sites(frame.drop(columns=["site"]))
    assert headers.source == "DICOM InstitutionName" and headers.names == ["Emory", "Mayo"]
    one_institution = frame.drop(columns=["site"]).assign(institution="Mayo")
    assert patient_sites(one_institution).source == "DICOM ManufacturerModelName"  # the one that tells sites apart
    ids = patient_sites(frame[["patient_id"]])
    assert by(ids) == {"TCGA_CS_4941": "CS", "TCGA_FG_5962": "FG", "TCGA-HT-7690": "HT"} and ids.column is None
    assert patient_sites(pd.DataFrame({"patient_id": ["P1", "TCGA_CS_1"]})) is None  # not every patient told
    assert [site_of(p) for p in ("TCGA_CS_4941", "TCGA-DU-7294-01", "BraTS20_001", "TCGA")] == ["CS", "DU", None, None]
    blank_site = frame.assign(site=["a", "a", "", "c"])
    assert patient_sites(blank_site).source == "DICOM InstitutionName"  # an incomplete site column is passed over


def test_a_named_column_must_name_one_site_for_every_patient():
    frame = pd.DataFrame({"patient_id": ["P1", "P1", "P2"], "hospital": ["north", "south", "north"]})
    with pytest.raises(InputError, match="two sites"):
        patient_sites(frame, "hospital")
    with pytest.raises(InputError, match="no 'hospital'"):
        patient_sites(frame.assign(hospital=["north", "north", ""]), "hospital")
    with pytest.raises(InputError, match="no column 'ward'"):
        patient_sites(frame, "ward")


# --- per-site metrics and the site alone ----------------------------------------------------------------------


def test_entangled_sites_give_a_high_site_alone_auc_and_the_warning(tmp_path):
    run, metrics = _run(tmp_path, {"A": (3, 27), "B": (27, 3)})  # A mostly III, B mostly II
    found = metrics["sites"]
    assert found["source"] == "column 'site'" and found["names"] == ["A", "B"]
    assert found["patients"] == {"A": {"II": 3, "III": 27}, "B": {"II": 27, "III": 3}}
    alone = found["site_alone"]
    assert alone["auc"] > 0.85 and alone["ci"][0] > 0.5 and found["entangled"] and alone["n_patients"] == 60
    assert json.loads((run / METRICS).read_text())["sites"]["entangled"] is True
    text = write_report(run).read_text()
    assert "Sites and labels are entangled" in text and "interval excludes 0.5" in text


@pytest.mark.parametrize("seed", [0, 1])
def test_balanced_sites_give_no_warning(tmp_path, seed):
    run, metrics = _run(tmp_path, {"A": (15, 15), "B": (15, 15)}, seed=seed)
    found = metrics["sites"]
    assert not found["entangled"] and not found["caution"] and found["site_alone"]["auc"] < 0.6
    text = write_report(run).read_text()
    assert "entangled" not in text and "<h2>Sites (cross-validation)</h2>" in text


def test_the_site_alone_scores_are_the_class_rates_of_the_fold_training_patients_of_the_site(tmp_path):
    run, metrics = _run(tmp_path, {"A": (4, 8), "B": (9, 3), "C": (3, 3)})
    splits = csvfiles.read(run / "splits.csv").drop_duplicates("patient_id")
    site = splits["patient_id"].str[1]
    truth, score = [], []
    for _, patient in splits.iterrows():
        train = splits[(splits["fold"] != patient["fold"]) & (site == patient["patient_id"][1])]
        truth.append(patient["label"] == "III")
        score.append((train["label"] == "III").mean())
    assert metrics["sites"]["site_alone"]["auc"] == pytest.approx(roc_auc_score(truth, score))


def test_per_site_metrics_match_a_computation_by_hand(tmp_path):
    run, metrics = _run(tmp_path, {"A": (10, 14), "B": (12, 8)}, signal=1.0)
    patients = csvfiles.read(run / PATIENTS)
    patients = patients[patients["set"] == "cv"]
    for site in ("A", "B"):
        mine = patients[patients["patient_id"].str[1] == site]
        entry = metrics["sites"]["per_site"]["cv"]["m"][site]
        assert entry["n_patients"] == len(mine)
        assert entry["classes"] == {c: int((mine["target_label"] == c).sum()) for c in ("II", "III")}
        assert entry["auc"] == pytest.approx(roc_auc_score(mine["target"], mine["prob_III"].astype(float)))
        assert entry["accuracy"] == pytest.approx((mine["target"] == mine["predicted"]).mean())


def test_a_cohort_without_sites_says_so_in_one_line(tmp_path):
    run = fake_run(tmp_path / "run", models=("m",), class_names=("II", "III"))  # ids P000...: no site told
    metrics = evaluate_run(run, n_boot=50)
    assert metrics["sites"] == {"source": None, "names": [], "named_column": None}
    text = write_report(run).read_text()
    assert "<b>Sites:</b> none" in text and "<h2>Sites" not in text


# --- folds of whole sites -------------------------------------------------------------------------------------


def _fold_of_each_site(table: pd.DataFrame) -> dict[str, set[int]]:
    return table.groupby(table["patient_id"].str[1])["fold"].agg(lambda f: set(f.astype(int))).to_dict()


def test_split_by_site_keeps_sites_whole(tmp_path):
    cohort = _cohort(_patients({"A": (4, 6), "B": (6, 4), "C": (5, 5), "D": (3, 3)}))
    folder = tmp_path / "cohort"
    folder.mkdir()
    atomic.write_csv(folder / COHORT, cohort)
    assert main(["split", str(folder), "--by-site", "--folds", "4", "-o", str(tmp_path / "loso")]) == 0
    table, meta = split.load(tmp_path / "loso")  # the leak check passes: patients never in two folds
    folds = _fold_of_each_site(table)
    assert all(len(f) == 1 for f in folds.values()) and len({min(f) for f in folds.values()}) == 4
    assert meta["mode"] == "by-site" and meta["sites"] == {
        "fold0": ["A"],
        "fold1": ["B"],
        "fold2": ["C"],
        "fold3": ["D"],
    }
    assert meta["statement"].startswith("Split by site (leave-one-site-out over 4 sites")
    for folds_asked in (2, 3):
        table, meta = make_site_splits(cohort, folds=folds_asked, seed=1)
        folds = _fold_of_each_site(table)
        assert all(len(f) == 1 for f in folds.values()) and len(set().union(*folds.values())) == folds_asked
        assert meta["folds"] == folds_asked and "whole sites" in meta["statement"]
    named = make_site_splits(
        cohort.assign(ward=cohort["site"].map({"A": "x", "B": "x", "C": "y", "D": "y"})), 5, 0, "label", "ward"
    )
    assert named[1]["sites"] == {"fold0": ["x"], "fold1": ["y"]} and named[1]["site_column"] == "ward"


def test_split_by_site_refuses_what_cannot_be_held_out(tmp_path, capsys):
    one = _cohort(_patients({"A": (5, 5)}))
    with pytest.raises(InputError, match="one site"):
        make_site_splits(one)
    with pytest.raises(InputError, match="does not tell the patients' sites"):
        make_site_splits(one.drop(columns=["site"]))
    with pytest.raises(InputError, match="holding out site\\(s\\) A leaves no training patient of class\\(es\\) III"):
        make_site_splits(_cohort(_patients({"A": (0, 5), "B": (5, 0), "C": (2, 0)})))
    table, meta = make_site_splits(_cohort(_patients({"A": (0, 5), "B": (5, 3), "C": (3, 3)})))
    assert any("fold0 (site A) holds only class III" in n for n in meta["notes"])  # noted: the pooled AUC is defined
    assert _fold_of_each_site(table) == {"A": {0}, "B": {1}, "C": {2}}
    folder = tmp_path / "cohort"
    folder.mkdir()
    atomic.write_csv(folder / COHORT, one)
    assert main(["split", str(folder), "--by-site", "-o", str(tmp_path / "s")]) == 2
    assert "one site" in capsys.readouterr().err and not (tmp_path / "s").exists()
    both = ["split", str(folder), "--by-site", "--test-fraction", "0.2", "-o", str(tmp_path / "t")]
    assert main(both) == 2 and "takes no --test-fraction" in capsys.readouterr().err


def test_a_split_names_its_site_column_for_the_evaluation(tmp_path):
    patients = _patients({"A": (10, 10), "B": (10, 10)})
    cohort = _cohort(patients.assign(ward=np.where(patients["label"] == "III", "x", "y")))
    table, meta = split.make_splits(cohort, folds=3, seed=0)
    run = fake_run(tmp_path / "run", models=("m",), class_names=("II", "III"), splits=table)
    atomic.write_csv(run / COHORT, cohort)
    assert evaluate_run(run, n_boot=50)["sites"]["names"] == ["A", "B"]  # the site column, found
    atomic.write_json(run / split.SPLIT_META, {**meta, "site_column": "ward"})
    found = evaluate_run(run, n_boot=50)["sites"]
    assert found["names"] == ["x", "y"] and found["entangled"]  # the ward is the label here
    assert evaluate_run(run, n_boot=50, site_column="site")["sites"]["names"] == ["A", "B"]
    atomic.write_json(run / split.SPLIT_META, meta)
    assert evaluate_run(run, n_boot=50, site_column="ward")["sites"]["names"] == ["x", "y"]
    assert evaluate_run(run, n_boot=50)["sites"]["names"] == ["x", "y"]  # the column named last time, again


def test_folds_of_whole_sites_show_entangled_sites_as_a_site_alone_auc_below_one_half(tmp_path):
    cohort = _cohort(_patients({"A": (3, 27), "B": (27, 3)}))
    table, meta = make_site_splits(cohort)
    run = fake_run(tmp_path / "run", models=("m",), class_names=("II", "III"), splits=table)
    atomic.write_csv(run / COHORT, cohort)
    atomic.write_json(run / split.SPLIT_META, meta)
    found = evaluate_run(run, n_boot=200)["sites"]
    assert found["by_site_folds"] and found["site_alone"]["auc"] < 0.2 and found["entangled"]  # scored by the other
    assert "The folds keep sites whole" in write_report(run).read_text()


def test_sites_that_lean_on_few_patients_give_a_caution(tmp_path):
    run, metrics = _run(tmp_path, {"A": (5, 11), "B": (10, 4)})  # the dev cohort's shares: 30 patients
    found = metrics["sites"]
    assert not found["entangled"] and found["caution"] and found["site_alone"]["ci"][0] < 0.5
    assert "Sites and labels may be entangled" in write_report(run).read_text()


def test_cv_refuses_a_site_column_the_cohort_lacks_before_training(tmp_path, capsys):
    folder = tmp_path / "cohort"
    folder.mkdir()
    atomic.write_csv(folder / COHORT, _cohort(_patients({"A": (3, 3), "B": (3, 3)})))
    args = ["cv", "radiomics", "--cohort", str(folder), "--site-column", "ward", "-o", str(tmp_path / "run")]
    assert main(args) == 2
    assert "no column 'ward'" in capsys.readouterr().err and not (tmp_path / "run").exists()
