"""glioscope.evaluate.fusion: late fusion of runs on the same splits (one run per MRI sequence)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from glioscope.cli import main
from glioscope.errors import GlioscopeError, PatientLeakError
from glioscope.evaluate import fusion
from glioscope.report import comparison_rows, write_comparison
from glioscope.split import check_same_folds
from glioscope.workflows import fuse
from glioscope.report.testing import fake_run, fake_splits

CLASSES = ["0", "1"]
N_BOOT = 20


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def make_runs(
    root,
    runs: dict[str, tuple[float, float]],
    n_patients=60,
    folds=3,
    test_patients=0,
    seed=0,
    validation=True,
    validation_fraction=0.3,
    drop: dict[str, list[str]] | None = None,
):
    """One fake binary run per "sequence" on shared splits, with controlled signal.

    runs: name -> (a, sd): the run's patient logit is a * z + sd * noise, where z = (2y - 1) + N(0, 1) is shared by
    all runs; slices add a little noise. validation_predictions.csv holds, per fold, a random 30% of that fold's
    training patients, stratified (the same in every run). drop: name -> patients missing from that run (a missing sequence).
    """
    rng = np.random.default_rng(seed)
    splits = fake_splits(n_patients, CLASSES, folds, test_patients, slices=(2, 3), seed=seed)
    patients = splits.drop_duplicates("patient_id").set_index("patient_id")
    y = (patients["label"] == "1").astype(int)
    z = (2 * y - 1) + rng.normal(0, 1, len(y))
    cv = patients[patients["partition"] == "cv"]
    chosen = {}
    for f in range(folds):
        picks = []
        for label in CLASSES:  # stratified, as the runner's inner split
            train = cv.index[(cv["fold"] != f) & (cv["label"] == label)].to_numpy()
            picks += list(rng.choice(train, size=max(2, round(validation_fraction * len(train))), replace=False))
        chosen[f] = sorted(picks)
    dirs = []
    for k, (name, (a, sd)) in enumerate(runs.items()):
        gone = set((drop or {}).get(name, []))
        own = splits[~splits["patient_id"].isin(gone)].reset_index(drop=True)
        run = fake_run(root / name, models=["eff"], class_names=CLASSES, splits=own, seed=seed + k, label=name)
        logit = pd.Series(a * z.to_numpy() + sd * rng.normal(0, 1, len(z)), index=z.index)

        def rows(items: pd.DataFrame, fold: str) -> pd.DataFrame:
            u = logit[items["patient_id"]].to_numpy() + rng.normal(0, 0.3, len(items))
            p = _sigmoid(u)
            return pd.DataFrame(
                {
                    "fold": fold,
                    "model": "eff",
                    "slice_id": items["item_id"].to_numpy(),
                    "item_id": items["item_id"].to_numpy(),
                    "patient_id": items["patient_id"].to_numpy(),
                    "target": (items["label"] == "1").astype(int).to_numpy(),
                    "prob_0": 1 - p,
                    "prob_1": p,
                }
            )

        held = [rows(own[own["fold"] == f], "test" if f == -1 else str(f)) for f in sorted(own["fold"].unique())]
        pd.concat(held, ignore_index=True).to_csv(run / "predictions.csv", index=False)
        if validation:
            val = [rows(own[own["patient_id"].isin(chosen[f])], str(f)) for f in range(folds)]
            pd.concat(val, ignore_index=True).to_csv(run / "validation_predictions.csv", index=False)
        dirs.append(run)
    return dirs, chosen


def patient_probs(run) -> pd.DataFrame:
    """(fold, patient) -> prob_1, mean over slices, straight from predictions.csv."""
    frame = pd.read_csv(run / "predictions.csv", dtype={"fold": str, "patient_id": str})
    return frame.groupby(["fold", "patient_id"])["prob_1"].mean()


def fused(out, model) -> pd.DataFrame:
    frame = pd.read_csv(
        out / "predictions.csv", dtype={"fold": str, "patient_id": str, "item_id": str, "slice_id": str}
    )
    return frame[frame["model"] == model].set_index(["fold", "patient_id"])


SEQUENCES = {"FLAIR": (1.0, 1.0), "T1w": (0.5, 1.0), "T1wCE": (1.5, 1.0), "T2w": (0.8, 1.0)}


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    root = tmp_path_factory.mktemp("fusion")
    dirs, chosen = make_runs(root, SEQUENCES, n_patients=48, test_patients=9)
    out = fuse(dirs, root / "fused", n_boot=N_BOOT)
    return root, dirs, chosen, out


def test_mean_fusion_is_the_mean_of_the_runs_patient_probabilities(four):
    _, dirs, _, out = four
    expected = pd.concat([patient_probs(d) for d in dirs], axis=1).mean(axis=1)
    got = fused(out, "fusion/mean")
    assert set(got.index) == set(expected.index)
    assert np.allclose(got.loc[expected.index, "prob_1"], expected)
    assert np.allclose(got["prob_0"] + got["prob_1"], 1)
    assert (got["item_id"] == got.index.get_level_values("patient_id")).all()
    assert (got["slice_id"] == got["item_id"]).all()
    assert (got["n_inputs"] == 4).all()
    assert set(got.index.get_level_values("fold")) == {"0", "1", "2", "test"}


def test_fused_run_folder_is_a_run(four):
    _, dirs, _, out = four
    info = json.loads((out / "run.json").read_text())
    assert info["recipe"] == "fusion"
    assert info["models"] == ["fusion/mean", "fusion/logistic"]
    assert info["class_names"] == CLASSES and info["folds"] == [0, 1, 2]
    assert [i["name"] for i in info["fusion"]["inputs"]] == list(SEQUENCES)
    assert all(i["model"] == "eff" for i in info["fusion"]["inputs"])
    assert any("fusion/logistic" in n and "validation" in n for n in info["notes"])
    assert any("all 4 runs" in n for n in info["notes"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"] == "fused"
    assert metrics["sets"] == ["cv", "test"]
    assert set(metrics["cv"]) == {"fusion/mean", "fusion/logistic"}
    assert metrics["cv"]["fusion/mean"]["patient"]["n_patients"] == 39
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "fusion/logistic" in text and "No per-epoch metrics" in text
    assert not list(out.glob("fold*"))  # no learning curves: the report copes
    assert not list(out.parent.glob(".fused.*"))  # written atomically
    check_same_folds([*dirs, out])


def test_compare_puts_sequences_and_fusion_in_one_table(four, capsys):
    root, dirs, _, out = four
    rows = comparison_rows([*dirs, out], n_boot=N_BOOT)
    patient_cv = rows[(rows["set"] == "cv") & (rows["level"] == "patient")]
    assert list(patient_cv["model"]) == ["eff"] * 4 + ["fusion/mean", "fusion/logistic"]
    html = write_comparison([*dirs, out], root / "comparison.html", n_boot=N_BOOT)
    assert "fusion/logistic" in html.read_text(encoding="utf-8")
    assert main(["compare", *map(str, dirs), str(out), "-o", str(root / "cli-comparison.html")]) == 0
    assert "fusion/mean" in capsys.readouterr().out


def test_logistic_combiner_is_fit_on_validation_patients_only(four, tmp_path, monkeypatch):
    _, dirs, chosen, _ = four
    calls = []
    original = fusion._logistic

    def spy(fit, target, n_classes):
        calls.append((list(fit.patients), list(target.patients)))
        return original(fit, target, n_classes)

    monkeypatch.setattr(fusion, "_logistic", spy)
    out = fuse(dirs, tmp_path / "fused", methods=["logistic"], n_boot=N_BOOT)
    splits = pd.read_csv(dirs[0] / "splits.csv", dtype={"patient_id": str}).drop_duplicates("patient_id")
    test_ids = set(splits.loc[splits["partition"] == "test", "patient_id"])
    assert len(calls) == 4  # three folds and the test set
    for fold, (fit, predicted) in enumerate(calls[:3]):
        assert set(fit) == set(chosen[fold])
        held = set(splits.loc[(splits["partition"] == "cv") & (splits["fold"] == fold), "patient_id"])
        assert set(predicted) == held
        assert not set(fit) & (held | test_ids)
    fit, predicted = calls[3]
    assert set(fit) == set().union(*chosen.values()) and set(predicted) == test_ids
    # Fold 0's combiner, refit here from the validation files alone, gives the same probabilities.
    val = pd.concat(
        [
            pd.read_csv(d / "validation_predictions.csv", dtype={"fold": str, "patient_id": str})
            .query("fold == '0'")
            .groupby("patient_id")
            .agg(p=("prob_1", "mean"), y=("target", "first"))
            .rename(columns={"p": d.name})
            for d in dirs
        ],
        axis=1,
    )
    X = np.log(val[[d.name for d in dirs]] / (1 - val[[d.name for d in dirs]]))
    X = np.hstack([X.to_numpy(), np.zeros((len(X), len(dirs)))])
    model = LogisticRegression(C=fusion.LOGISTIC_C, max_iter=2000).fit(X, val["y"].iloc[:, 0])
    held = pd.concat([patient_probs(d).loc["0"].rename(d.name) for d in dirs], axis=1)
    Xh = np.hstack([np.log(held / (1 - held)).to_numpy(), np.zeros((len(held), len(dirs)))])
    got = fused(out, "fusion/logistic").loc["0"].loc[held.index, "prob_1"]
    assert np.allclose(got, model.predict_proba(Xh)[:, 1], atol=1e-6)


def test_validation_patient_held_out_in_the_same_fold_is_a_leak(tmp_path):
    dirs, _ = make_runs(tmp_path, {"a": (1, 1), "b": (1, 1)}, n_patients=24, seed=3)
    splits = pd.read_csv(dirs[0] / "splits.csv", dtype={"patient_id": str})
    held = splits[(splits["partition"] == "cv") & (splits["fold"] == 0)].iloc[:1]
    val = pd.read_csv(dirs[1] / "validation_predictions.csv", dtype={"fold": str, "patient_id": str})
    leak = {
        "fold": "0",
        "model": "eff",
        "slice_id": held["item_id"].iloc[0],
        "item_id": held["item_id"].iloc[0],
        "patient_id": held["patient_id"].iloc[0],
        "target": int(held["label"].iloc[0]),
        "prob_0": 0.5,
        "prob_1": 0.5,
    }
    pd.concat([val, pd.DataFrame([leak])]).to_csv(dirs[1] / "validation_predictions.csv", index=False)
    with pytest.raises(PatientLeakError, match=held["patient_id"].iloc[0]):
        fuse(dirs, tmp_path / "fused", n_boot=N_BOOT)
    assert not (tmp_path / "fused").exists()
    assert not list(tmp_path.glob(".fused*"))
    fuse(dirs, tmp_path / "mean-only", methods=["mean"], n_boot=N_BOOT)  # the mean never reads validation labels


def test_runs_on_other_folds_or_classes_are_refused(tmp_path):
    a = fake_run(tmp_path / "a", models=["eff"], class_names=CLASSES, splits=fake_splits(24, CLASSES, 3, seed=1))
    b = fake_run(tmp_path / "b", models=["eff"], class_names=CLASSES, splits=fake_splits(24, CLASSES, 3, seed=2))
    with pytest.raises(GlioscopeError, match=r"runs .*a and .*b differ: .*other folds"):
        fuse([a, b], tmp_path / "fused", methods=["mean"], n_boot=N_BOOT)
    other = fake_run(
        tmp_path / "c", models=["eff"], class_names=["x", "y"], splits=fake_splits(24, ["x", "y"], 3, seed=1)
    )
    with pytest.raises(GlioscopeError, match="different classes"):
        fuse([a, other], tmp_path / "fused", methods=["mean"], n_boot=N_BOOT)
    with pytest.raises(GlioscopeError, match="at least two"):
        fuse([a], tmp_path / "fused", n_boot=N_BOOT)
    with pytest.raises(GlioscopeError, match="given twice"):
        fuse([a, tmp_path / "b" / ".." / "a"], tmp_path / "fused", n_boot=N_BOOT)
    with pytest.raises(GlioscopeError, match="one of the input runs"):
        fuse([a, b], a, overwrite=True, n_boot=N_BOOT)
    with pytest.raises(GlioscopeError, match="methods"):
        fuse([a, b], tmp_path / "fused", methods=["vote"], n_boot=N_BOOT)
    assert not (tmp_path / "fused").exists()


def test_missing_sequence_is_fused_from_the_runs_that_have_it(tmp_path):
    gone = ["P003", "P010", "P017"]
    dirs, _ = make_runs(
        tmp_path, {"FLAIR": (1, 1), "T1w": (1, 1), "T2w": (1, 1)}, n_patients=30, seed=4, drop={"T1w": gone}
    )
    out = fuse(dirs, tmp_path / "fused", n_boot=N_BOOT)
    expected = pd.concat([patient_probs(d) for d in dirs], axis=1).mean(axis=1)  # NaN skipped: mean of those present
    got = fused(out, "fusion/mean")
    assert len(got) == 30 and np.allclose(got.loc[expected.index, "prob_1"], expected)
    partial = got[got.index.get_level_values("patient_id").isin(gone)]
    assert len(partial) == 3 and (partial["n_inputs"] == 2).all()
    logistic = fused(out, "fusion/logistic")
    assert len(logistic) == 30 and logistic["prob_1"].between(0, 1).all()
    info = json.loads((out / "run.json").read_text())
    assert sum(f["fewer_than_all_runs"] for f in info["fusion"]["folds"].values()) == 3
    assert sum(f["missing_per_run"]["T1w"] for f in info["fusion"]["folds"].values()) == 3
    assert any(
        "3 patient prediction(s) fused from fewer than all 3 runs" in n and "T1w lacks 3" in n for n in info["notes"]
    )
    assert any("only some of the runs" in n for n in info["notes"])
    splits = pd.read_csv(out / "splits.csv", dtype={"patient_id": str})
    assert splits["patient_id"].nunique() == 30  # every patient of every input


def test_patient_moved_to_another_fold_in_one_run_is_refused(tmp_path):
    dirs, _ = make_runs(tmp_path, {"a": (1, 1), "b": (1, 1)}, n_patients=24, seed=5, drop={"b": ["P001"]})
    splits = pd.read_csv(dirs[1] / "splits.csv")
    splits.loc[splits["patient_id"] == "P002", "fold"] = (splits.loc[splits["patient_id"] == "P002", "fold"] + 1) % 3
    splits.to_csv(dirs[1] / "splits.csv", index=False)
    with pytest.raises(GlioscopeError, match="P002"):
        fuse(dirs, tmp_path / "fused", n_boot=N_BOOT)


def test_without_validation_predictions_logistic_is_skipped_with_a_note(tmp_path, capsys):
    dirs, _ = make_runs(tmp_path, {"a": (1, 1), "b": (1, 1)}, n_patients=24, seed=6, validation=False)
    out = fuse(dirs, tmp_path / "fused", n_boot=N_BOOT)
    info = json.loads((out / "run.json").read_text())
    assert info["models"] == ["fusion/mean"]
    assert any("logistic fusion skipped" in n and "validation_predictions.csv" in n for n in info["notes"])
    assert set(pd.read_csv(out / "predictions.csv")["model"]) == {"fusion/mean"}
    with pytest.raises(GlioscopeError, match="logistic regression: run a has no validation predictions"):
        fuse(dirs, tmp_path / "fused2", methods=["logistic"], n_boot=N_BOOT)
    assert main(["fuse", *map(str, dirs), "-o", str(tmp_path / "fused"), "--bootstrap", "10"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["fuse", *map(str, dirs), "-o", str(tmp_path / "fused"), "--overwrite", "--bootstrap", "10"]) == 0
    printed = capsys.readouterr().out
    assert "note: logistic fusion skipped" in printed and "fusion/mean" in printed and "report.html" in printed


def test_logistic_fusion_finds_the_one_informative_sequence(tmp_path):
    runs = {"informative": (2.0, 0.3), "noise1": (0.0, 3.0), "noise2": (0.0, 3.0), "noise3": (0.0, 3.0)}
    dirs, _ = make_runs(tmp_path, runs, n_patients=120, seed=7, validation_fraction=0.4)
    out = fuse(dirs, tmp_path / "fused", n_boot=N_BOOT)
    mean, logistic = fused(out, "fusion/mean"), fused(out, "fusion/logistic")
    auc_mean = roc_auc_score(mean["target"], mean["prob_1"])
    auc_logistic = roc_auc_score(logistic["target"], logistic.loc[mean.index, "prob_1"])
    assert auc_logistic >= auc_mean + 0.05, (auc_logistic, auc_mean)
    metrics = json.loads((out / "metrics.json").read_text())
    pooled = {m: metrics["cv"][m]["patient"]["pooled"]["macro_auc"] for m in ("fusion/mean", "fusion/logistic")}
    assert pooled["fusion/logistic"] >= pooled["fusion/mean"]
    coef = json.loads((out / "run.json").read_text())["fusion"]["logistic"]["0"]["coef"]
    assert coef["logit informative"] > 3 * max(abs(coef[f"logit noise{k}"]) for k in (1, 2, 3))


def test_three_classes_fuse_too(tmp_path):
    names = ["II", "III", "IV"]
    splits = fake_splits(30, names, 3, seed=8)
    dirs = [
        fake_run(tmp_path / n, models=["sdl/net1", "sdl/net2", "sdl/mean"], class_names=names, splits=splits, seed=k)
        for k, n in enumerate(("a", "b"))
    ]
    for d in dirs:  # validation predictions: fold f's model on two patients of each class from the other folds
        frame = pd.read_csv(d / "predictions.csv", dtype={"fold": str, "patient_id": str})
        rows = []
        for f in range(3):
            others = frame[(frame["fold"] != str(f))]
            pick = others.drop_duplicates("patient_id").groupby("target").head(2)["patient_id"]
            rows.append(others[others["patient_id"].isin(pick)].assign(fold=str(f)))
        pd.concat(rows).to_csv(d / "validation_predictions.csv", index=False)
    out = fuse(dirs, tmp_path / "fused", n_boot=N_BOOT)
    got = fused(out, "fusion/logistic")
    assert np.allclose(got[[f"prob_{n}" for n in names]].sum(axis=1), 1)
    info = json.loads((out / "run.json").read_text())
    assert info["fusion"]["inputs"][0]["model"] == "sdl/mean"
    mean = fused(out, "fusion/mean")
    frames = [
        pd.read_csv(d / "predictions.csv", dtype={"fold": str, "patient_id": str})
        .query("model == 'sdl/mean'")
        .groupby(["fold", "patient_id"])["prob_IV"]
        .mean()
        for d in dirs
    ]
    expected = pd.concat(frames, axis=1).mean(axis=1)
    assert np.allclose(mean.loc[expected.index, "prob_IV"], expected)


def test_holdout_runs_fuse_on_the_test_set(tmp_path):
    """The eff recipe's holdout split: one training (fold 0, inner validation), predictions on the test set only."""
    dirs, chosen = make_runs(tmp_path, {"FLAIR": (1, 1), "T2w": (1, 1)}, n_patients=40, test_patients=10, seed=9)
    for d in dirs:
        splits = pd.read_csv(d / "splits.csv")
        splits.loc[splits["partition"] == "cv", "fold"] = 0
        splits.to_csv(d / "splits.csv", index=False)
        for name in ("predictions.csv", "validation_predictions.csv"):
            frame = pd.read_csv(d / name, dtype={"fold": str})
            frame[frame["fold"] == ("test" if name == "predictions.csv" else "0")].to_csv(d / name, index=False)
    out = fuse(dirs, tmp_path / "fused", n_boot=N_BOOT)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sets"] == ["test"] and set(metrics["test"]) == {"fusion/mean", "fusion/logistic"}
    info = json.loads((out / "run.json").read_text())
    assert info["fusion"]["logistic"]["test"]["n_fit"] == len(chosen[0])
    assert (out / "report.html").is_file()
