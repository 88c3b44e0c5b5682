"""glioscope serve through FastAPI's test client: runs, run pages, comparisons, predictions and every bad upload."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import stat
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="glioscope serve needs fastapi (pip install -e .)")

from fastapi.testclient import TestClient  # noqa: E402

from glioscope.cli import main  # noqa: E402
from glioscope.io.testing import write_dicom_series  # noqa: E402
from glioscope.serve import Limits, create_app  # noqa: E402

FAST_3D = [
    "train.epochs=1",
    "cv.folds=2",
    "data.volumes.spacing=8.0",
    "data.volumes.shape=[20,28,24]",
    "data.volumes.skull_strip=none",
    "evaluate.bootstrap=30",
    "evaluate.gradcam_per_class=0",
    "model.weights=none",
]
_BUILT: dict[str, dict] = {}  # one set of runs per session, shared with test_serve_browser


def build_serve_runs(tmp_path_factory, tiny_2d_run, tiny_phantom) -> dict:
    """RUNS_DIR with the tiny 2D run twice (same folds), its model package, and a one-fold 3D run; and the studies."""
    key = str(tmp_path_factory.getbasetemp())
    if key in _BUILT:
        return _BUILT[key]
    root = tmp_path_factory.mktemp("serve") / "runs"
    for name in ("sdl", "sdl-again"):
        shutil.copytree(tiny_2d_run, root / name, ignore=shutil.ignore_patterns("tensorboard"))
    work = root.parent / "work"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLIOSCOPE_CACHE", str(work / "cache"))
        assert main(["export", str(tiny_2d_run), "-o", str(root / "packages" / "sdl-package")]) == 0
        from glioscope.ingest import ingest

        ingest([tiny_phantom / "brats", tiny_phantom / "ixi"], work / "volumes", progress=False, echo=None)
        args = [a for item in FAST_3D for a in ("--set", item)]
        assert (
            main(["train", "st3d", "--cohort", str(work / "volumes"), "--fold", "0", "-o", str(root / "st3d"), *args])
            == 0
        )
    assert not list(root.rglob("checkpoint_*.pt"))  # finished folds keep no resume state
    outside = root.parent / "secret.txt"
    outside.write_text("outside RUNS_DIR")
    (root / "sdl" / "escape.txt").symlink_to(outside)
    patient = sorted((tiny_phantom / "dicom" / "REMBRANDT").iterdir())[0]
    studies = {
        "png": sorted((tiny_phantom / "imagefolder").rglob("*.png"))[0],
        "nifti": sorted((tiny_phantom / "brats").rglob("*_t1ce.nii.gz"))[0],
        "study": patient,
        "sagittal": next(patient.glob("*/*SAG T1*")),
    }
    _BUILT[key] = {"root": root, "studies": studies, "outside": outside}
    return _BUILT[key]


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory, tiny_2d_run, tiny_phantom):
    return build_serve_runs(tmp_path_factory, tiny_2d_run, tiny_phantom)


@pytest.fixture(scope="module")
def client(serve_runs):
    return TestClient(create_app(serve_runs["root"]))


@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    """Uploads go to this folder, so that a test can see that nothing is left behind."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


_PREDICTED: dict[tuple[str, str], dict] = {}


def cli_predict(run: Path, path: Path, capsys) -> dict:
    """What `glioscope predict RUN PATH` prints (once per run and input in a session: it is deterministic)."""
    key = (str(run), str(path))
    if key not in _PREDICTED:
        capsys.readouterr()
        assert main(["predict", str(run), str(path)]) == 0
        _PREDICTED[key] = json.loads(capsys.readouterr().out)
    return _PREDICTED[key]


def upload(client, model: str, files: list[tuple[str, bytes]], page: str = "/api/predict", **extra):
    return client.post(page, data={"model": model}, files=[("files", f) for f in files], **extra)


def zipped(members: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_the_runs_page_lists_each_run_with_its_headline_and_split(client, serve_runs):
    listed = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(listed) == {"sdl", "sdl-again", "packages/sdl-package", "st3d"}
    sdl = listed["sdl"]
    assert sdl["task"] == "glioma grade II / III / IV" and sdl["recipe"] == "sdl" and sdl["patients"] == 9
    metrics = json.loads((serve_runs["root"] / "sdl" / "metrics.json").read_text())["cv"]["sdl/mean"]["patient"]
    assert sdl["headline"]["metric"] == "accuracy" and sdl["headline"]["value"] == metrics["pooled"]["accuracy"]
    assert sdl["headline"]["ci"] == metrics["ci"]["accuracy"] and "Split by patient" in sdl["split_statement"]
    assert listed["packages/sdl-package"]["kind"] == "package" and listed["packages/sdl-package"]["patients"] == 9
    assert listed["st3d"]["samples"] == "volumes" and listed["st3d"]["applicable"]
    html = client.get("/").text
    assert "glioma grade II / III / IV" in html and "Split by patient" in html and str(serve_runs["root"]) not in html


def test_a_run_page_shows_its_report_and_files_stay_inside_runs_dir(client, serve_runs):
    page = client.get("/run", params={"id": "sdl"})
    assert page.status_code == 200 and "report.html" in page.text and "Apply to a study" in page.text
    report = client.get("/run/file", params={"id": "sdl", "name": "report.html"})
    assert report.status_code == 200 and report.text == (serve_runs["root"] / "sdl" / "report.html").read_text()
    for run_id, name in (
        ("sdl", "../sdl-again/run.json"),
        ("sdl", "../../secret.txt"),
        ("sdl", "/etc/passwd"),
        ("sdl", "escape.txt"),
        ("../sdl", "run.json"),
        ("sdl/..", "sdl/run.json"),
        ("nope", "run.json"),
    ):
        response = client.get("/run/file", params={"id": run_id, "name": name})
        assert response.status_code == 404 and "outside RUNS_DIR" not in response.text, (run_id, name)
    assert client.get("/run", params={"id": "../" + serve_runs["root"].name}).status_code == 404


def test_compare_accepts_the_same_folds_and_refuses_others_with_the_reason(client):
    ok = client.get("/compare", params={"run": ["sdl", "sdl-again"]})
    assert ok.status_code == 200 and "/compare/view?" in ok.text
    view = client.get("/compare/view", params={"run": ["sdl", "sdl-again"]})
    assert view.status_code == 200 and "glioscope comparison" in view.text and "same folds" in view.text
    refused = client.get("/compare", params={"run": ["sdl", "st3d"]})
    assert refused.status_code == 422 and "Not compared" in refused.text and "share only 0" in refused.text
    assert "choose at least two" in client.get("/compare", params={"run": ["sdl"]}).text


@pytest.mark.parametrize("kind, run", [("png", "sdl"), ("nifti", "st3d"), ("study", "packages/sdl-package")])
def test_a_prediction_is_that_of_glioscope_predict_per_fold_and_ensemble(
    client, serve_runs, kind, run, capsys, temp_root
):
    path = serve_runs["studies"][kind]
    if kind == "study":  # a zip of a whole DICOM study: the run's selection picks its sagittal T1 series
        files = {str(p.relative_to(path.parent)): p.read_bytes() for p in sorted(path.rglob("*.dcm"))}
        payload = [(f"{path.name}.zip", zipped(files))]
    else:
        payload = [(path.name, path.read_bytes())]
    response = upload(client, run, payload)
    assert response.status_code == 200, response.text
    result = response.json()
    expected = cli_predict(serve_runs["root"] / run, path, capsys)
    [patient], [want] = result["patients"], expected["patients"]
    assert patient["probabilities"] == want["probabilities"] and patient["prediction"] == want["prediction"]
    assert patient["seen_in_training"] == want["seen_in_training"] and result["classes"] == expected["classes"]
    folds = patient["folds"]
    assert len(folds) == (1 if run == "st3d" else 2)
    mean = {c: sum(f["probabilities"][c] for f in folds.values()) / len(folds) for c in result["classes"]}
    assert mean == pytest.approx(patient["probabilities"], abs=2e-6)  # the ensemble is the folds' mean
    assert result["viewer"]["layout"] == ("volume" if run == "st3d" else "stack") and result["viewer"]["cam"]
    assert str(temp_root) not in json.dumps(result) and not list(temp_root.glob("glioscope-serve-*"))
    token = result["viewer"]["token"]
    image = client.get(f"/api/viewer/{token}/image").content
    shape = result["viewer"]["shape"]
    assert len(image) == len(result["viewer"]["channels"]) * int(np.prod(shape))
    assert len(client.get(f"/api/viewer/{token}/cam").content) == int(np.prod(shape))


def test_dicom_files_uploaded_one_by_one_and_the_html_result_page(client, serve_runs, capsys, temp_root):
    series = serve_runs["studies"]["sagittal"]
    files = [(p.name, p.read_bytes()) for p in sorted(series.glob("*.dcm"))]
    page = upload(client, "sdl", files, page="/predict")
    assert page.status_code == 200 and 'id="probabilities"' in page.text and "viewer.js" in page.text
    expected = cli_predict(serve_runs["root"] / "sdl", series, capsys)["patients"][0]
    for name, p in expected["probabilities"].items():
        assert f'data-class="{name}" data-fold="ensemble" data-prob="{p!r}"' in page.text
    assert "Seen in training" in page.text and "slice(s) used" in page.text  # the phantom patient trained the run
    assert "script-src 'self'" in page.headers["content-security-policy"]


def _ct_series(tmp_path) -> list[tuple[str, bytes]]:
    paths = write_dicom_series(tmp_path / "ct", "CT-1", "HEAD CT", Modality="CT")
    return [(p.name, p.read_bytes()) for p in paths]


BAD_UPLOADS = {
    "not MR": (lambda t, s: ("sdl", _ct_series(t)), 422, "not MR"),
    "truncated DICOM": (
        lambda t, s: ("sdl", [("1-01.dcm", next(s["sagittal"].glob("*.dcm")).read_bytes()[:400])]),
        422,
        "1-01.dcm",
    ),
    "not a NIfTI": (lambda t, s: ("st3d", [("scan.nii.gz", b"\x1f\x8b not really gzip" * 40)]), 422, "scan.nii.gz"),
    "2D image to a 3D model": (lambda t, s: ("st3d", [(s["png"].name, s["png"].read_bytes())]), 422, "3D model"),
    "no file": (lambda t, s: ("sdl", []), 400, "no file was uploaded"),
    "unknown model": (lambda t, s: ("../sdl", [(s["png"].name, s["png"].read_bytes())]), 404, "no run"),
    "zip path traversal": (lambda t, s: ("sdl", [("a.zip", zipped({"../../evil.dcm": b"x"}))]), 400, "outside"),
    "zip absolute path": (lambda t, s: ("sdl", [("a.zip", zipped({"/tmp/evil.dcm": b"x"}))]), 400, "outside"),
    "zip link": (lambda t, s: ("sdl", [("a.zip", zipped({"a.dcm": b"x"}, links=("b.dcm",)))]), 400, "symbolic link"),
    "zip bomb (ratio)": (lambda t, s: ("sdl", [("a.zip", zipped({"zeros.dcm": bytes(30 * 2**20)}))]), 413, "zip bomb"),
    "corrupt zip": (
        lambda t, s: ("sdl", [("a.zip", zipped({"a.dcm": os.urandom(5000)})[:300])]),
        422,
        "cannot be read",
    ),
    "empty zip": (lambda t, s: ("sdl", [("a.zip", zipped({}))]), 422, "holds no file"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_every_bad_upload_gets_a_clear_error_and_leaves_nothing(client, serve_runs, tmp_path, temp_root, case):
    make, status, words = BAD_UPLOADS[case]
    model, files = make(tmp_path, serve_runs["studies"])
    response = client.post(
        "/api/predict", data={"model": model}, files=[("files", f) for f in files] or [("files", ("", b""))]
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error and "Traceback" not in error and str(temp_root) not in error
    assert not list(temp_root.glob("glioscope-serve-*")) and not (temp_root.parent / "evil.dcm").exists()
    page = client.post("/predict", data={"model": model}, files=[("files", f) for f in files] or [("files", ("", b""))])
    assert page.status_code == status and 'role="alert"' in page.text and "Traceback" not in page.text


def test_limits_on_size_and_zip_members_and_an_unexpected_failure(serve_runs, tmp_path, temp_root, monkeypatch):
    small = TestClient(create_app(serve_runs["root"], Limits(max_upload=2**20, max_unzipped=2**20, max_members=3)))
    big = upload(small, "sdl", [("scan.nii.gz", os.urandom(2 * 2**20))])
    assert big.status_code == 413 and "larger than the limit of 1 MB" in big.json()["error"]
    many = upload(small, "sdl", [("a.zip", zipped({f"{k}.dcm": b"x" for k in range(5)}))])
    assert many.status_code == 413 and "5 members" in many.json()["error"]
    block = os.urandom(1000) * 600  # 600 kB that pack well, but not like a bomb
    declared = upload(small, "sdl", [("a.zip", zipped({"a.dcm": block, "b.dcm": block}))])
    assert declared.status_code == 413 and "zip bomb" in declared.json()["error"]
    wrong_mask = small.post(
        "/api/predict",
        data={"model": "sdl"},
        files=[
            ("files", (serve_runs["studies"]["png"].name, serve_runs["studies"]["png"].read_bytes())),
            ("mask", ("mask.txt", b"not a mask")),
        ],
    )
    assert wrong_mask.status_code == 422 and "mask mask.txt" in wrong_mask.json()["error"]

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("glioscope.serve.app.predict_study", broken)
    failed = TestClient(create_app(serve_runs["root"]), raise_server_exceptions=False)
    response = upload(
        failed, "sdl", [(serve_runs["studies"]["png"].name, serve_runs["studies"]["png"].read_bytes())], page="/predict"
    )
    assert response.status_code == 500 and "unexpected error (RuntimeError)" in response.text
    assert "Traceback" not in response.text and not list(temp_root.glob("glioscope-serve-*"))


def test_serve_binds_to_loopback_by_default_and_refuses_a_busy_port(serve_runs, capsys):
    from glioscope.cli import build_parser

    args = build_parser().parse_args(["serve", str(serve_runs["root"])])
    assert args.host == "127.0.0.1" and args.port == 8000
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(serve_runs["root"]), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert main(["serve", str(serve_runs["root"] / "missing"), "--port", "0"]) == 2


def test_the_api_schema_only_when_asked(serve_runs):
    default = TestClient(create_app(serve_runs["root"]))
    for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
        assert default.get(path).status_code == 404, path
    asked = TestClient(create_app(serve_runs["root"], api_docs=True))
    assert "/api/predict" in asked.get("/openapi.json").json()["paths"]
    assert asked.get("/docs").status_code == 404  # the interactive page loads from a CDN: never
