"""`glioscope serve`: a local web app to browse runs and apply a model to an uploaded study.

    glioscope serve runs/ --port 8000            # http://127.0.0.1:8000/?token=..., this computer only

Pages: the runs under RUNS_DIR (task, recipe, patients, the patient-level headline with its
interval, the split statement), a run's page with its report, a comparison of the runs ticked
(refused, with the reason, when their folds differ), and Predict: upload a study, choose a run
or model package, and see the probabilities of the fold ensemble and of each fold (those of
`glioscope predict`), the notes, and the model's input in a viewer with the Grad-CAM overlay.
The same under /api as JSON. FastAPI on uvicorn; the viewer is the app's own code (static/).
Only its own host names, holding the token printed at start, and changes from its own pages (guard).

Modules: guard (Host, token, origin), app (routes, limits, errors), runs (finding runs, the files
shown, safe lookups), uploads (temporary folders, safe zips), inference (predict, per fold,
Grad-CAM), pages (HTML).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from glioscope.serve.uploads import MB, Limits

__all__ = ["create_app", "serve", "Limits"]


def create_app(runs_dir, limits: Limits = Limits(), *, token: str, hosts=(), api_docs: bool = False, sets=None):
    """The app (glioscope.serve.app.create_app): `token` is the secret every request must hold."""
    require_web_stack()
    from glioscope.serve.app import create_app as make

    return make(runs_dir, limits, token=token, hosts=hosts, api_docs=api_docs, sets=sets)


def require_web_stack() -> None:
    """MissingExtra naming the serve extra when a package of the web app is not installed."""
    from glioscope.util import extras

    for module in ("fastapi", "uvicorn", "python_multipart"):
        extras.require(module, "glioscope serve")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    """A clear error, before anything is printed, when the address cannot be bound."""
    import socket

    from glioscope.errors import GlioscopeError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise GlioscopeError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host"
            ) from None


def serve(
    runs_dir: str | Path = "runs",
    host: str = "127.0.0.1",
    port: int = 8000,
    max_upload_mb: int = 512,
    allow_hosts: tuple[str, ...] | list[str] = (),
    api_docs: bool = False,
    sets=None,
) -> None:
    """Run the app until interrupted; prints its address with this launch's token, and who can reach it."""
    require_web_stack()
    import uvicorn

    from glioscope.serve.guard import new_token

    limits = Limits(max_upload=max_upload_mb * MB, max_unzipped=max(4 * max_upload_mb, 2048) * MB)
    token = new_token()
    hosts = [*allow_hosts, *([] if is_loopback(host) else [host])]
    app = create_app(runs_dir, limits, token=token, hosts=hosts, api_docs=api_docs, sets=sets)
    _check_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"glioscope serve: runs in {runs_dir}, at http://{shown}:{port}/?token={token}  (Ctrl-C stops it)")
    print(
        "  open that address: its token is needed for every page and changes at every start "
        "(a script sends the header `Authorization: token ...`)"
    )
    if is_loopback(host):
        print(f"  bound to {host}: only this computer can open it (--host 0.0.0.0 would open it to the network)")
    else:
        print(
            f"  WARNING: bound to {host}: other computers can reach it, the token its only lock; uploads of "
            "patient data travel unencrypted"
        )
        if host in ("0.0.0.0", "::") and not allow_hosts:
            print("  other computers reach it by a name of this one: give it with --allow-host NAME")
    if allow_hosts:
        print(f"  answers to localhost, 127.0.0.1, [::1] and {', '.join(hosts)} (any other Host header: refused)")
    if api_docs:
        print("  the OpenAPI schema is at /openapi.json (with the token)")
    print(f"  uploads: at most {max_upload_mb} MB, kept in a temporary folder and deleted after each prediction")
    # access_log off: its lines would carry the query string, which holds the token (the app logs each request)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
