"""NiiVue for the Predict page, fetched once from the npm registry and checked, never loaded from a CDN.

    make viewer                                   # or: python src/glioscope/serve/vendor.py

The npm tarball of @niivue/niivue (version NIIVUE_VERSION) is downloaded, its sha512 compared with the
integrity npm publishes for it (pinned here), and only `package/build/index.min.js` is taken from it: an ES
module whose one export, `esm`, is the whole self-contained bundle URL-encoded. That text, decoded, is written
to static/vendor/niivue/niivue.js (a module the pages may load under their Content-Security-Policy, which
forbids data: scripts), with the licence its package.json declares. The app serves NiiVue only while that
file's sha256 is the pinned one (`missing()` says why not otherwise); a changed file is refused and the page
falls back to the canvas viewer. This module uses the standard library only, so that it runs before the
package is installed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

NIIVUE_VERSION = "0.69.0"
TARBALL = f"https://registry.npmjs.org/@niivue/niivue/-/niivue-{NIIVUE_VERSION}.tgz"
# `npm view @niivue/niivue@0.69.0 dist.integrity`
INTEGRITY = "sha512-YMjQvJgD1W2b7DuoxkwlC4VxbrgIePRJ5qyQzXKxi2v2MBVg285P/CIQyg46oDDGDIcaNlbd+MhtO/edMbXJkA=="
MEMBER = "package/build/index.min.js"
# sha256 of the decoded module written below: what the app checks before it serves NiiVue
MODULE_SHA256 = "bcb456b66a26e20126b7257c2b6071f48b347b7f910f99bca26721a71a96cbed"
VENDOR = Path(__file__).resolve().parent / "static" / "vendor" / "niivue"
MODULE = "niivue.js"
LICENCE = "LICENSE"
HOW = "run `make viewer` (or `python src/glioscope/serve/vendor.py`) once, with network, to fetch it"
_checked: dict[tuple, bool] = {}


class VendorError(Exception):
    """The tarball or the file taken from it is not the pinned one; nothing is written."""


def module_path(folder: Path | None = None) -> Path:
    return (folder or VENDOR) / MODULE


def missing(folder: Path | None = None) -> str | None:
    """Why the app cannot serve NiiVue (absent, or not the pinned file); None when it can."""
    path = module_path(folder)
    try:
        stat = path.stat()
    except OSError:
        return f"NiiVue {NIIVUE_VERSION} is not installed: {HOW}"
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _checked:  # hashing 2.5 MB at each page would cost 5 ms; once per version of the file
        _checked[key] = hashlib.sha256(path.read_bytes()).hexdigest() == MODULE_SHA256
    if not _checked[key]:
        return f"the NiiVue file the app found is not the one pinned for {NIIVUE_VERSION} (changed?): {HOW} again"
    return None


def verify_tarball(data: bytes, integrity: str = INTEGRITY) -> None:
    algorithm, _, expected = integrity.partition("-")
    found = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if found != expected:
        raise VendorError(f"{TARBALL}: its {algorithm} is {found}, not the pinned {expected}: refused")


def decode_module(bundle: str) -> str:
    """The ES module that build/index.min.js holds, URL-encoded, as its one export `esm`."""
    found = re.fullmatch(r'\s*export const esm = "([^"]*)";?\s*', bundle)
    if found is None:
        raise VendorError(f'{MEMBER}: expected `export const esm = "..."`; this is another layout: refused')
    return urllib.parse.unquote(found[1])


def extract(data: bytes) -> tuple[bytes, str]:
    """(the decoded module, the licence's text) of a verified tarball."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        bundle = archive.extractfile(archive.getmember(MEMBER)).read().decode("utf-8")
        package = json.loads(archive.extractfile(archive.getmember("package/package.json")).read())
    module = decode_module(bundle).encode("utf-8")
    found = hashlib.sha256(module).hexdigest()
    if found != MODULE_SHA256:
        raise VendorError(f"{MEMBER}: its module's sha256 is {found}, not the pinned {MODULE_SHA256}: refused")
    licence = (
        f"NiiVue {package.get('version')} ({package.get('homepage') or 'https://github.com/niivue/niivue'}), "
        f"from {TARBALL}\n(checked against {INTEGRITY}); `{MODULE}` is its {MEMBER} decoded.\n"
        f"Licence, as its package.json declares it: {package.get('license')}.\n\n{BSD_2_CLAUSE}"
    )
    return module, licence


def _write(path: Path, data: bytes) -> None:
    """Atomically: a reader never sees half a file (the standard library only, see the module docstring)."""
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)  # mkstemp makes 0600; the server may run as another user
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def fetch(folder: Path | None = None, timeout: float = 120) -> Path:
    """Download, check and write NiiVue into `folder` (VENDOR); the module's path. Nothing is written on a failure."""
    folder = folder or VENDOR
    with urllib.request.urlopen(TARBALL, timeout=timeout) as response:
        data = response.read()
    verify_tarball(data)
    module, licence = extract(data)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / LICENCE, licence.encode("utf-8"))
    _write(module_path(folder), module)
    return module_path(folder)


def main(argv: list[str] | None = None) -> int:
    """Fetch NiiVue unless the pinned file is there; --if-reachable: without network, say so and succeed."""
    argv = sys.argv[1:] if argv is None else argv
    if missing() is None:
        print(f"NiiVue {NIIVUE_VERSION}: {module_path()} is there and checked")
        return 0
    try:
        path = fetch()
    except VendorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if "--if-reachable" in argv:
            print(f"note: NiiVue not fetched ({exc}); the app uses its canvas viewer and the NiiVue tests skip")
            return 0
        print(f"error: NiiVue could not be fetched from {TARBALL}: {exc}", file=sys.stderr)
        return 1
    print(f"NiiVue {NIIVUE_VERSION}: {path} ({path.stat().st_size // 1024} KB), checked against {INTEGRITY[:20]}…")
    return 0


BSD_2_CLAUSE = """BSD 2-Clause License

Copyright (c) the NiiVue authors (https://github.com/niivue/niivue/graphs/contributors)

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""

if __name__ == "__main__":
    sys.exit(main())
