"""The FastAPI app: pages under /, JSON under /api, the viewer's code under /static (never a CDN).

Every request passes glioscope.serve.guard first (its Host, this launch's token, the origin of a change),
and leaves one line on the terminal (RequestLog: uvicorn's own access log is off, as it would print the query
string that holds the token).
A run's HTML (its report, a comparison) is served in a Content-Security-Policy sandbox: a report someone
else made cannot run scripts, nor reach the app's other pages or its cookie.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import sys
import time
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from glioscope.errors import GlioscopeError
from glioscope.rundir import METRICS
from glioscope.serve import pages, runs
from glioscope.serve.guard import Guard, error_response, host_option
from glioscope.evaluate.conformal import SetOptions
from glioscope.serve.inference import ModelCache, ViewerStore, predict_study
from glioscope.serve.verdict import cv_auc, verdict
from glioscope.serve.uploads import MB, Limits, UploadError, save_upload
from glioscope.util.terminal import printable

STATIC = Path(__file__).parent / "static"
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
# A run's HTML: no script, no request but its own inline figures and styles, an origin of its own.
SANDBOX = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
SANDBOXED = ("/run/file", "/compare/view")
log = logging.getLogger("glioscope.serve")


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is refused (413), by its Content-Length or as it streams."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_large = UploadError(f"the upload is larger than the limit of {self.limit // MB} MB", 413)
        if length is not None and length.isdigit() and int(length) > self.limit + MB:  # + MB: the form's own bytes
            return await _error_response(scope, too_large)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit + MB:
                raise too_large
            return message

        await self.app(scope, counted, send)


def _error_response(scope, error: Exception) -> Response:
    status = getattr(error, "status", 422)
    return error_response(scope.get("path", ""), status, str(error))


class RequestLog:
    """ASGI middleware: one line per request on standard output: time, method, path, status and milliseconds.

    The path only: its query string can hold the token, and a viewer's key in the path is shown as "...".
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]  # 500 unless a response starts: the request failed

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            milliseconds = (time.perf_counter() - start) * 1000
            print(
                f"{time.strftime('%Y-%m-%d %H:%M:%S')} {scope['method']} {printable(shown_path(scope['path']))} "
                f"{status[0]} {milliseconds:.0f} ms",
                file=sys.stderr,  # a log, like uvicorn's: stdout stays for what a command answers
                flush=True,
            )


def shown_path(path: str) -> str:
    """A request's path as the log shows it: a viewer's key (/api/viewer/KEY/part) hidden."""
    parts = path.split("/")
    if parts[1:3] == ["api", "viewer"] and len(parts) > 3:
        parts[3] = "..."
    return "/".join(parts)


def create_app(
    runs_dir: str | Path,
    limits: Limits = Limits(),
    *,
    token: str,
    hosts: tuple[str, ...] | list[str] = (),
    api_docs: bool = False,
    sets: SetOptions | None = None,
) -> FastAPI:
    """The app serving the runs under `runs_dir` (see glioscope.serve).

    token: the secret every request must hold (glioscope.serve.guard); hosts: names it answers to besides
    localhost, 127.0.0.1 and [::1]; api_docs: serve the OpenAPI schema at /openapi.json; sets: the prediction sets'
    level (default 90%, glioscope.evaluate.conformal).
    """
    root = Path(runs_dir).resolve()
    if not root.is_dir():
        raise GlioscopeError(f"{runs_dir}: not a folder (give the folder that holds your run folders)")
    if not token:
        raise ValueError("create_app needs a token (glioscope.serve.guard.new_token makes one)")
    hosts = tuple(map(host_option, hosts))  # now: the middleware is built at the first request
    # The interactive docs (/docs, /redoc) load from a CDN, which the pages' policy forbids: never served.
    app = FastAPI(title="glioscope", docs_url=None, redoc_url=None, openapi_url="/openapi.json" if api_docs else None)
    app.state.root, app.state.limits = root, limits
    models, viewers, busy = ModelCache(), ViewerStore(), threading.Lock()
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=limits.max_upload)
    app.add_middleware(Guard, token=token, hosts=hosts)  # outside BodyLimit: a refused request's body is never read

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Not no-referrer: under it a browser sends 'Origin: null' with the app's own forms, which the guard refuses.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        html = response.headers.get("content-type", "").startswith("text/html")
        sandboxed = request.url.path in SANDBOXED and html
        response.headers.setdefault("Content-Security-Policy", SANDBOX if sandboxed else _CSP)
        return response

    app.add_middleware(RequestLog)  # the outermost: a request the guard refuses is logged too

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError):
        return error_response(request.url.path, exc.status, str(exc))

    @app.exception_handler(GlioscopeError)
    async def input_error(request: Request, exc: GlioscopeError):
        return error_response(request.url.path, 422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        where = ", ".join(".".join(map(str, e.get("loc", ()))) for e in exc.errors()[:3])
        return error_response(request.url.path, 400, f"the request is missing or has a bad value: {where}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error_response(request.url.path, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("glioscope serve: unexpected error on %s", request.url.path)  # the server's console only
        return error_response(
            request.url.path, 500, f"an unexpected error ({type(exc).__name__}); the server's console has the details"
        )

    def entry(run_id: str | None) -> runs.RunEntry:
        found = runs.scan(root).get(run_id or "")
        if found is None:
            raise UploadError(f"no run {run_id!r} under the runs folder", 404)
        return found

    @app.get("/", response_class=HTMLResponse)
    def runs_page():
        return pages.runs_page(root.name, [runs.summary(e) for e in runs.scan(root).values()])

    @app.get("/api/runs")
    def runs_json():
        return {"runs_dir": root.name, "runs": [runs.summary(e) for e in runs.scan(root).values()]}

    @app.get("/run", response_class=HTMLResponse)
    def run_page(id: str):
        found = entry(id)
        return pages.run_page(runs.summary(found), runs.readable(found))

    @app.get("/api/run")
    def run_json(id: str):
        return runs.summary(entry(id))

    @app.get("/run/file")
    def run_file(id: str, name: str):
        path = runs.run_file(entry(id), name)
        if path is None:
            raise UploadError(f"{id}: no file {name!r} that the app shows in this run", 404)
        media = {".html": "text/html", ".json": "application/json", ".csv": "text/csv", ".md": "text/plain"}
        if path.suffix.lower() == ".png":
            return Response(path.read_bytes(), media_type="image/png")
        text = runs.public(path.read_text(encoding="utf-8", errors="replace"), root)
        return Response(text, media_type=f"{media.get(path.suffix.lower(), 'text/plain')}; charset=utf-8")

    def comparable(ids: list[str]) -> tuple[list[Path], str | None]:
        if len(ids) < 2:
            return [], "choose at least two runs to compare"
        chosen = [entry(i) for i in ids]
        missing = [e.id for e in chosen if runs.headline(e) is None]
        if missing:
            return [], f"{', '.join(missing)}: not evaluated (no {METRICS}); run `glioscope evaluate` first"
        paths = [e.path for e in chosen]
        try:
            from glioscope.split import check_same_folds

            check_same_folds(paths, partial=True)
        except GlioscopeError as exc:
            return [], runs.public(str(exc), root)
        return paths, None

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(run: list[str] = Query(default=[])):
        ids = list(dict.fromkeys(run or []))
        _, error = comparable(ids)
        return HTMLResponse(pages.compare_page(ids, error), status_code=200 if error is None else 422)

    @app.get("/compare/view", response_class=HTMLResponse)
    def compare_view(run: list[str] = Query(default=[])):
        paths, error = comparable(list(dict.fromkeys(run or [])))
        if error:
            raise UploadError(error, 422)
        from glioscope.report import write_comparison

        with tempfile.TemporaryDirectory(prefix="glioscope-serve-") as tmp:
            try:
                html = write_comparison(paths, Path(tmp) / "comparison.html").read_text(encoding="utf-8")
            except GlioscopeError as exc:
                raise UploadError(runs.public(str(exc), root), 422) from None
        return runs.public(html, root)

    def choices() -> list[dict]:
        return [runs.summary(e) for e in runs.scan(root).values() if e.applicable]

    @app.get("/predict", response_class=HTMLResponse)
    def predict_form(model: str | None = None):
        text = (
            f"At most {limits.max_upload // MB} MB per upload; a zip at most {limits.max_unzipped // MB} MB "
            f"unpacked and {limits.max_members} members."
        )
        return pages.predict_form(choices(), model, text)

    def predict_sync(found: runs.RunEntry, files, mask) -> dict:
        started = time.perf_counter()
        with busy:  # one prediction at a time: the models use every core
            upload = save_upload(files, limits, mask)
            try:
                kind = (found.info.get("samples") or {}).get("kind")
                if kind == "volumes" and upload.kind == "image":
                    raise UploadError(
                        f"{upload.names[0]}: a 2D image, but {found.id} is a 3D model: it takes a volume "
                        "(a NIfTI file, or a DICOM series or a zip of one)",
                        422,
                    )
                try:
                    result, viewer = predict_study(found.path, upload.input, upload.mask, models, sets)
                except GlioscopeError as exc:
                    raise UploadError(upload.public(str(exc)), 422) from None
                result = json.loads(upload.public(json.dumps(result)))
            finally:
                upload.close()
        if viewer is not None:
            viewers.add(viewer)
        names = upload.names
        result.update(
            run=found.id,
            input=", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else ""),
            viewer=None if viewer is None else viewer.meta,
        )
        result["verdict"] = verdict(result, cv_auc(found.path))
        result["timing"]["total_s"] = round(time.perf_counter() - started, 3)
        return result

    async def predict(request: Request) -> dict:
        try:
            form = await request.form(max_files=limits.max_files + 1, max_fields=20)
        except MultiPartException as exc:
            raise UploadError(f"the upload could not be read: {exc.message}") from None
        try:
            model = form.get("model")
            found = entry(model if isinstance(model, str) else None)
            if not found.applicable:
                raise UploadError(f"{found.id} has no fold models to apply (a {found.kind})", 422)
            files = [(f.filename, f.file) for f in form.getlist("files") if isinstance(f, UploadFile)]
            mask = form.get("mask")
            mask = (mask.filename, mask.file) if isinstance(mask, UploadFile) and mask.filename else None
            return await run_in_threadpool(predict_sync, found, files, mask)
        finally:
            await form.close()

    @app.post("/predict", response_class=HTMLResponse)
    async def predict_page(request: Request):
        return pages.result_page(await predict(request))

    @app.post("/api/predict")
    async def predict_json(request: Request):
        return await predict(request)

    @app.get("/api/viewer/{token}/{part}")
    def viewer_data(token: str, part: str):
        """The canvas viewer's arrays ("image", "cam"), or NiiVue's gzip NIfTI ("study.nii.gz", "cam.nii.gz")."""
        found = viewers.get(token)
        study = None if found is None else found.study
        parts = {} if found is None else {"image": found.image or None, "cam": found.cam}
        if study is not None:
            parts.update({"study.nii.gz": study.image, "cam.nii.gz": study.cam})
        data = parts.get(part)
        if data is None:
            raise UploadError("no such image (the app keeps the last few studies only)", 404)
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})

    @app.get("/api/health")
    def health():
        return {"status": "ok", "runs_dir": root.name}

    return app
