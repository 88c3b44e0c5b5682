"""glioscope serve end to end in headless Chromium (Debian's chromium and chromedriver, driven by selenium).

`glioscope serve` runs as a user starts it, on 127.0.0.1, and the tests open the address it prints (with
its token); they open the runs page, compare runs, upload phantom studies and read the probabilities off the
page, which must be those of `glioscope predict`, and check that a run's report shows its figures while a
report that carries a script cannot run it. They save screenshots (GLIOSCOPE_UPDATE_SCREENSHOT=1 also writes
the docs', docs/serve_predict.png). Without a browser they skip, saying why; with
GLIOSCOPE_BROWSER_TESTS=required (as in CI) they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from test_serve import build_serve_runs, cli_predict

from glioscope.serve import vendor

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -e '.[test]')"
    if not CHROMIUM or not CHROMEDRIVER:
        return "no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver; `make browser`)"
    return None


@pytest.fixture(scope="module")
def browser_ready():
    reason = _missing()
    if reason and os.environ.get("GLIOSCOPE_BROWSER_TESTS") == "required":
        pytest.fail(f"browser tests are required here, but {reason}")
    if reason:
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(browser_ready, tmp_path_factory, tiny_2d_run, tiny_phantom):
    """`glioscope serve RUNS_DIR --port P` as a user runs it, and the address with the token that it prints."""
    runs = build_serve_runs(tmp_path_factory, tiny_2d_run, tiny_phantom)
    port = free_port()
    printed = tmp_path_factory.mktemp("serve-console") / "console.txt"
    command = [sys.executable, "-m", "glioscope", "serve", str(runs["root"]), "--port", str(port)]
    with open(printed, "w") as console:
        process = subprocess.Popen(
            command, stdout=console, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    try:
        address = _wait_for_address(process, printed, port)
        yield {"url": f"http://127.0.0.1:{port}", "address": address, "port": port, "console": printed, **runs}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_address(process, printed: Path, port: int) -> str:
    """The address the app printed, once it answers (its static files need no token)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, f"glioscope serve ended: {printed.read_text()}"
        found = re.search(rf"http://127\.0\.0\.1:{port}/\?token=\S+", printed.read_text())
        try:
            if found and urllib.request.urlopen(f"http://127.0.0.1:{port}/static/app.css", timeout=5).status == 200:
                return found[0]
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"glioscope serve did not start: {printed.read_text()}")


def test_the_console_has_a_line_per_request_and_never_the_token(server):
    token = server["address"].split("token=", 1)[1]
    asked = urllib.request.Request(f"{server['url']}/api/health?page=2", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(asked, timeout=30) as answer:  # a script's request: the token in its header
        assert answer.status == 200
    deadline = time.monotonic() + 10
    while "GET /api/health 200" not in server["console"].read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    console = server["console"].read_text()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GET /api/health 200 \d+ ms$", console, re.M), console
    assert re.search(r"^\S+ \S+ GET /static/app.css 200 \d+ ms$", console, re.M)  # the start-up probe
    assert console.count(token) == 1 and "page=2" not in console  # the address printed at start; no query shown


@pytest.fixture(scope="module")
def hostile(browser_ready, server, tmp_path_factory):
    """A second app (create_app, its own token and port) whose one run has a report that carries scripts."""
    import uvicorn

    from glioscope.serve import create_app

    root = tmp_path_factory.mktemp("hostile") / "runs"
    run = root / "hostile"
    run.mkdir(parents=True)
    for name in ("run.json", "config.yaml"):
        shutil.copy(server["root"] / "sdl" / name, run / name)
    figure = re.search(r"data:image/png;base64,[^\"]+", (server["root"] / "sdl" / "report.html").read_text())[0]
    (run / "report.html").write_text(HOSTILE_REPORT.replace("FIGURE", figure))
    token, port = "a-token-of-the-hostile-app", free_port()
    app = create_app(root, token=token)
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started, "the app did not start"
    yield {"url": f"http://127.0.0.1:{port}", "address": f"http://127.0.0.1:{port}/?token={token}"}
    instance.should_exit = True
    thread.join(timeout=10)


# What a report made by someone else could try: read the app's data, post to it, leave the frame.
HOSTILE_REPORT = """<!DOCTYPE html><html><head><style>h1 { color: rgb(200, 0, 0); }</style></head><body>
<h1>a report</h1><img id="figure" src="FIGURE" alt="figure">
<script>
document.body.setAttribute("data-ran", "yes");
fetch("/api/runs").then(r => r.text()).then(t => {
  const p = document.createElement("pre"); p.id = "stolen"; p.textContent = t; document.body.append(p);
});
</script>
<form id="post" method="post" action="/api/predict"><input name="model" value="sdl"></form>
<script>document.getElementById("post").submit(); top.location = "about:blank";</script>
</body></html>
"""


def start_browser(tmp_path_factory, *flags: str):
    """Headless Chromium through chromedriver; WebGL 2 in software (SwiftShader), unless a flag turns WebGL off."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",  # NiiVue's WebGL 2 without a GPU; Chromium no longer falls back to it alone
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        f"--user-data-dir={profile}",
        "--window-size=1360,940",
        "--force-device-scale-factor=1",
        *flags,
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(120)
    return browser


@pytest.fixture(scope="module")
def driver(browser_ready, tmp_path_factory):
    browser = start_browser(tmp_path_factory)
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def canvas_driver(browser_ready, tmp_path_factory):
    """A browser without WebGL: the result page falls back to the canvas viewer over the model's input."""
    browser = start_browser(tmp_path_factory, "--disable-webgl", "--disable-3d-apis")
    yield browser
    browser.quit()


@pytest.fixture
def opened(server, driver):
    """The browser once it opened the address `glioscope serve` printed: the token is in its cookie."""
    driver.get(server["address"])
    return server


def wait_for(driver, css: str, timeout: float = 120):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def shown_probabilities(driver) -> dict[str, dict[str, float]]:
    """{fold or "ensemble": {class: probability}} as the page holds them; the text shown is checked against them."""
    from selenium.webdriver.common.by import By

    found: dict[str, dict[str, float]] = {}
    for cell in driver.find_elements(By.CSS_SELECTOR, "#probabilities td.prob"):
        value = float(cell.get_attribute("data-prob"))
        assert cell.text.strip() == f"{value:.4f}"
        found.setdefault(cell.get_attribute("data-fold"), {})[cell.get_attribute("data-class")] = value
    return found


def upload(driver, server, model: str, path: Path) -> float:
    """Submit `path` to `model` on the Predict page; the seconds until the result page has loaded."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get(server["url"] + "/predict")
    Select(driver.find_element(By.ID, "model")).select_by_value(model)
    driver.find_element(By.ID, "files").send_keys(str(path))
    started = time.perf_counter()
    driver.find_element(By.ID, "predict-button").click()
    wait_for(driver, "#probabilities, #error")
    return time.perf_counter() - started


def canvas_pixels(driver, plane: str) -> list[int]:
    """Per colour channel, a weighted sum of the plane's canvas pixels: changes when anything drawn changes."""
    return driver.execute_script(
        "const c = document.querySelector(`canvas[data-plane='${arguments[0]}']`);"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const s = [0, 0, 0];"
        "for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) s[k] += d[i + k] * (1 + (i >> 2) % 251);"
        "return s;",
        plane,
    )


def set_range(driver, element_id: str, value: float) -> None:
    driver.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];e.dispatchEvent(new Event('input'));",
        element_id,
        value,
    )


def only_local_requests(driver, server) -> None:
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(server["url"]) for r in resources), resources  # no CDN, no network


def test_the_app_opens_through_the_address_it_printed_and_not_without_it(server, driver):
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(server["url"] + "/")
    assert "`glioscope serve` printed" in wait_for(driver, "#error").text
    assert not driver.find_elements(By.CSS_SELECTOR, "table.runs")
    driver.get(server["address"])
    assert driver.current_url == server["url"] + "/"  # the token left the address bar
    assert len(driver.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")) == 4
    [cookie] = driver.get_cookies()
    assert cookie["name"] == f"glioscope-token-{server['port']}" and cookie["value"] in server["address"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert driver.execute_script("return document.cookie") == ""  # no script of a page can read it


def test_the_runs_page_and_a_comparison_refused_then_shown(server, driver, opened, tmp_path):
    from selenium.webdriver.common.by import By

    started = time.perf_counter()
    driver.get(server["url"] + "/")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    load = time.perf_counter() - started
    assert [r.get_attribute("data-run") for r in rows] == ["packages/sdl-package", "sdl", "sdl-again", "st3d"]
    assert "accuracy" in rows[1].text and "Split by patient" in rows[1].text and "glioma grade" in rows[1].text
    driver.save_screenshot(str(tmp_path / "runs.png"))
    for run in ("sdl", "st3d"):
        driver.find_element(By.CSS_SELECTOR, f"input[value='{run}']").click()
    driver.find_element(By.ID, "compare-button").click()
    assert "share only 0" in wait_for(driver, ".error").text  # other patients, other folds: refused, with why
    driver.get(server["url"] + "/")
    for run in ("sdl", "sdl-again"):
        driver.find_element(By.CSS_SELECTOR, f"input[value='{run}']").click()
    driver.find_element(By.ID, "compare-button").click()
    frame = wait_for(driver, "iframe.report")
    driver.switch_to.frame(frame)
    assert "glioscope comparison" in wait_for(driver, "h1").text
    driver.switch_to.default_content()
    print(f"runs page loaded in {load:.2f} s")


@pytest.mark.parametrize("kind, model", [("png", "sdl"), ("nifti", "st3d")])
def test_an_uploaded_study_shows_the_probabilities_of_glioscope_predict(
    server, canvas_driver, kind, model, capsys, tmp_path
):
    """In a browser without WebGL: the canvas viewer over the model's input, saying why NiiVue is not used."""
    driver = canvas_driver
    driver.get(server["address"])
    path = server["studies"][kind]
    seconds = upload(driver, server, model, path)
    wait_for(driver, "#viewer[data-ready]")
    assert driver.execute_script("return document.getElementById('viewer').dataset.viewer") == "canvas"
    assert driver.execute_script("return !document.createElement('canvas').getContext('webgl2')")
    shown = shown_probabilities(driver)
    expected = cli_predict(server["root"] / model, path, capsys)["patients"][0]
    assert shown.pop("ensemble") == expected["probabilities"]  # the same numbers as `glioscope predict` prints
    assert len(shown) == (1 if model == "st3d" else 2) and all(
        set(p) == set(expected["probabilities"]) for p in shown.values()
    )
    from selenium.webdriver.common.by import By

    assert driver.find_element(By.ID, "prediction").text == expected["prediction"]
    planes = [c.get_attribute("data-plane") for c in driver.find_elements(By.CSS_SELECTOR, "canvas.plane")]
    assert planes == (["axial", "coronal", "sagittal"] if model == "st3d" else ["slice"])
    before = canvas_pixels(driver, planes[0])
    set_range(driver, "viewer-opacity", 0)
    without = canvas_pixels(driver, planes[0])
    set_range(driver, "viewer-opacity", 0.8)
    assert before != without != canvas_pixels(driver, planes[0])  # the Grad-CAM overlay follows its opacity
    set_range(driver, "viewer-window", 40)
    assert canvas_pixels(driver, planes[0]) != without  # window and level redraw the image
    set_range(driver, "viewer-window", 255)
    set_range(driver, "viewer-opacity", 0.45)
    only_local_requests(driver, server)
    shot = tmp_path / f"predict-{kind}.png"
    driver.save_screenshot(str(shot))
    if vendor.missing() is None:  # NiiVue is there: the page says why it is not used here
        assert "no WebGL 2" in driver.find_element(By.ID, "canvas-why").text
    if kind == "nifti" and os.environ.get("GLIOSCOPE_UPDATE_SCREENSHOT") == "1":
        from PIL import Image

        Image.open(shot).convert("RGB").quantize(colors=128).save(REPO / "docs" / "serve_predict.png", optimize=True)
    timing = driver.find_element(By.ID, "timing").text
    print(f"{kind} on {model}: result page in {seconds:.2f} s (server: {timing})")
    (tmp_path / "timing.json").write_text(json.dumps({"kind": kind, "seconds": seconds, "server": timing}))


def test_the_predict_page_shows_the_study_as_acquired_in_niivue(server, driver, opened, tmp_path):
    """The real Grad-CAM of the phantom study on the 3D run, in NiiVue over the study's own voxels."""
    import nibabel as nib

    if vendor.missing() is not None:
        if os.environ.get("GLIOSCOPE_BROWSER_TESTS") == "required":
            pytest.fail(f"NiiVue is required here, but {vendor.missing()}")
        pytest.skip(vendor.missing())
    path = server["studies"]["nifti"]
    upload(driver, server, "st3d", path)
    wait_for(driver, "#viewer[data-viewer]")
    state = driver.execute_script(
        "const r = document.getElementById('viewer'), nv = window.glioscopeNiivue; return [r.dataset.viewer, "
        "r.dataset.niivueError || '', nv && nv.gl instanceof WebGL2RenderingContext && !nv.gl.isContextLost(), "
        "nv && Array.from(nv.volumes[0].dims), nv && nv.volumes.length]"
    )
    assert state == ["niivue", "", True, [3, *nib.load(path).shape[:3]], 2], state
    only_local_requests(driver, server)
    # it opens where a reader looks: on the head (no mask: the map's peak inside the study's foreground), not the air
    voxel = driver.execute_script("return document.getElementById('niivue-location').dataset.voxel")
    study = np.asarray(nib.load(path).dataobj)
    at = tuple(int(v) for v in str(voxel).split(","))
    assert study[at] > np.percentile(study, 1) + 0.1 * (np.percentile(study, 99) - np.percentile(study, 1)), voxel
    shot = tmp_path / "predict-niivue.png"
    driver.set_window_size(1360, 1240)
    driver.execute_script("document.getElementById('images').scrollIntoView()")
    driver.execute_script("window.glioscopeNiivue.drawScene()")
    driver.save_screenshot(str(shot))
    driver.set_window_size(1360, 940)
    if os.environ.get("GLIOSCOPE_UPDATE_SCREENSHOT") == "1":
        from PIL import Image

        Image.open(shot).convert("RGB").quantize(colors=192).save(REPO / "docs" / "serve_niivue.png", optimize=True)


def test_a_bad_upload_shows_its_reason_in_the_page(server, driver, opened, tmp_path):
    from glioscope.io.testing import write_dicom_series

    [path, *_] = write_dicom_series(tmp_path / "ct", "CT-1", "HEAD CT", n_slices=1, Modality="CT")
    upload(driver, server, "sdl", path)
    text = wait_for(driver, "#error").text
    assert "not MR" in text and "Traceback" not in driver.page_source and str(tmp_path) not in text


def test_a_runs_report_shows_its_figures_and_a_report_cannot_run_scripts(server, driver, opened, hostile, tmp_path):
    from selenium.webdriver.common.by import By

    written = (server["root"] / "sdl" / "report.html").read_text()
    driver.get(server["url"] + "/run?id=sdl")
    driver.switch_to.frame(wait_for(driver, "iframe.report"))
    assert "sdl" in wait_for(driver, "h1").text
    images = driver.find_elements(By.CSS_SELECTOR, "img")
    assert len(images) == written.count('src="data:image/png;base64,') > 0
    assert all(int(image.get_property("naturalWidth")) > 0 for image in images)  # every figure drawn
    driver.switch_to.default_content()
    driver.save_screenshot(str(tmp_path / "run.png"))
    driver.get(hostile["address"])
    driver.get(hostile["url"] + "/run?id=hostile")
    driver.switch_to.frame(wait_for(driver, "iframe.report"))
    heading = wait_for(driver, "h1", timeout=30)
    time.sleep(1)  # what its scripts would do, were they run, has had time to happen
    assert heading.text == "a report" and heading.value_of_css_property("color") == "rgba(200, 0, 0, 1)"
    assert int(driver.find_element(By.ID, "figure").get_property("naturalWidth")) > 0
    body = driver.find_element(By.TAG_NAME, "body")
    assert body.get_attribute("data-ran") is None and not driver.find_elements(By.ID, "stolen")
    driver.switch_to.default_content()
    assert driver.current_url == hostile["url"] + "/run?id=hostile"  # it did not take the page away either
