"""Under a memory cap, `glioscope predict` and `ingest` refuse a small file whose header promises gigabytes; the web
app answers it with a 422 page.

Each command runs in a child process whose address space (RLIMIT_AS) is capped at what its imports
mapped plus 1 GiB: torch's import alone maps about 3.5 GB of address space (its CUDA libraries), so
a fixed cap of 1.5-2 GB would stop the import, not the input. The child first checks that the cap is
in force (2 GiB cannot be allocated), then runs the command: a refusal exits with status 2 and the
message; decoding what the header promises would end in a MemoryError instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import glioscope
from glioscope.io.limits import REFUSED
from glioscope.io.testing import write_dicom_series, write_nifti, write_nifti_header, write_png, write_tiff
from test_limits import PIL_REFUSES, PIL_WARNS, dicom_bomb

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")

HEADROOM = 2**30
CHILD = """
import re, resource, sys
import numpy as np
for module in sys.argv[1].split(","):
    __import__(module)  # what the command imports, before the cap
from glioscope.cli import main
mapped = int(re.search(r"VmSize:\\s+(\\d+) kB", open("/proc/self/status").read())[1]) * 1024
cap = mapped + {headroom}
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
try:
    np.ones(2 * {headroom}, np.uint8)
except MemoryError:
    pass
else:
    sys.exit("the memory cap is not in force")
sys.exit(main(sys.argv[2:]))
""".format(headroom=HEADROOM)
PREDICT_IMPORTS = "glioscope.trained,glioscope.predict,glioscope.samples.slices.pixels,torchvision"
BOMBS = {  # name: how to write it (file name, writer)
    "NIfTI 4000^3 float32": ("scan_t1.nii.gz", lambda p: write_nifti_header(p, (4000, 4000, 4000))),
    "PNG PIL would decode": ("slice.png", lambda p: write_png(p, PIL_WARNS, PIL_WARNS, 3)),
    "PNG 100000 x 1": ("strip.png", lambda p: write_png(p, 100000, 1)),
    "TIFF beyond PIL": ("slice.tif", lambda p: write_tiff(p, PIL_REFUSES, PIL_REFUSES, 1)),
    "DICOM 1000 compressed frames": ("1-01.dcm", lambda p: dicom_bomb(p, "frames, compressed")),
}


def capped(argv: list[str], imports: str = "glioscope.ingest") -> subprocess.CompletedProcess:
    source = str(Path(glioscope.__file__).parents[1])  # this checkout's sources, whatever is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", CHILD, imports, *argv], capture_output=True, text=True, env=env, timeout=300
    )


def bomb(folder: Path, name: str) -> Path:
    file_name, write = BOMBS[name]
    path = write(folder / file_name)
    assert path.stat().st_size < 10 * 2**20
    return path


@pytest.mark.parametrize("name", list(BOMBS))
def test_predict_under_a_memory_cap_exits_2_naming_the_file(tiny_2d_run, tmp_path, name):
    path = bomb(tmp_path, name)
    done = capped(["predict", str(tiny_2d_run), str(path)], PREDICT_IMPORTS)
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"{path}" in done.stderr and REFUSED in done.stderr and "GLIOSCOPE_MAX_" in done.stderr
    assert "MemoryError" not in done.stderr and "Traceback" not in done.stderr and not done.stdout


def _good_files(kind: str, folder: Path) -> None:
    if kind == "nifti":
        write_nifti(folder / "good" / "good_t1.nii.gz", dtype=np.float32)  # floating: its voxels are read at ingest
    elif kind == "dicom":
        write_dicom_series(folder / "P1" / "good", n_slices=3)
    else:
        for k in range(2):
            (folder / "II").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16), 40 * k, np.uint8)).save(folder / "II" / f"p{k}_1.png")


INGESTED = {  # bomb: (layout of the good files, where the bomb goes, --format)
    "NIfTI 4000^3 float32": ("nifti", "bad", "auto"),
    "PNG PIL would decode": ("images", "IV", "imagefolder"),
    "PNG 100000 x 1": ("images", "IV", "imagefolder"),
    "TIFF beyond PIL": ("images", "IV", "imagefolder"),
    "DICOM 1000 compressed frames": ("dicom", "P2/bad", "auto"),
}


@pytest.mark.parametrize("name", list(INGESTED))
def test_ingest_under_a_memory_cap_skips_only_the_bomb(tmp_path, name):
    kind, where, layout = INGESTED[name]
    source = tmp_path / "source"
    _good_files(kind, source)
    path = bomb(source / where, name)
    done = capped(["ingest", str(source), "--format", layout, "--workers", "1", "-o", str(tmp_path / "cohort")])
    assert done.returncode == 0, done.stderr[-3000:]
    skipped = pd.read_csv(tmp_path / "cohort" / "skipped.csv", dtype=str)
    assert [Path(p).name for p in skipped["path"]] == [path.name] and REFUSED in skipped["reason"][0]
    assert len(pd.read_csv(tmp_path / "cohort" / "cohort.csv")) == (1 if kind != "images" else 2)
    alone = tmp_path / "alone"
    bomb(alone / where, name)
    done = capped(["ingest", str(alone), "--format", layout, "-o", str(tmp_path / "nothing")])
    assert done.returncode == 2 and "no images found" in done.stderr and REFUSED in done.stderr, done.stderr[-3000:]
    assert "MemoryError" not in done.stderr and not (tmp_path / "nothing").exists()


def test_the_web_app_answers_each_bomb_with_a_422_page(tiny_2d_run, tmp_path, monkeypatch):
    pytest.importorskip("fastapi", reason="glioscope serve needs fastapi (pip install -e .)")
    import zipfile

    from fastapi.testclient import TestClient

    from glioscope.serve import create_app

    runs = tmp_path / "runs"
    shutil.copytree(tiny_2d_run, runs / "sdl", ignore=shutil.ignore_patterns("tensorboard"))
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(uploads))
    client = TestClient(  # as a script calls the API: the launch's token in its header
        create_app(runs, token="a-token-for-this-test"),
        base_url="http://127.0.0.1:8000",
        headers={"Authorization": "token a-token-for-this-test"},
    )
    for name in BOMBS:
        path = bomb(tmp_path / name.replace(" ", "_"), name)
        for files in ([(path.name, path.read_bytes())], [("study.zip", _zipped(path, zipfile))]):
            response = client.post("/api/predict", data={"model": "sdl"}, files=[("files", f) for f in files])
            assert response.status_code == 422, (name, response.text[-2000:])
            error = response.json()["error"]
            assert path.name in error and REFUSED in error and "GLIOSCOPE_MAX_" in error, error
            assert str(uploads) not in error and not list(uploads.iterdir())
        page = client.post("/predict", data={"model": "sdl"}, files=[("files", (path.name, path.read_bytes()))])
        assert page.status_code == 422 and REFUSED in page.text and "Traceback" not in page.text
    assert json.loads((runs / "sdl" / "run.json").read_text())  # the run itself is untouched


def _zipped(path: Path, zipfile) -> bytes:
    archive = path.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(path, path.name)
    return archive.read_bytes()
