"""The Predict page's NiiVue viewer in headless Chromium (software WebGL 2): the study at its own resolution, the
Grad-CAM on its grid, and the files behind them served only with both tokens.

The app runs in this process with a Grad-CAM that is the model's input brightness (glioscope.explain.cam's
grad_cam replaced), so that the map must land on the study's bright blob, which sits off-centre on a grid that is
anisotropic and not RAS: a mirrored, transposed or shifted geometry puts it tens of millimetres away. The values
are read back through NiiVue's own API (nv.volumes). NiiVue is the file `make viewer` fetched; without it these
tests skip, saying so (with GLIOSCOPE_BROWSER_TESTS=required, as in CI, they fail).
"""

from __future__ import annotations

import gzip
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from test_serve_browser import REPO, browser_ready, driver, free_port, only_local_requests, upload, wait_for  # noqa: F401
from test_serve import build_serve_runs

from glioscope.serve import vendor

TOKEN = "the-niivue-tests-launch-token-0123456789"
SHAPE, ZOOMS = (96, 112, 80), (2.0, 2.0, 2.5)
BLOB = np.array([30, 72, 52])  # voxel; 36, 32 and 30 mm off the centre
PICTURE, SPOT = (200, 240), (60, 170)  # a 2D image (rows, cols) and its bright spot (row, col)


@pytest.fixture(scope="module")
def niivue_ready(browser_ready):  # noqa: F811
    why = vendor.missing()
    if why and os.environ.get("GLIOSCOPE_BROWSER_TESTS") == "required":
        pytest.fail(f"the NiiVue tests are required here, but {why}")
    if why:
        pytest.skip(why)


def brightness(model, inputs, class_index=None):
    """A Grad-CAM that is where the input is bright: the blob, whatever the model learnt."""
    x = inputs[:, 0].detach().float().numpy()
    return x - x.reshape(len(x), -1).min(axis=1).reshape((-1,) + (1,) * (x.ndim - 1))


def studies(folder: Path) -> dict:
    """An off-centre blob in a head, at 2 x 2 x 2.5 mm with the first axis running right to left; a 2D picture."""
    affine = np.diag([-ZOOMS[0], ZOOMS[1], ZOOMS[2], 1.0])
    affine[:3, 3] = [96.0, -112.0, -100.0]
    ijk = np.indices(SHAPE).astype(np.float32)
    mm = lambda at: (ijk - np.reshape(at, (3, 1, 1, 1))) * np.reshape(ZOOMS, (3, 1, 1, 1))  # noqa: E731
    head = ((mm(np.array(SHAPE) / 2) / np.reshape([80, 100, 85], (3, 1, 1, 1))) ** 2).sum(0) < 1
    blob = (mm(BLOB) ** 2).sum(0) < 18**2
    rng = np.random.default_rng(0)
    volume = 100.0 * head + 300.0 * blob + rng.normal(0, 3, SHAPE)
    nib.save(nib.Nifti1Image(volume.astype(np.float32), affine), folder / "offcentre_flair.nii.gz")
    rows, cols = np.indices(PICTURE)
    disc = (rows - SPOT[0]) ** 2 + (cols - SPOT[1]) ** 2 < 18**2
    picture = np.clip(60 + 40 * (cols / PICTURE[1]) + 150 * disc + rng.normal(0, 2, PICTURE), 0, 255)
    Image.fromarray(picture.astype(np.uint8)).save(folder / "offcentre.png")
    return {"volume": folder / "offcentre_flair.nii.gz", "affine": affine, "png": folder / "offcentre.png"}


@pytest.fixture(scope="module")
def app(niivue_ready, tmp_path_factory, tiny_2d_run, tiny_phantom):
    """create_app on the serve tests' runs, in this process (so that the Grad-CAM can be replaced), with its token."""
    import uvicorn

    from glioscope.serve import create_app

    runs = build_serve_runs(tmp_path_factory, tiny_2d_run, tiny_phantom)
    made = studies(tmp_path_factory.mktemp("niivue-studies"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("glioscope.explain.cam.grad_cam", brightness)
        application = create_app(runs["root"], token=TOKEN)
        port = free_port()
        instance = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=instance.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not instance.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert instance.started, "the app did not start"
        url = f"http://127.0.0.1:{port}"
        yield {"url": url, "address": f"{url}/?token={TOKEN}", "root": runs["root"], **made}
        instance.should_exit = True
        thread.join(timeout=10)


def open_in_niivue(driver, app, model: str, path: Path) -> float:  # noqa: F811
    """Upload `path` to `model`; the seconds from the click to NiiVue drawn. Fails loudly when NiiVue is not used."""
    driver.get(app["address"])
    seconds = upload(driver, app, model, path)
    started = time.monotonic()
    state = None
    while time.monotonic() - started < 120:
        state = driver.execute_script(
            "const r = document.getElementById('viewer'); return r && [r.dataset.viewer || '', r.dataset.niivueError || '']"
        )
        if state and (state[0] or state[1]):
            break
        time.sleep(0.05)
    seconds += time.monotonic() - started
    webgl = driver.execute_script(
        "const nv = window.glioscopeNiivue; return nv ? [nv.gl instanceof WebGL2RenderingContext, "
        "nv.gl.isContextLost()] : 'no NiiVue on the page'"
    )
    assert state == ["niivue", ""] and webgl == [True, False], (state, webgl)  # WebGL 2, its context alive
    return seconds


def overlay(page) -> dict:
    """NiiVue's own view of the two volumes: dims, spacing, affine, the map's range, peak and centroid above 0.9."""
    notes = page.find_element("id", "notes").text
    assert page.execute_script("return window.glioscopeNiivue.volumes.length") == 2, f"no map in NiiVue: {notes}"
    return page.execute_script(
        """const nv = window.glioscopeNiivue, [image, cam] = nv.volumes, d = cam.hdr.dims, img = cam.img;
        let best = 0, sum = 0, at = [0, 0, 0];
        for (let n = 0; n < img.length; n++) {
          if (img[n] > img[best]) best = n;
          if (img[n] > 0.9) { const w = img[n]; sum += w;
            at[0] += w * (n % d[1]); at[1] += w * (Math.floor(n / d[1]) % d[2]); at[2] += w * Math.floor(n / (d[1] * d[2])); }
        }
        return {dims: Array.from(image.dims), camDims: Array.from(d), pixDims: Array.from(image.hdr.pixDims),
                affine: image.hdr.affine.map((row) => Array.from(row)), max: img[best], calMax: cam.cal_max,
                peak: [best % d[1], Math.floor(best / d[1]) % d[2], Math.floor(best / (d[1] * d[2]))],
                centroid: at.map((v) => v / sum), crosshairMm: Array.from(nv.frac2mm(nv.scene.crosshairPos)).slice(0, 3),
                value: image.getValue(...nv.frac2vox(nv.scene.crosshairPos)),
                focus: JSON.parse(document.getElementById('viewer-meta').textContent).study.focus_voxel,
                location: document.getElementById('niivue-location').textContent,
                voxel: document.getElementById('niivue-location').dataset.voxel}"""
    )


def set_range(page, element_id: str, value: float) -> None:
    page.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1]; e.dispatchEvent(new Event('input'));",
        element_id,
        value,
    )


def test_a_volume_opens_in_niivue_at_its_own_resolution_with_the_map_on_its_blob(app, driver, tmp_path):  # noqa: F811
    seconds = open_in_niivue(driver, app, "st3d", app["volume"])
    found = overlay(driver)
    assert found["dims"][:4] == found["camDims"][:4] == [3, *SHAPE]
    assert np.allclose(found["pixDims"][1:4], ZOOMS)
    assert np.allclose(found["affine"], app["affine"], atol=1e-4)  # the file's own geometry, first axis flipped
    assert found["max"] == pytest.approx(1.0, abs=1e-6) and found["calMax"] == pytest.approx(1.0)
    to_mm = lambda v: app["affine"][:3, :3] @ np.asarray(v, float)  # noqa: E731
    blob = to_mm(BLOB)
    # The map's bright part sits on the blob (the model's grid is 8 mm); a mirrored axis would be 50-80 mm off.
    assert np.linalg.norm(to_mm(found["centroid"]) - blob) < 8, found
    assert np.linalg.norm(to_mm(found["peak"]) - blob) < 16, found
    # It opens at the focus, in the study's own voxels (NiiVue's run in RAS order: the first axis is mirrored)
    assert np.linalg.norm(to_mm(found["focus"]) - blob) < 16
    assert np.allclose(found["crosshairMm"], (app["affine"] @ [*found["focus"], 1])[:3], atol=1e-3), found
    assert found["voxel"] == ", ".join(map(str, found["focus"])) and found["value"] > 300  # the blob's intensity
    assert " mm · T1c " in found["location"] and "Grad-CAM" in found["location"]
    before = driver.execute_script(
        "return [window.glioscopeNiivue.volumes[1].opacity, window.glioscopeNiivue.volumes[0].cal_max]"
    )
    set_range(driver, "niivue-opacity", 0.9)
    set_range(driver, "niivue-window", 50)
    after = driver.execute_script(
        "return [window.glioscopeNiivue.volumes[1].opacity, window.glioscopeNiivue.volumes[0].cal_max, window.glioscopeNiivue.volumes[0].cal_min]"
    )
    assert before[0] == pytest.approx(0.45) and after[0] == pytest.approx(0.9)
    assert after[1] - after[2] == pytest.approx(50, abs=0.5)
    set_range(driver, "niivue-opacity", 0.45)
    only_local_requests(driver, app)
    shot = tmp_path / "niivue-volume.png"
    driver.save_screenshot(str(shot))
    print(f"synthetic {SHAPE} volume on st3d: NiiVue drawn {seconds:.2f} s after the click")


def test_a_2d_image_opens_at_full_size_with_the_map_over_its_spot(app, driver):  # noqa: F811
    seconds = open_in_niivue(driver, app, "sdl", app["png"])
    found = overlay(driver)
    rows, cols = PICTURE
    assert found["dims"][:4] == [3, cols, rows, 1]  # columns left to right, rows downwards: as the file shows it
    pixels = np.asarray(Image.open(app["png"]))
    shown = driver.execute_script(
        "const v = window.glioscopeNiivue.volumes[0]; return arguments[0].map(([r, c]) => v.img[c + r * v.dims[1]])",
        [[0, 0], [10, 200], [SPOT[0], SPOT[1]], [150, 30]],
    )
    assert shown == [float(pixels[r, c]) for r, c in [[0, 0], [10, 200], SPOT, [150, 30]]]
    assert np.hypot(found["centroid"][0] - SPOT[1], found["centroid"][1] - SPOT[0]) < 12, found
    print(f"synthetic {rows}x{cols} image on sdl: NiiVue drawn {seconds:.2f} s after the click")


def test_the_study_files_are_served_only_with_both_tokens(app, driver):  # noqa: F811
    import json

    driver.get(app["address"])
    upload(driver, app, "sdl", app["png"])
    meta = json.loads(driver.find_element("id", "viewer-meta").get_attribute("textContent"))

    def get(part: str, token: str | None, viewer: str = meta["token"]):
        request = urllib.request.Request(f"{app['url']}/api/viewer/{viewer}/{part}")
        if token:
            request.add_header("Authorization", f"token {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    for part in ("study.nii.gz", "cam.nii.gz"):
        assert get(part, None)[0] == 403 and get(part, "not-the-launch-token")[0] == 403
        assert get(part, TOKEN, viewer="x" + meta["token"][1:])[0] == 404
    status, data = get("study.nii.gz", TOKEN)
    image = nib.Nifti1Image.from_bytes(gzip.decompress(data))
    pixels = np.asarray(Image.open(app["png"]), np.float32)
    assert status == 200 and np.array_equal(np.asarray(image.dataobj), pixels.T[:, :, None])  # (cols, rows, 1)
    cam = nib.Nifti1Image.from_bytes(gzip.decompress(get("cam.nii.gz", TOKEN)[1]))
    assert cam.shape == image.shape and float(np.max(cam.dataobj)) == pytest.approx(1.0, abs=1e-3)


def test_without_niivue_the_page_says_how_to_get_it_and_shows_the_canvas_viewer(app, monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from glioscope.serve import create_app

    monkeypatch.setattr(vendor, "VENDOR", tmp_path / "no-niivue")
    client = TestClient(create_app(app["root"], token=TOKEN), base_url="http://127.0.0.1:8000")
    with open(app["png"], "rb") as picture:
        page = client.post(
            "/predict",
            data={"model": "sdl"},
            files={"files": ("offcentre.png", picture, "image/png")},
            headers={"Authorization": f"token {TOKEN}"},
        )
    assert page.status_code == 200, page.text
    assert 'id="niivue-missing"' in page.text and "make viewer" in page.text and 'data-niivue="0"' in page.text
    assert "study_viewer.js" not in page.text and "viewer.js" in page.text  # the canvas viewer, not the module
