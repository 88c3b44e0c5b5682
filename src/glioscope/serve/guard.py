"""Who may use the app: requests naming its own host, holding this launch's token, changes from its own pages.

Every request passes these checks before any route runs (those of Jupyter's server):

- Host: the Host header names an address of the app: localhost, 127.0.0.1 or [::1] (any port), the bound
  address when it is not a loopback one, and the names given with --allow-host. Any other name is a page
  of another site reaching the app through DNS rebinding: 403, one line, no data.
- Token: a secret made at each launch, taken from `?token=` (which sets an HttpOnly, SameSite=Strict
  cookie and redirects to the same address without it), from that cookie, or from an
  `Authorization: token ...` (or `Bearer ...`) header; a token given that is not the launch's is refused
  even beside the right cookie. Without it, 403 and a page that says how to open the app. The app's
  own CSS and scripts (/static/) hold no data and are served without it.
- Origin: a POST, PUT, DELETE or PATCH must come from the app's own origin (its Origin header or, when
  that is absent, its Referer); a cookie alone is not enough, since a page of another site can make the
  browser send it. A request with neither header (a script's) is accepted only with the token in its
  header or address, which another site's page cannot add.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from glioscope.errors import GlioscopeError
from glioscope.serve import pages

LOOPBACK = ("localhost", "127.0.0.1", "::1")
UNSAFE = frozenset({"POST", "PUT", "DELETE", "PATCH"})
PUBLIC = "/static/"  # the app's own CSS and scripts: no data, so no token
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
_PORTS = {"http": 80, "https": 443}


def new_token() -> str:
    return secrets.token_urlsafe(32)


def host_option(value: str) -> str:
    """A host name or IP address given to --allow-host, in the form Host headers are compared in."""
    name = value.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not _NAME.fullmatch(name):
        raise GlioscopeError(
            f"--allow-host {value!r}: expected a host name or IP address, without scheme, port or path "
            "(e.g. --allow-host myserver.lan)"
        )
    return name


def split_host(value: str) -> tuple[str, int | None] | None:
    """('name', port or None) of a Host header ('Name.:8000', '[::1]:8000', '127.0.0.1'); None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket:
            return None
    else:
        name, colon, rest = value.partition(":")
        rest = colon + rest
    if rest and not re.fullmatch(r":[0-9]{1,5}", rest):
        return None
    name = name.rstrip(".")
    return (name, int(rest[1:]) if rest else None) if name else None


def error_response(path: str, status: int, message: str, back: str | None = None) -> Response:
    """The app's answer to a refused request: JSON under /api, a page elsewhere."""
    if path.startswith("/api/"):
        return JSONResponse({"error": message, "status": status}, status_code=status)
    back = back or ("/predict" if path.startswith("/predict") else "/")
    return HTMLResponse(pages.error_page(status, message, back), status_code=status)


class Guard:
    """ASGI middleware: the checks of the module docstring, in that order, before any route."""

    def __init__(self, app, token: str, hosts: Iterable[str] = ()):
        self.app, self.token = app, token.encode()
        self.hosts = frozenset((*LOOPBACK, *map(host_option, hosts)))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        response = self.check(scope)
        await (response or self.app)(scope, receive, send)

    def check(self, scope) -> Response | None:
        """The response that refuses (or redirects) this request; None to let it through."""
        headers, path, method = Headers(scope=scope), scope["path"], scope["method"]
        host = split_host(headers.get("host", ""))
        if host is None or host[0] not in self.hosts:
            return PlainTextResponse(
                f"403: the Host header {headers.get('host', '')!r} is not an address of this app "
                "(glioscope serve --allow-host NAME adds one)",
                status_code=403,
            )
        if path.startswith(PUBLIC) and method in ("GET", "HEAD"):
            return None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        kind, _, value = headers.get("authorization", "").partition(" ")
        given = [v for k, v in query if k == "token"] + ([value.strip()] if kind.lower() in ("token", "bearer") else [])
        cookie = cookie_parser(headers.get("cookie", "")).get(self.cookie_name(scope))
        if given:
            if not all(self._right(t) for t in given):
                return self.token_page(path, "The token given is not this launch's (was glioscope serve restarted?)")
        elif cookie is None or not self._right(cookie):
            return self.token_page(path, "This request holds no token of this launch of glioscope serve")
        if method in UNSAFE:
            refused = self._foreign(headers, host, cookie_only=not given)
            if refused:
                return error_response(path, 403, refused)
        if method in ("GET", "HEAD") and any(k == "token" for k, _ in query):
            return self._sign_in(scope, query)
        return None

    def cookie_name(self, scope) -> str:
        # Cookies do not tell ports apart: one name per port keeps two launches on one computer apart.
        server = scope.get("server")
        return f"glioscope-token-{server[1]}" if server and server[1] else "glioscope-token"

    def _right(self, candidate: str) -> bool:
        return secrets.compare_digest(candidate.encode("utf-8", "replace"), self.token)

    def token_page(self, path: str, why: str) -> Response:
        text = (
            f"{why}: open glioscope through the address `glioscope serve` printed when it started "
            "(http://127.0.0.1:8000/?token=… by default); the token changes at every start. "
            "A script sends the header `Authorization: token …`."
        )
        if path.startswith("/api/"):
            return JSONResponse({"error": text, "status": 403}, status_code=403)
        return HTMLResponse(pages.token_page(text), status_code=403)

    def _sign_in(self, scope, query: list[tuple[str, str]]) -> Response:
        """The same address without the token, and the token in a cookie, so that it leaves the address bar."""
        path = "/" + quote(scope["path"]).lstrip("/")  # never '//host': that would lead to another site
        rest = urlencode([(k, v) for k, v in query if k != "token"])
        response = RedirectResponse(path + (f"?{rest}" if rest else ""), status_code=303)
        response.set_cookie(self.cookie_name(scope), self.token.decode(), path="/", httponly=True, samesite="strict")
        response.headers["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def _foreign(headers: Headers, host: tuple[str, int | None], cookie_only: bool) -> str | None:
        """Why a state-changing request is refused: it comes from another origin; None when it is the app's own."""
        source = headers.get("origin") or headers.get("referer")
        if source is None:
            if cookie_only:  # a browser sends Origin with every POST; the cookie alone could be another site's doing
                return "a change without an Origin or Referer header needs the token in the Authorization header"
            return None
        parts = urlsplit(source)
        try:
            port = parts.port
        except ValueError:
            port = None
        scheme = parts.scheme if parts.scheme in _PORTS else None
        if (
            scheme
            and parts.hostname
            and (parts.hostname.rstrip("."), port or _PORTS[scheme])
            == (
                host[0],
                host[1] or _PORTS[scheme],
            )
        ):
            return None
        return f"this request comes from another page ({source[:80]}); the app accepts changes from its own pages only"
