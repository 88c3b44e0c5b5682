"""`glioscope auto`: fingerprint and refusals, the plan, the nested choice, the budget, resume and the final model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from glioscope import cohort
from glioscope.auto import execute, select
from glioscope.auto import fingerprint as fp
from glioscope.auto.plan import Candidate, Plan, propose, read_plan, write_plan
from glioscope.cli import main
from glioscope.errors import InputError
from glioscope.ingest import ingest
from glioscope.split import SPLITS

pytest.importorskip("radiomics", reason="the candidates here are radiomics recipes (make installs PyRadiomics)")

RF = [
    "data.channels=[T1c]",
    "data.min_voxels=5",
    "classifier.trees=10",
    "classifier.min_samples_leaf=[1]",
    "evaluate.bootstrap=20",
]
CANDIDATES = [
    {"name": "rf-a", "recipe": "radiomics-rf", "set": RF},
    {"name": "rf-b", "recipe": "radiomics-rf", "set": [*RF[:3], "classifier.min_samples_leaf=[3]", *RF[4:]]},
]


def _rows(n: int, label: str = "II", kind: str = "image", patient: str = "P{k}", mask: str = "m.png") -> list[dict]:
    return [
        {
            "item_id": f"{patient.format(k=k)}-{label}-{kind}",
            "patient_id": patient.format(k=k),
            "label": label,
            "kind": kind,
            "path": "x.png",
            "mask_path": mask,
            "rows": 64,
            "cols": 64,
            "sequence": "T1c",
        }
        for k in range(n)
    ]


def _frame(*groups: list[dict]) -> pd.DataFrame:
    return cohort.to_frame([row for group in groups for row in group])


def _save(folder: Path, frame: pd.DataFrame) -> Path:
    folder.mkdir(parents=True)
    frame.to_csv(folder / "cohort.csv", index=False)
    return folder


def test_the_fingerprint_counts_patients_per_class_and_site_and_masks():
    frame = _frame(_rows(4, "II", patient="TCGA_CS_{k}"), _rows(3, "III", patient="TCGA_FG_{k}", mask=""))
    found = fp.fingerprint(frame, "label")
    assert found["classes"] == {"II": {"patients": 4, "items": 4}, "III": {"patients": 3, "items": 3}}
    assert found["sites"] == {"CS": {"II": 4, "III": 0}, "FG": {"II": 0, "III": 3}}
    assert found["mask_share"] == round(4 / 7, 3) and found["dims"] == "2d" and found["channels"] == ["T1c"]
    assert fp.fingerprint(_frame(_rows(2), _rows(2, "III", patient="Q{k}")), "label")["sites"] is None


@pytest.mark.parametrize(
    "frame, dims, words",
    [
        (_frame(_rows(5, "")), None, "no row has a 'label'"),
        (_frame(_rows(5, "II")), None, "one class"),
        (_frame(_rows(5, "II"), _rows(5, "III", kind="volume", patient="V{k}")), None, "--dims 2d or --dims 3d"),
        (_frame(_rows(5, "II"), _rows(5, "III", patient="V{k}")), "3d", "has no 3D items"),
    ],
)
def test_bad_cohorts_are_refused_with_the_reason(frame, dims, words):
    with pytest.raises(InputError, match=words):
        fp.labelled(frame, "label", dims)


def test_too_few_patients_per_class_for_the_nested_folds_is_refused():
    found = fp.fingerprint(_frame(_rows(6, "II"), _rows(4, "III", patient="Q{k}")), "label")
    fp.check_folds(found, 2, 2)  # 4 per class: 2 outer folds, each with 2 training patients per class
    with pytest.raises(InputError, match=r"III: 4.*--folds 2"):
        fp.check_folds(found, 3, 3)  # needs 5 per class


def test_a_mixed_cohort_is_refused_by_the_cli_before_anything_is_written(tmp_path, capsys):
    folder = tmp_path / "cohort"
    _save(folder, _frame(_rows(5, "II"), _rows(5, "III", kind="volume", patient="V{k}")))
    assert main(["auto", str(folder), "-o", str(tmp_path / "out")]) == 2
    assert "--dims" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_the_plan_follows_the_data():
    masked = fp.fingerprint(_frame(_rows(6, "II"), _rows(6, "III", patient="Q{k}")), "label")
    plan = propose(masked, "c", 600, "cpu")
    names = [c.name for c in plan.candidates]
    assert names[:2] == ["radiomics-rf", "radiomics"] and "alexnet-tumour" in names and "st3d" not in names
    assert plan.choose == "best" and all(c.quick for c in plan.candidates if c.recipe == "alexnet-tumour")
    assert any(s == "data.slices.size=64" for s in plan.candidates[names.index("alexnet-tumour")].set)
    bare = fp.fingerprint(_frame(_rows(6, "II", mask=""), _rows(6, "III", patient="Q{k}", mask="")), "label")
    plan = propose(bare, "c", 600, "cuda")
    assert [c.recipe for c in plan.candidates] == ["alexnet", "r18"] and not any(c.quick for c in plan.candidates)
    assert {"radiomics-rf", "st3d"} <= {d["recipe"] for d in plan.not_proposed}
    big = fp.fingerprint(
        _frame(_rows(40, "II", kind="volume"), _rows(40, "III", kind="volume", patient="Q{k}")), "label"
    )
    plan = propose(big, "c", 600, "cpu")
    assert plan.choose == "stack" and plan.candidates[-1].recipe == "st3d"


def test_a_plan_survives_yaml_and_an_edited_plan_is_checked(tmp_path):
    plan = Plan("c", candidates=[Candidate("a", "radiomics", set=["x=1"], trial_s=2.0)])
    write_plan(plan, tmp_path / "plan.yaml")
    assert read_plan(tmp_path / "plan.yaml") == plan
    data = yaml.safe_load((tmp_path / "plan.yaml").read_text())
    for change, words in (
        ({"choose": "vote"}, "choose"),
        ({"budget": 5}, "unknown plan setting"),
        ({"candidates": []}, "no candidates"),
    ):
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**data, **change}))
        with pytest.raises(InputError, match=words):
            read_plan(tmp_path / "bad.yaml")


# --- the budget, with trainings of known length --------------------------------------------------------------


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _runner(tmp_path, monkeypatch, seconds: dict[str, float], budget: float, runs: list):
    now = FakeTime()
    monkeypatch.setattr(execute.time, "perf_counter", now)
    plan = Plan("c", budget_s=budget, folds=2, inner_folds=2, candidates=[Candidate(n, "radiomics") for n in seconds])
    layout = execute.Layout(tmp_path)
    clock = execute.Clock(layout, budget, lambda line: None)
    runner = execute.Runner(plan, layout, None, clock, lambda line: None, progress=False)
    runner._per_fold = dict.fromkeys(seconds, True)  # trainings one fold at a time, as a deep recipe's

    def piece(candidate, part, fold):
        key = f"{part}/{fold}"
        if key in clock.pieces.get(candidate.name, {}):
            return clock.pieces[candidate.name][key]
        runs.append((candidate.name, key))
        now.now += seconds[candidate.name] * execute.share(plan, part)
        clock.pieces.setdefault(candidate.name, {})[key] = seconds[candidate.name] * execute.share(plan, part)
        clock.save()
        return seconds[candidate.name]

    monkeypatch.setattr(runner, "run_piece", piece)
    return runner, clock


def test_candidates_whose_estimate_does_not_fit_are_dropped_and_the_budget_holds(tmp_path, monkeypatch):
    runs = []
    # 2 outer + 4 inner trainings at half the share: a candidate costs 4x its trial
    runner, clock = _runner(tmp_path, monkeypatch, {"fast": 10, "slow": 100, "after": 10}, 200, runs)
    kept = runner.fit_budget()
    assert [c.name for c in kept] == ["fast", "after"] and kept[0].estimate_s == 40
    assert "estimated 300 s more" in clock.dropped["slow"]
    for candidate in kept:
        assert runner.complete(candidate)
    assert clock.spent() <= 200 and len(runs) == 2 * 6 + 1


def test_a_candidate_that_runs_out_of_time_is_dropped_and_nothing_overruns_by_more_than_one_training(
    tmp_path, monkeypatch
):
    runs = []
    runner, clock = _runner(tmp_path, monkeypatch, {"a": 10}, 30, runs)
    kept = runner.fit_budget()
    assert kept == []  # 10 s trial, 30 s more estimated, 20 s left
    assert "estimated 30 s more" in clock.dropped["a"] and clock.spent() == 10
    runs.clear()
    seconds = {"a": 10}
    runner, clock = _runner(tmp_path / "b", monkeypatch, seconds, 45, runs)
    kept = runner.fit_budget()
    seconds["a"] = 20  # the trainings turn out twice as long as the trial
    assert not runner.complete(kept[0]) and "out of time" in clock.dropped["a"]
    assert clock.spent() <= 45 + 20


# --- a real nested run: two forests on a small phantom -------------------------------------------------------


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory, monkeypatch_module):
    from glioscope.synth import PRESETS, synthesize

    root = tmp_path_factory.mktemp("auto")
    monkeypatch_module.setenv("GLIOSCOPE_CACHE", str(root / "cache"))
    preset = replace(PRESETS["tiny"], name="tiny24", n_per_grade=8, n_healthy=0)
    synthesize(root / "phantom", preset=preset, seed=0, progress=False, layouts=["brats"])
    ingest([root / "phantom" / "brats"], root / "brats", progress=False, echo=None)
    plan = Plan(
        str(root / "brats"), folds=2, inner_folds=2, budget_s=900, candidates=[Candidate(**c) for c in CANDIDATES]
    )
    write_plan(plan, root / "plan.yaml")
    seen = []
    real = select.auc

    def watched(patients, names):
        seen.append(set(patients["patient_id"]))
        return real(patients, names)

    monkeypatch_module.setattr(select, "auc", watched)
    out = root / "out"
    code = main(["auto", str(root / "brats"), "-o", str(out), "--plan", str(root / "plan.yaml"), "--bootstrap", "20"])
    monkeypatch_module.setattr(select, "auc", real)
    assert code == 0
    return {"out": out, "cohort": root / "brats", "seen": seen, "root": root}


def test_every_candidate_and_the_procedure_are_reported_on_the_same_folds(auto_run):
    out = auto_run["out"]
    board = pd.read_csv(out / "leaderboard.csv")
    assert list(board["model"]) == ["rf-a", "rf-b", "auto (nested choice)"]
    assert (board["patients"] == 24).all() and board["auc_low"].le(board["auc"]).all()
    folds = pd.read_csv(out / "folds" / SPLITS).drop_duplicates("patient_id").set_index("patient_id")["fold"]
    for name in ("rf-a", "rf-b"):
        run = pd.read_csv(out / "candidates" / name / "cv" / SPLITS).drop_duplicates("patient_id")
        assert run.set_index("patient_id")["fold"].sort_index().equals(folds.sort_index())
    report = (out / "report.html").read_text()
    assert "inner out-of-fold predictions" in report and "rf-b" in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_model"]["candidate"] in ("rf-a", "rf-b") and summary["dropped"] == []


def test_each_folds_choice_is_made_on_its_training_patients_only_and_gives_the_chosen_predictions(auto_run):
    out = auto_run["out"]
    table = pd.read_csv(out / "folds" / SPLITS)
    held = [set(table.loc[table["fold"] == k, "patient_id"]) for k in range(2)]
    inner_calls = [s for s in auto_run["seen"] if len(s) < 24]  # the pooled figures see every patient
    assert len(inner_calls) == 2 * 2
    for k, patients in enumerate([inner_calls[0], inner_calls[2]]):
        assert patients and not patients & held[k] and patients <= held[1 - k]
    choices = pd.read_csv(out / "choices.csv")
    nested = pd.read_csv(out / "predictions_patients.csv")
    for k in range(2):
        rows = choices[choices["fold"] == k]
        best = rows.sort_values("inner_auc", ascending=False, kind="stable").iloc[0]["candidate"]
        assert rows.loc[rows["chosen"], "candidate"].tolist() == [best]
        own = select.fold_patients(out / "candidates" / best / "cv", k, ["HGG", "LGG"])
        mine = nested[nested["fold"] == k].set_index("patient_id")["prob_LGG"].sort_index()
        assert sorted(mine.index) == sorted(held[k])
        assert own.set_index("patient_id")["prob_LGG"].sort_index().to_numpy() == pytest.approx(mine.to_numpy())


def test_the_final_model_is_a_package_that_test_takes(auto_run, tmp_path):
    out = auto_run["out"]
    assert (out / "model" / "manifest.json").is_file()
    final = json.loads((out / "summary.json").read_text())["final_model"]["candidate"]
    assert json.loads((out / "model" / "run.json").read_text())["package"]["exported_from"] == "cv"
    assert yaml.safe_load((out / "model" / "config.yaml").read_text())["classifier"]["min_samples_leaf"] == (
        [1] if final == "rf-a" else [3]
    )
    args = ["test", str(out / "model"), "--cohort", str(auto_run["cohort"]), "-o", str(tmp_path / "t")]
    assert main([*args, "--allow-shared-patients", "--allow-duplicates"]) == 0  # its own: stamped not external


def test_a_second_call_resumes_without_training_again_and_an_edited_candidate_starts_again(auto_run, monkeypatch):
    out = auto_run["out"]
    before = json.loads((out / "state.json").read_text())
    trained = []
    real = execute.Runner.run_piece

    def counted(self, candidate, part, fold):
        if f"{part}/{fold}" not in self.clock.pieces.get(candidate.name, {}):
            trained.append((candidate.name, part, fold))
        return real(self, candidate, part, fold)

    monkeypatch.setattr(execute.Runner, "run_piece", counted)
    assert main(["auto", str(auto_run["cohort"]), "-o", str(out), "--bootstrap", "20"]) == 2  # no --resume
    assert main(["auto", str(auto_run["cohort"]), "-o", str(out), "--resume", "--bootstrap", "20"]) == 0
    assert trained == []
    assert json.loads((out / "state.json").read_text())["spent_s"] >= before["spent_s"]
    plan = read_plan(out / "plan.yaml")
    plan.candidates[1].set = [*plan.candidates[1].set, "classifier.trees=12"]
    write_plan(plan, auto_run["root"] / "edited.yaml")
    assert (
        main(
            [
                "auto",
                str(auto_run["cohort"]),
                "-o",
                str(out),
                "--resume",
                "--plan",
                str(auto_run["root"] / "edited.yaml"),
                "--bootstrap",
                "20",
            ]
        )
        == 0
    )
    assert trained == [("rf-b", "cv", -1), ("rf-b", "inner0", -1), ("rf-b", "inner1", -1)]  # a run per part


def test_a_folder_of_another_cohort_is_refused(auto_run, tmp_path, capsys):
    folder = tmp_path / "other"
    _save(folder, _frame(_rows(6, "II"), _rows(6, "III", patient="Q{k}")))
    assert main(["auto", str(folder), "-o", str(auto_run["out"]), "--resume"]) == 2
    assert "another cohort" in capsys.readouterr().err


# --- a deep candidate: a short timed trial, one fold at a time, resumed after a kill -------------------------


def test_a_deep_candidate_is_timed_by_a_short_trial_and_resumes_after_a_kill(auto_run, monkeypatch):
    from glioscope.synth import PRESETS, synthesize

    root = auto_run["root"]
    preset = replace(PRESETS["tiny"], name="tiny24", n_per_grade=8, n_healthy=0)
    synthesize(root / "phantom2d", preset=preset, seed=0, progress=False, layouts=["imagefolder"])
    ingest(
        [root / "phantom2d" / "imagefolder"],
        root / "png",
        format="imagefolder",
        patient_regex=r"^(?P<patient>[^_]+)_",
        progress=False,
        echo=None,
    )
    fast = [
        "train.epochs=3",
        "data.slices.size=64",
        "data.select={}",
        "model.weights=none",
        "evaluate.bootstrap=20",
        "evaluate.gradcam_per_class=0",
        "train.batch_size=8",
    ]
    plan = Plan(str(root / "png"), folds=2, inner_folds=2, candidates=[Candidate("alex", "alexnet", True, fast)])
    write_plan(plan, root / "deep.yaml")
    out, real, trained = root / "deep", execute.Runner.run_piece, []

    def killed_at_the_fourth(self, candidate, part, fold):
        if f"{part}/{fold}" not in self.clock.pieces.get(candidate.name, {}):
            trained.append((part, fold))
            if len(trained) == 4:
                raise KeyboardInterrupt
        return real(self, candidate, part, fold)

    monkeypatch.setattr(execute.Runner, "run_piece", killed_at_the_fourth)
    args = ["auto", str(root / "png"), "-o", str(out), "--plan", str(root / "deep.yaml"), "--bootstrap", "20"]
    assert main(args) == 130
    assert (out / "trials" / "alex" / "fold0" / "metrics.csv").is_file()  # two epochs, not reused
    state = json.loads((out / "state.json").read_text())
    assert sorted(state["pieces"]["alex"]) == ["cv/0", "cv/1", "inner0/0"] and state["trials"]["alex"]["trial_s"] > 0
    trained.clear()
    assert main([*args, "--resume"]) == 0
    assert trained == [("inner0", 1), ("inner1", 0), ("inner1", 1)]
    history = pd.read_csv(out / "candidates" / "alex" / "cv" / "fold1" / "metrics.csv")
    assert list(history["epoch"]) == [1, 2, 3]  # the recipe's epochs, not the trial's
    assert json.loads((out / "summary.json").read_text())["final_model"]["candidate"] == "alex"


def test_a_stacked_choice_reuses_the_trainings_and_makes_an_ensemble_package(auto_run, monkeypatch, tmp_path):
    from glioscope.trained import TrainedRun

    out, trained, real = auto_run["out"], [], execute.Runner.run_piece

    def counted(self, candidate, part, fold):
        if f"{part}/{fold}" not in self.clock.pieces.get(candidate.name, {}):
            trained.append((candidate.name, part, fold))
        return real(self, candidate, part, fold)

    monkeypatch.setattr(execute.Runner, "run_piece", counted)
    plan = read_plan(out / "plan.yaml")
    plan.choose = "stack"
    write_plan(plan, tmp_path / "stack.yaml")
    args = ["auto", str(auto_run["cohort"]), "-o", str(out), "--resume", "--plan", str(tmp_path / "stack.yaml")]
    assert main([*args, "--bootstrap", "20"]) == 0 and trained == []
    choices = pd.read_csv(out / "choices.csv")
    assert set(choices.columns) >= {"fold", "candidate", "inner_auc", "weight"} and len(choices) == 2 * 2
    assert sorted(p.name for p in (out / "model" / "members").iterdir()) == ["rf-a", "rf-b"]
    assert (out / "model" / "fold1" / "combiner.npz").is_file()
    run = TrainedRun(out / "model")
    assert run.record.models == ["rf-a", "rf-b", "auto"]
    package = json.loads((out / "model" / "metrics.json").read_text())["cv"]["auto"]["patient"]["pooled"]["auc"]
    assert package == pytest.approx(json.loads((out / "summary.json").read_text())["figure"]["auc"])
    test = ["test", str(out / "model"), "--cohort", str(auto_run["cohort"]), "-o", str(tmp_path / "t")]
    assert main([*test, "--allow-shared-patients", "--allow-duplicates"]) == 0


def test_an_option_that_contradicts_the_plan_is_refused(auto_run, capsys):
    args = ["auto", str(auto_run["cohort"]), "-o", str(auto_run["out"]), "--resume", "--folds", "5"]
    assert main(args) == 2
    assert "says folds: 2, --folds 5" in capsys.readouterr().err


def test_a_model_that_gives_everyone_the_same_probability_has_no_auc_to_be_chosen_by():
    same = pd.DataFrame({"target": [0, 1, 0, 1], "prob_a": [0.4] * 4, "prob_b": [0.6] * 4})
    assert np.isnan(select.auc(same, ["a", "b"]))
    ranked = same.assign(prob_b=[0.2, 0.9, 0.6, 0.4], prob_a=lambda f: 1 - f["prob_b"])
    assert select.auc(ranked, ["a", "b"]) == 0.75


def test_plan_only_prints_the_timed_plan_and_the_plan_then_runs_reusing_its_trials(auto_run, monkeypatch, capsys):
    out, trained, real = auto_run["root"] / "planned", [], execute.Runner.run_piece

    def counted(self, candidate, part, fold):
        if f"{part}/{fold}" not in self.clock.pieces.get(candidate.name, {}):
            trained.append((candidate.name, part, fold))
        return real(self, candidate, part, fold)

    monkeypatch.setattr(execute.Runner, "run_piece", counted)
    args = ["auto", str(auto_run["cohort"]), "-o", str(out), "--plan", str(auto_run["root"] / "plan.yaml")]
    assert main([*args, "--plan-only"]) == 0
    printed = capsys.readouterr().out
    assert "candidates:" in printed and "trial_s:" in printed and not (out / "model").exists()
    plan = read_plan(out / "plan.yaml")
    assert all(c.trial_s > 0 and c.estimate_s >= c.trial_s for c in plan.candidates)
    assert trained == [("rf-a", "cv", -1), ("rf-b", "cv", -1)]
    assert main(["auto", str(auto_run["cohort"]), "-o", str(out), "--plan", str(out / "plan.yaml")]) == 2  # no --resume
    assert main(["auto", str(auto_run["cohort"]), "-o", str(out), "--plan", str(out / "plan.yaml"), "--resume"]) == 0
    assert [t for t in trained if t[1] == "cv"] == [("rf-a", "cv", -1), ("rf-b", "cv", -1)]  # the trials, reused
    assert (out / "model" / "manifest.json").is_file()


def test_a_held_out_patient_the_chosen_candidate_cannot_take_gets_the_next_ones_prediction(monkeypatch):
    patients = [f"P{k}" for k in range(8)]
    targets = dict(zip(patients, [0, 1, 0, 1, 0, 1, 0, 1]))
    table = pd.DataFrame({"item_id": patients, "patient_id": patients, "partition": "cv", "fold": [0] * 4 + [1] * 4})

    def fold_patients(run, j, names):
        candidate, part = run.split("/")
        if part == "cv":
            ids = [p for p in patients if table.set_index("patient_id").at[p, "fold"] == j]
            ids = [p for p in ids if not (candidate == "a" and p == "P0")]  # a cannot take P0
        else:  # inner CV of outer fold k: its training patients, in two inner folds
            k = int(part[len("inner") :])
            ids = [p for p in patients if table.set_index("patient_id").at[p, "fold"] != k][j::2]
        good = candidate == "a"
        prob = [0.8 if targets[p] == good else 0.2 for p in ids]
        return pd.DataFrame(
            {
                "fold": str(j),
                "patient_id": ids,
                "target": [targets[p] for p in ids],
                "prob_y": prob,
                "prob_n": [1 - x for x in prob],
            }
        )[["fold", "patient_id", "target", "prob_n", "prob_y"]]

    monkeypatch.setattr(select, "fold_patients", fold_patients)
    nested = select.choose(
        "best", ["b", "a"], {"a": "a/cv", "b": "b/cv"}, lambda c, k: f"{c}/inner{k}", table, 2, 2, ["n", "y"]
    )
    fold0 = nested.choices[nested.choices["fold"] == 0].set_index("candidate")
    assert fold0.at["a", "chosen"] and fold0.at["a", "inner_auc"] == 1.0 and fold0.at["b", "inner_auc"] == 0.0
    assert fold0.at["a", "patients_given"] == 3 and fold0.at["b", "patients_given"] == 1
    held = nested.predictions[nested.predictions["fold"] == "0"].set_index("patient_id")["prob_y"]
    assert sorted(held.index) == ["P0", "P1", "P2", "P3"] and held["P2"] == 0.2  # P1-P3: a (right)
    assert held["P0"] == 0.8  # b, which ranks the other way round: the next-ranked candidate that has P0


def test_a_resumed_folder_takes_its_plans_task_without_the_option(auto_run, tmp_path):
    plan = read_plan(auto_run["out"] / "plan.yaml")
    plan.task = "grade"
    out = tmp_path / "graded"
    out.mkdir()
    write_plan(plan, out / "plan.yaml")
    from glioscope.auto.run import _settings

    assert _settings(plan, {"task": None, "folds": None}, out)["task"] == "grade"
    with pytest.raises(InputError, match="says task: grade, --task label"):
        _settings(plan, {"task": "label"}, out)
    from glioscope.cli import build_parser

    assert build_parser().parse_args(["auto", "c", "-o", "o"]).task is None  # the plan's, or label


def test_the_leaderboard_gives_each_sites_auc_when_the_ids_tell_the_sites():
    from glioscope.auto.report import _within_sites

    ids = ["TCGA_CS_1", "TCGA_CS_2", "TCGA_CS_3", "TCGA_FG_1", "TCGA_FG_2", "TCGA_FG_3"]
    patients = pd.DataFrame(
        {"patient_id": ids, "target": [0, 1, 1, 0, 0, 1], "prob_y": [0.9, 0.8, 0.7, 0.1, 0.2, 0.6]}
    ).assign(prob_n=lambda f: 1 - f["prob_y"])
    row = _within_sites({}, patients, ["n", "y"], {"CS": {}, "FG": {}})
    assert row == {"auc_site_CS": 0.0, "auc_site_FG": 1.0}  # the site, not the class, was learnt across sites
    assert _within_sites({}, patients, ["n", "y"], None) == {}
