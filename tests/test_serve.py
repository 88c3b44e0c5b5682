"""glioscope serve through FastAPI's test client: runs, run pages, comparisons, predictions, every bad upload,
and who may use it (its host names, the launch's token, changes from its own pages, the files it shows)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="glioscope serve needs fastapi (pip install -e .)")

from fastapi.testclient import TestClient  # noqa: E402

from glioscope.cli import main  # noqa: E402
from glioscope.errors import GlioscopeError  # noqa: E402
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
TOKEN = "the-launch-token-of-the-tests-0123456789"
BASE = "http://127.0.0.1:8000"  # what the app is opened at in these tests (the Host header follows it)


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


def make_app(root: Path, limits: Limits = Limits(), **options):
    return create_app(root, limits, token=TOKEN, **options)


def signed_in(app, **options) -> TestClient:
    """A client as a browser is once it opened the address `glioscope serve` printed: holding the cookie that
    address sets, and sending the app's own Origin (as a browser does with every POST)."""
    client = TestClient(app, base_url=BASE, headers={"Origin": BASE}, **options)
    opened = client.get("/", params={"token": TOKEN})
    assert opened.status_code == 200 and str(opened.url) == BASE + "/", opened.text
    return client


@pytest.fixture(scope="module")
def client(serve_runs):
    return signed_in(make_app(serve_runs["root"]))


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
    written = (serve_runs["root"] / "sdl" / "report.html").read_text()
    assert report.status_code == 200 and "<h1>" in report.text
    figures = re.compile(r"data:image/png;base64,[^\"]+")
    assert figures.findall(report.text) == figures.findall(written) != []  # every figure, byte for byte
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
    small = signed_in(make_app(serve_runs["root"], Limits(max_upload=2**20, max_unzipped=2**20, max_members=3)))
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
    failed = signed_in(make_app(serve_runs["root"]), raise_server_exceptions=False)
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


# --- who may use the app: its host names, the launch's token, changes from its own pages, the files shown ---


def route_requests(studies: dict, viewer: str) -> dict[tuple[str, str], dict]:
    """A request that gets data from each route of the app, by (method, route path)."""
    png = studies["png"]
    study = {"data": {"model": "sdl"}, "files": [("files", (png.name, png.read_bytes()))]}
    both = {"run": ["sdl", "sdl-again"]}
    return {
        ("GET", "/"): {"url": "/"},
        ("GET", "/api/runs"): {"url": "/api/runs"},
        ("GET", "/run"): {"url": "/run", "params": {"id": "sdl"}},
        ("GET", "/api/run"): {"url": "/api/run", "params": {"id": "sdl"}},
        ("GET", "/run/file"): {"url": "/run/file", "params": {"id": "sdl", "name": "report.html"}},
        ("GET", "/compare"): {"url": "/compare", "params": both},
        ("GET", "/compare/view"): {"url": "/compare/view", "params": both},
        ("GET", "/predict"): {"url": "/predict"},
        ("POST", "/predict"): {"url": "/predict", **study},
        ("POST", "/api/predict"): {"url": "/api/predict", **study},
        ("GET", "/api/viewer/{token}/{part}"): {"url": f"/api/viewer/{viewer}/image"},
        ("GET", "/api/health"): {"url": "/api/health"},
        ("GET", "/static"): {"url": "/static/viewer.js"},
    }


def routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route of the app; a mount (the static files) answers GET."""
    return {(m, r.path) for r in app.routes for m in (getattr(r, "methods", None) or {"GET"}) if m != "HEAD"}


@pytest.fixture
def predictions(monkeypatch) -> list[str]:
    """The runs every prediction the app makes is asked of, in order (the real prediction still runs)."""
    from glioscope.serve import app as app_module

    made, real = [], app_module.predict_study
    monkeypatch.setattr(app_module, "predict_study", lambda run, *a, **k: made.append(run.name) or real(run, *a, **k))
    return made


def test_every_route_answers_only_its_own_host_names_holding_the_token(serve_runs, predictions, temp_root):
    app = make_app(serve_runs["root"])
    client = signed_in(app)
    first = upload(client, "sdl", [(serve_runs["studies"]["png"].name, serve_runs["studies"]["png"].read_bytes())])
    examples = route_requests(serve_runs["studies"], first.json()["viewer"]["token"])
    assert routes(app) == set(examples), "a route was added or removed: give it a request in route_requests"
    answered = {key: client.request(key[0], **request) for key, request in examples.items()}
    assert {key: r.status_code for key, r in answered.items()} == dict.fromkeys(examples, 200)  # each gives data
    made = len(predictions)
    foreign_hosts = (
        "evil.example",
        "evil.example:8000",
        "127.0.0.1.evil.example:8000",
        "localhost.evil.example",
        "127.0.0.2:8000",
        "[::2]:8000",
        "localhost:8000:80",
        "",
    )
    bare = TestClient(app, base_url=BASE, headers={"Origin": BASE})
    wrong_cookie = TestClient(app, base_url=BASE, headers={"Origin": BASE}, cookies={"glioscope-token-8000": "no"})
    for (method, path), request in examples.items():
        for host in foreign_hosts:  # DNS rebinding: another name for this address, with the cookie still held
            refused = client.request(method, **request, headers={"Host": host})
            assert refused.status_code == 403 and refused.text.startswith("403: the Host header"), (path, host)
            assert "sdl" not in refused.text and len(refused.content) < 200
        if path == "/static":  # the app's own CSS and scripts: no data, served without the token
            assert bare.request(method, **request).status_code == 200
            continue
        for who, attempt in (
            ("no token", lambda: bare.request(method, **request)),
            ("wrong cookie", lambda: wrong_cookie.request(method, **request)),
            ("wrong header", lambda: bare.request(method, **request, headers={"Authorization": "token no"})),
            ("wrong address", lambda: bare.request(method, **{**request, "params": {"token": TOKEN[:-1]}})),
            ("a token too many", lambda: client.request(method, **request, headers={"Authorization": "token no"})),
        ):
            refused = attempt()
            assert refused.status_code == 403, (path, who, refused.text)
            assert "`glioscope serve` printed" in refused.text and "sdl" not in refused.text, (path, who)
            if path.startswith("/api/"):
                assert refused.json()["status"] == 403
    assert len(predictions) == made and not list(temp_root.glob("glioscope-serve-*"))  # nothing refused ran


def test_the_app_answers_to_localhost_loopback_and_the_names_allowed(serve_runs):
    allowed = ["glioscope.lan", "10.1.2.3", "[FE80::1]", "Lab-PC."]
    script = {"Authorization": f"token {TOKEN}"}
    client = TestClient(make_app(serve_runs["root"], hosts=allowed), base_url=BASE, headers=script)
    plain = TestClient(make_app(serve_runs["root"]), base_url=BASE, headers=script)
    for host in ("localhost", "LOCALHOST.:8000", "127.0.0.1", "127.0.0.1:1234", "[::1]", "[::1]:8000"):
        assert plain.get("/api/health", headers={"Host": host}).status_code == 200, host
    for host in ("glioscope.lan:8000", "GLIOSCOPE.LAN", "10.1.2.3:80", "[fe80::1]:8000", "lab-pc"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200, host
        assert plain.get("/api/health", headers={"Host": host}).status_code == 403, host
    for host in ("glioscope.lan.evil.example", "10.1.2.33", "[fe80::2]", "[::1", "glioscope.lan:http"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 403, host
    for bad in ("http://glioscope.lan", "glioscope.lan:8000", "a b", "*", "glioscope.lan/x", ""):
        with pytest.raises(GlioscopeError, match="--allow-host"):
            make_app(serve_runs["root"], hosts=[bad])


def test_the_token_in_the_address_becomes_a_strict_cookie_and_leaves_the_address(serve_runs):
    app = make_app(serve_runs["root"])
    browser = TestClient(app, base_url=BASE, follow_redirects=False)
    opened = browser.get("/compare", params={"run": ["sdl", "sdl-again"], "token": TOKEN})
    assert opened.status_code == 303 and opened.headers["cache-control"] == "no-store"
    where = urlsplit(opened.headers["location"])
    assert where.path == "/compare" and parse_qs(where.query) == {"run": ["sdl", "sdl-again"]} and not where.netloc
    name, _, rest = opened.headers["set-cookie"].partition("=")
    value, *attributes = [a.strip() for a in rest.split(";")]
    assert name == "glioscope-token-8000" and value == TOKEN
    assert {a.lower() for a in attributes} == {"httponly", "path=/", "samesite=strict"}
    assert browser.get(opened.headers["location"]).status_code == 200  # the cookie now opens every page
    assert browser.get("/api/runs").status_code == 200
    elsewhere = TestClient(app, base_url="http://127.0.0.1:8001", cookies=browser.cookies)  # cookies ignore ports
    assert elsewhere.get("/api/runs").status_code == 403  # a launch on another port does not take this one's cookie
    script = TestClient(app, base_url=BASE, headers={"Authorization": f"token {TOKEN}"})
    assert script.get("/api/runs").json()["runs"] and not script.cookies  # a script needs no cookie
    from glioscope.serve.guard import Guard

    scope = {"type": "http", "method": "GET", "path": "//evil.example/x", "query_string": f"token={TOKEN}".encode()}
    scope |= {"headers": [(b"host", b"127.0.0.1:8000")], "server": ("127.0.0.1", 8000)}
    assert Guard(None, TOKEN).check(scope).headers["location"] == "/evil.example/x"  # never to another site


SOURCES = {
    "another site": {"Origin": "http://evil.example"},
    "another port of this computer": {"Origin": "http://127.0.0.1:9999"},
    "another name of this computer": {"Origin": "http://localhost:8000"},
    "an address that begins like this one": {"Origin": "http://127.0.0.1:8000.evil.example"},
    "a sandboxed page or a file": {"Origin": "null"},
    "another site, by its Referer": {"Referer": "http://evil.example/page.html"},
    "nothing but the cookie": {},
}


def test_a_change_from_another_origin_is_refused_even_with_the_cookie_and_runs_nothing(
    serve_runs, predictions, temp_root
):
    browser = TestClient(make_app(serve_runs["root"]), base_url=BASE)
    assert browser.get("/", params={"token": TOKEN}).status_code == 200  # holds the cookie
    png = serve_runs["studies"]["png"]
    files = [("files", (png.name, png.read_bytes()))]
    for why, headers in SOURCES.items():
        for page in ("/api/predict", "/predict"):
            refused = browser.post(page, data={"model": "sdl"}, files=files, headers=headers)
            assert refused.status_code == 403, (why, page, refused.text)
            assert (
                "its own pages" in refused.text or "Authorization" in refused.text
            ) and "probabilities" not in refused.text
        for method in ("PUT", "DELETE", "PATCH"):
            assert browser.request(method, "/api/predict", headers=headers).status_code == 403, (why, method)
    assert predictions == [] and not list(temp_root.glob("glioscope-serve-*"))
    accepted = {
        "its own Origin": {"Origin": BASE},
        "its own Referer": {"Referer": BASE + "/predict"},
        "its own origin by another of its names": {"Origin": "http://localhost:8000", "Host": "localhost:8000"},
        "a script's token, no Origin": {"Authorization": f"token {TOKEN}"},
    }
    for why, headers in accepted.items():
        response = browser.post("/api/predict", data={"model": "sdl"}, files=files, headers=headers)
        assert response.status_code == 200 and response.json()["patients"], (why, response.text)
    assert predictions == ["sdl"] * len(accepted)
    assert browser.put("/api/predict", headers={"Origin": BASE}).status_code == 405  # past the guard: no such route


SANDBOX = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"


def test_html_from_a_run_is_served_in_a_sandbox_and_the_app_pages_are_not(client):
    for page, params in (
        ("/run/file", {"id": "sdl", "name": "report.html"}),
        ("/compare/view", {"run": ["sdl", "sdl-again"]}),
    ):
        response = client.get(page, params=params)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        assert response.headers["content-security-policy"] == SANDBOX, page  # no allow-scripts, no allow-same-origin
    for page, params in (("/", {}), ("/run", {"id": "sdl"}), ("/predict", {})):
        policy = client.get(page, params=params).headers["content-security-policy"]
        assert "sandbox" not in policy and "script-src 'self'" in policy, page


def test_a_run_serves_only_what_a_person_reads_and_no_path_of_the_server(client, serve_runs, tmp_path_factory):
    readable = {"report.html", "metrics.json", "predictions_patients.csv", "README.md", "metadata.json"}
    disk = str(tmp_path_factory.getbasetemp())
    root = serve_runs["root"]
    for run_id in ("sdl", "packages/sdl-package", "st3d"):
        run = root / run_id
        page = client.get("/run", params={"id": run_id}).text
        links = [
            parse_qs(urlsplit(h.replace("&amp;", "&")).query) for h in re.findall(r'href="(/run/file\?[^"]+)"', page)
        ]
        assert all(link["id"] == [run_id] for link in links)
        linked = {link["name"][0] for link in links}
        figures = {f"figures/{p.name}" for p in (run / "figures").glob("*.png")}
        assert linked == {n for n in readable if (run / n).is_file()} | figures and linked, run_id
        for name in linked:
            shown = client.get("/run/file", params={"id": run_id, "name": name})
            assert shown.status_code == 200, (run_id, name)
            assert disk not in shown.text and str(root) not in shown.text, (run_id, name)
        assert disk not in page and disk not in client.get("/api/run", params={"id": run_id}).text
        others = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file() or p.is_symlink()} - linked
        assert {"run.json", "config.yaml"} <= others and any(n.endswith("model.pt") for n in others), run_id
        for name in sorted(others):  # weights, cohort and splits (absolute file paths), the record, the recipe...
            assert client.get("/run/file", params={"id": run_id, "name": name}).status_code == 404, (run_id, name)
    assert disk not in client.get("/api/runs").text and disk not in client.get("/").text


def test_a_link_is_never_served_even_under_a_name_that_is(serve_runs, tmp_path):
    root = tmp_path / "runs"
    run = root / "linked"
    (run / "figures").mkdir(parents=True)
    for name in ("run.json", "config.yaml"):
        shutil.copy(serve_runs["root"] / "sdl" / name, run / name)
    (run / "fold0").mkdir()
    (run / "fold0" / "model.pt").write_bytes(b"weights")
    (run / "report.html").symlink_to(run / "run.json")
    (run / "metrics.json").symlink_to(serve_runs["outside"])
    (run / "figures" / "leak.png").symlink_to(run / "fold0" / "model.pt")
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "roc.png").write_bytes(b"\x89PNG not one of this run's")
    (run / "figures" / "roc.png").symlink_to(root / "elsewhere" / "roc.png")
    (run / "figures" / "real.png").write_bytes(b"\x89PNG a figure")
    client = signed_in(make_app(root))
    assert client.get("/run/file", params={"id": "linked", "name": "figures/real.png"}).content == b"\x89PNG a figure"
    for name in ("report.html", "metrics.json", "figures/leak.png", "figures/roc.png", "figures/../run.json"):
        assert client.get("/run/file", params={"id": "linked", "name": name}).status_code == 404, name
    assert 'name=figures%2Freal.png"' in client.get("/run", params={"id": "linked"}).text


def test_the_api_schema_only_when_asked(serve_runs):
    default = signed_in(make_app(serve_runs["root"]))
    for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
        assert default.get(path).status_code == 404, path
    asked = make_app(serve_runs["root"], api_docs=True)
    assert "/api/predict" in signed_in(asked).get("/openapi.json").json()["paths"]
    assert signed_in(asked).get("/docs").status_code == 404  # the interactive page loads from a CDN: never
    assert TestClient(asked, base_url=BASE).get("/openapi.json").status_code == 403  # the token still needed


def test_each_launch_prints_its_own_token_in_the_address_it_opens_at(serve_runs, monkeypatch, capsys):
    launched = []
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, **kw: launched.append((app, host, port)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    addresses = []
    for _ in range(2):
        assert main(["serve", str(serve_runs["root"]), "--port", str(port)]) == 0
        addresses += re.findall(r"http://127\.0\.0\.1:\d+/\?token=\S+", capsys.readouterr().out)
    assert len(addresses) == 2 and addresses[0] != addresses[1]  # a new token at every start
    for (app, _, _), address in zip(launched, addresses):
        browser = TestClient(app, base_url=f"http://127.0.0.1:{port}")
        opened = browser.get(address)
        assert opened.status_code == 200 and "token" not in str(opened.url)
        assert browser.get("/api/runs").json()["runs"]
        other = addresses[1 - addresses.index(address)]
        assert TestClient(app, base_url=f"http://127.0.0.1:{port}").get(other).status_code == 403
    assert (
        main(["serve", str(serve_runs["root"]), "--host", "0.0.0.0", "--port", str(port), "--allow-host", "lab-pc"])
        == 0
    )
    app = launched[-1][0]
    token = re.search(r"\?token=(\S+)", capsys.readouterr().out)[1]
    for host, status in (("lab-pc:%d", 200), ("0.0.0.0:%d", 200), ("127.0.0.1:%d", 200), ("other-pc:%d", 403)):
        answer = TestClient(app, base_url=BASE).get(
            "/api/health", headers={"Host": host % port, "Authorization": f"token {token}"}
        )
        assert answer.status_code == status, host
    assert main(["serve", str(serve_runs["root"]), "--port", str(port), "--allow-host", "http://lab-pc"]) == 2
    assert "--allow-host 'http://lab-pc': expected a host name" in capsys.readouterr().err
