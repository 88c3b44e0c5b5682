"""A model package cannot be altered unnoticed: its manifest is checked whenever it is opened (predict, test, the web
app), its files are checked against one another, and its patient ids are salted, hashed slowly, or left out."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from glioscope.batch import predict_batch
from glioscope.cli import main
from glioscope.leakcheck import SEEN_BY_ID, SEEN_BY_PIXELS
from glioscope.errors import InputError
from glioscope.predict import predict
from glioscope.rundir import PatientDigests, hash_patient, write_manifest
from glioscope.trained import NO_PATIENT_IDS, TrainedRun


@pytest.fixture(scope="module")
def packages(tiny_2d_run, module_tmp):
    """Two packages of the tiny run (each with its own salt), and one exported without patient ids."""
    made = {}
    for name, extra in (("a", []), ("b", []), ("anonymous", ["--no-patient-ids"])):
        made[name] = module_tmp / "packages" / name
        assert main(["export", str(tiny_2d_run), "-o", str(made[name]), *extra]) == 0
    return made


@pytest.fixture(scope="module")
def study(tiny_phantom):
    """A series of a patient the run trained on."""
    return sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]


@pytest.fixture(scope="module")
def renamed_cohort(sagittal_cohort, module_tmp):
    """The training cohort under new patient ids: its images are still the run's own (--allow-duplicates)."""
    frame = pd.read_csv(sagittal_cohort / "cohort.csv", dtype=str, keep_default_na=False)
    frame["patient_id"] = "new-" + frame["patient_id"]
    (module_tmp / "renamed").mkdir()
    frame.to_csv(module_tmp / "renamed" / "cohort.csv", index=False)
    return module_tmp / "renamed"


def _copy(package: Path, where: Path) -> Path:
    """The package's files linked, not copied (a test replaces a file, never writes into one: see _replace)."""
    shutil.copytree(package, where, copy_function=os.link)
    return where


def _replace(path: Path, data: bytes | str) -> None:
    path.unlink(missing_ok=True)  # a new file: the original, linked from the module's package, stays as it was
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    _replace(path, json.dumps(data, indent=2))


def _edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    _replace(path, yaml.safe_dump(data, sort_keys=False))


def _weights(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    first = next(iter(state["model"]))
    state["model"][first] = state["model"][first] + 1e-3
    path.unlink()
    torch.save(state, path)


def _fingerprints(path: Path) -> None:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k][1:] if archive[k].ndim else archive[k] for k in archive.files}  # one image fewer
    path.unlink()
    np.savez(path, **arrays)


def _patients(path: Path) -> None:
    _edit_json(path, lambda d: d["patients"].pop())  # one training patient no longer recognised


ALTERATIONS = {
    "fold0/model.pt": _weights,
    "config.yaml": lambda p: _edit_yaml(p, lambda d: d["data"]["slices"].update(size=96)),
    "run.json": lambda p: _edit_json(p, lambda d: d.update(class_names=["IV", "III", "II"])),  # same count, swapped
    "fingerprints.npz": _fingerprints,
    "patients.json": _patients,
    "metadata.json": lambda p: _edit_json(p, lambda d: d.update(intended_use="anything")),
    "README.md": lambda p: _replace(p, p.read_text().replace("not for diagnosis", "for diagnosis")),
}


def _refused(args: list[str], capsys, *words: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words) and "Traceback" not in err, err


def test_the_manifest_holds_the_digest_and_size_of_every_other_file(packages):
    package = packages["a"]
    files = json.loads((package / "manifest.json").read_text())["files"]
    on_disk = {p.relative_to(package).as_posix(): p for p in package.rglob("*") if p.is_file()}
    assert set(files) == set(on_disk) - {"manifest.json"}
    assert {"fold0/model.pt", "fold1/model.pt", "config.yaml", "run.json", "patients.json"} <= set(files)
    for name, entry in files.items():
        data = on_disk[name].read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}, name
    assert TrainedRun(package).notes == []


@pytest.mark.parametrize("name", list(ALTERATIONS))
def test_an_altered_file_is_refused_by_trained_run_predict_and_test_naming_it(
    name, packages, study, renamed_cohort, tmp_path, capsys
):
    package = _copy(packages["a"], tmp_path / "package")
    ALTERATIONS[name](package / name)
    expected = f"altered since export: {name} differs; export it again"
    with pytest.raises(InputError, match=expected):
        TrainedRun(package)
    _refused(["predict", str(package), str(study)], capsys, str(package), expected, "--accept-altered-package")
    test = ["test", str(package), "--cohort", str(renamed_cohort), "-o", str(tmp_path / "t"), "--allow-duplicates"]
    _refused(test, capsys, expected)
    assert not (tmp_path / "t").exists()


def test_missing_and_extra_files_are_refused_naming_them(packages, study, tmp_path, capsys):
    package = _copy(packages["a"], tmp_path / "package")
    (package / "fold1" / "model.pt").unlink()
    (package / "fold2").mkdir()
    shutil.copy(package / "fold0" / "model.pt", package / "fold2" / "model.pt")  # a third fold model in the ensemble
    (package / "notes.txt").write_text("hello")
    _weights(package / "fold0" / "model.pt")
    expected = (
        "altered since export: fold0/model.pt differs, fold1/model.pt missing, fold2/model.pt extra, notes.txt extra"
    )
    with pytest.raises(InputError, match=expected):
        TrainedRun(package)
    _refused(["predict", str(package), str(study)], capsys, expected)
    (package / "manifest.json").unlink()  # a manifest that cannot be read counts as altered too
    (package / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match="manifest.json cannot be read"):
        TrainedRun(package)


def test_accepted_anyway_every_output_says_so(packages, study, renamed_cohort, tmp_path, capsys):
    package = _copy(packages["a"], tmp_path / "package")
    _weights(package / "fold0" / "model.pt")
    assert main(["predict", str(package), str(study), "--accept-altered-package", "-o", str(tmp_path / "p.json")]) == 0
    capsys.readouterr()
    notes = json.loads((tmp_path / "p.json").read_text())["notes"]
    assert notes[0].startswith("ALTERED PACKAGE") and "fold0/model.pt differs" in notes[0]
    batch = predict_batch(package, [renamed_cohort], progress=False, accept_altered=True)
    assert batch["notes"][0].startswith("ALTERED PACKAGE")
    out = tmp_path / "external"
    args = ["test", str(package), "--cohort", str(renamed_cohort), "-o", str(out), "--allow-duplicates"]
    assert main([*args, "--bootstrap", "10", "--accept-altered-package"]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["split_statement"].startswith("ALTERED PACKAGE") and "fold0/model.pt differs" in record["notes"][0]
    assert record["external"]["package_altered"] == [notes[0]]
    assert "ALTERED PACKAGE" in (out / "report.html").read_text()


def test_a_package_without_a_manifest_is_refused_unless_accepted_and_old_hashes_still_work(
    packages, study, tiny_2d_run, tmp_path, capsys
):
    package = _copy(packages["a"], tmp_path / "package")  # as exported before manifests and salts
    (package / "manifest.json").unlink()
    (package / "patients.json").unlink()
    ids = sorted(set(pd.read_csv(tiny_2d_run / "cohort.csv", dtype=str)["patient_id"]))
    (package / "patients.sha256").write_text("\n".join(sorted(hash_patient(i) for i in ids)) + "\n")
    _refused(["predict", str(package), str(study)], capsys, "has no manifest.json", "export it again")
    run = TrainedRun(package, accept_altered=True)
    assert run.notes[0].startswith("UNCHECKED PACKAGE")
    assert run.seen_patients([ids[0], "someone-else"]) == {ids[0]}  # through the unsalted hash
    result = predict(package, study, accept_altered=True)
    assert result["patients"][0]["seen_in_training"] is True and result["notes"][0] == run.notes[0]


@pytest.mark.parametrize("classes", [["II", "IV"], ["II", "III", "IV", "V"]])
def test_class_names_that_the_weights_cannot_give_are_refused_even_with_a_new_manifest(
    classes, packages, study, tmp_path, capsys
):
    package = _copy(packages["a"], tmp_path / "package")
    _edit_json(package / "run.json", lambda d: d.update(class_names=classes))
    _edit_json(
        package / "metadata.json",
        lambda d: d["network_data_format"]["outputs"]["pred"].update(
            num_channels=len(classes), channel_def={str(k): c for k, c in enumerate(classes)}
        ),
    )
    write_manifest(package)  # rewritten to match: only the files' agreement can tell
    words = [f"run.json: names {len(classes)} class(es)", "has 3: the class names do not belong to these weights"]
    with pytest.raises(InputError) as refused:
        TrainedRun(package)
    assert all(w in str(refused.value) for w in words), refused.value
    _refused(["predict", str(package), str(study)], capsys, *words)


METADATA_EDITS = {
    "inputs.image.num_channels": lambda d: d["inputs"]["image"].update(num_channels=1),
    "inputs.image.spatial_shape": lambda d: d["inputs"]["image"].update(spatial_shape=[128, 128]),
    "outputs.pred.num_channels": lambda d: d["outputs"]["pred"].update(num_channels=2),
    "outputs.pred.channel_def": lambda d: d["outputs"]["pred"].update(channel_def={"0": "IV", "1": "III", "2": "II"}),
}


@pytest.mark.parametrize("key", list(METADATA_EDITS))
def test_metadata_that_disagrees_with_the_config_or_weights_is_refused_naming_it(key, packages, tmp_path):
    package = _copy(packages["a"], tmp_path / "package")
    _edit_json(package / "metadata.json", lambda d: METADATA_EDITS[key](d["network_data_format"]))
    write_manifest(package)
    with pytest.raises(InputError, match=f"metadata.json: network_data_format {key} is"):
        TrainedRun(package)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"channels": "single"}, "config.yaml: its data section gives 1 input channel(s)"),
        ({"size": 128}, "metadata.json: network_data_format inputs.image.spatial_shape is [64, 64]"),
    ],
)
def test_a_config_that_disagrees_with_the_weights_or_metadata_is_refused(change, words, packages, tmp_path):
    package = _copy(packages["a"], tmp_path / "package")
    _edit_yaml(package / "config.yaml", lambda d: d["data"]["slices"].update(change))
    write_manifest(package)
    with pytest.raises(InputError, match=re.escape(words)):
        TrainedRun(package)


def test_a_run_folder_whose_class_names_were_edited_is_refused_too(tiny_2d_run, tmp_path):
    run = _copy(tiny_2d_run, tmp_path / "run")
    _edit_json(run / "run.json", lambda d: d.update(class_names=["II", "IV"]))
    with pytest.raises(InputError, match="run.json: names 2 class"):
        TrainedRun(run)


def test_patient_ids_are_salted_per_package_and_still_recognised(packages, tiny_2d_run):
    ids = sorted(set(pd.read_csv(tiny_2d_run / "cohort.csv", dtype=str)["patient_id"]))
    stored = {k: json.loads((packages[k] / "patients.json").read_text()) for k in ("a", "b")}
    assert stored["a"]["salt"] != stored["b"]["salt"] and stored["a"]["hash"] == "scrypt"
    assert len(stored["a"]["patients"]) == len(ids) and not set(stored["a"]["patients"]) & set(stored["b"]["patients"])
    for k in ("a", "b"):
        assert TrainedRun(packages[k]).seen_patients([ids[0], ids[-1], "new-patient"]) == {ids[0], ids[-1]}
        with np.load(packages[k] / "fingerprints.npz", allow_pickle=False) as prints:
            assert set(prints["patients"]) <= set(stored[k]["patients"])  # the images' patients: the same digests
    unsalted = {hash_patient(i) for i in ids}
    for path in packages["a"].rglob("*"):
        if path.is_file() and path.suffix in (".md", ".json", ".yaml"):
            text = path.read_text()
            assert not [i for i in {*ids, *unsalted} if i in text], path.name
    card = (packages["a"] / "README.md").read_text()
    assert "TCGA-XX-NNNN" in card and "can still confirm whether an id" in card


def test_an_export_without_patient_ids_says_nothing_was_checked(
    packages, study, renamed_cohort, tiny_2d_run, tmp_path, capsys
):
    package = packages["anonymous"]
    assert not (package / "patients.json").exists() and not (package / "patients.sha256").exists()
    ids = set(pd.read_csv(tiny_2d_run / "cohort.csv", dtype=str)["patient_id"])
    with np.load(package / "fingerprints.npz", allow_pickle=False) as prints:
        assert all(p.startswith("training patient ") for p in prints["patients"])
    assert TrainedRun(package).seen_patients(ids) is None
    result = predict(package, study)  # a training patient: by id nobody can tell, but its pixels still match
    [patient] = result["patients"]
    assert patient["seen_because"] == [SEEN_BY_PIXELS] and NO_PATIENT_IDS in result["notes"]
    batch = predict_batch(package, [renamed_cohort], progress=False)
    for entry in batch["patients"]:  # never by id; seen only when an image matches, else unknown (null)
        assert SEEN_BY_ID not in entry["seen_because"]
        assert entry["seen_in_training"] is (True if entry["seen_because"] else None)
    assert NO_PATIENT_IDS in batch["notes"]
    out = tmp_path / "external"
    args = ["test", str(package), "--cohort", str(renamed_cohort), "-o", str(out), "--allow-duplicates"]
    assert main([*args, "--bootstrap", "10"]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["split_statement"].startswith("External test: patient ids were not checked")
    assert NO_PATIENT_IDS in record["notes"] and record["external"]["patient_ids_checked"] is False
    assert "--no-patient-ids" in (package / "README.md").read_text()


def test_hashed_ids_files_asking_for_too_much_work_are_refused(tmp_path):
    digests = PatientDigests.new()
    digests.write(tmp_path / "patients.json", digests.of(["a", "b"]).values())
    assert PatientDigests.read(tmp_path / "patients.json").seen(["a", "c"]) == {"a"}
    data = json.loads((tmp_path / "patients.json").read_text())
    for bad in ({"n": 2**30}, {"n": 3000}, {"p": 64}, {"salt": "not hex"}):
        (tmp_path / "bad.json").write_text(json.dumps({**data, **bad}))
        with pytest.raises(InputError, match="bad.json"):
            PatientDigests.read(tmp_path / "bad.json")


def test_the_web_app_refuses_a_package_altered_after_it_was_opened(packages, study, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from glioscope.serve import create_app

    package = _copy(packages["a"], tmp_path / "runs" / "package")
    client = TestClient(  # as a script calls the API: the launch's token in its header
        create_app(tmp_path / "runs", token="a-token-for-this-test"),
        base_url="http://127.0.0.1:8000",
        headers={"Authorization": "token a-token-for-this-test"},
    )
    files = [("files", (p.name, p.read_bytes())) for p in sorted(study.rglob("*.dcm"))]
    assert client.post("/api/predict", data={"model": "package"}, files=files).status_code == 200
    _replace(package / "README.md", "a card rewritten after export\n")
    refused = client.post("/api/predict", data={"model": "package"}, files=files)  # the cached run is not reused
    assert refused.status_code == 422 and "altered since export: README.md differs" in refused.json()["error"]


def test_pretraining_excludes_a_salted_package_by_id_and_refuses_one_without_ids(packages, tiny_2d_run):
    from glioscope.errors import PatientLeakError
    from glioscope.pretrain.leaks import check_patients

    ids = sorted(set(pd.read_csv(tiny_2d_run / "cohort.csv", dtype=str)["patient_id"]))
    check_patients({"new-patient"}, [packages["a"]])
    with pytest.raises(PatientLeakError, match=ids[0]):
        check_patients({ids[0], "new-patient"}, [packages["a"]])
    with pytest.raises(InputError, match="holds no patient ids"):
        check_patients({"new-patient"}, [packages["anonymous"]])
