"""Who may talk to the studio, and what the browser may do with its pages.

- Bound to a loopback address, the studio answers only requests whose Host is a loopback name:
  a web page elsewhere cannot reach it through DNS rebinding.
- Bound to any other address, every request needs the token printed at start: as the
  `X-Studio-Token` header, `Authorization: Bearer`, or `?token=` once in the browser (which then
  keeps it in a same-site cookie).
- Requests that change something must come from the studio's own pages (same Origin).
- Pages may load scripts, styles and fonts only from the studio (no CDN, nothing inline);
  workspace files are served sandboxed, so an HTML report cannot run script against the API.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

TOKEN_HEADER = "x-studio-token"
TOKEN_COOKIE = "coverforge_studio_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PAGE_POLICY = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; "
               "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
FILE_POLICY = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """Host, token and origin checks for every request, and security headers on every answer."""

    def __init__(self, token: str | None = None, allowed_hosts: tuple[str, ...] | None = LOOPBACK_NAMES):
        self.token = token
        self.allowed_hosts = allowed_hosts

    def _host(self, request: Request) -> str:
        return urlsplit(f"//{request.headers.get('host', '')}").hostname or ""

    def _presented_token(self, request: Request) -> tuple[str, bool]:
        """(token, came from the query string)."""
        auth = request.headers.get("authorization", "")
        for value in (request.headers.get(TOKEN_HEADER), auth[7:] if auth.lower().startswith("bearer ") else None,
                      request.cookies.get(TOKEN_COOKIE)):
            if value:
                return value, False
        return request.query_params.get("token", ""), True

    def refusal(self, request: Request) -> tuple[Response | None, bool]:
        """(an error response, or None to go on; whether to set the token cookie)."""
        if self.allowed_hosts is not None and self._host(request) not in self.allowed_hosts:
            return _error(request, 400, f"host {self._host(request)!r} is not served here: open the studio at 127.0.0.1 or localhost"), False
        from_query = False
        if self.token is not None:
            presented, from_query = self._presented_token(request)
            if not hmac.compare_digest(presented.encode(), self.token.encode()):
                return _error(request, 401, "this studio needs its access token: open the URL with ?token=... that the studio printed"), False
        if request.method not in SAFE_METHODS:
            origin = request.headers.get("origin")
            if origin and urlsplit(origin).netloc != request.headers.get("host"):
                return _error(request, 403, f"requests from {origin} are not accepted: use the studio's own pages"), False
        return None, from_query

    async def __call__(self, request: Request, call_next) -> Response:
        refused, set_cookie = self.refusal(request)
        response = refused or await call_next(request)
        if set_cookie:
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")  # the token may be in the address bar
        headers.setdefault("X-Frame-Options", "DENY")
        is_file = request.url.path.startswith("/files/")
        headers.setdefault("Content-Security-Policy", FILE_POLICY if is_file else PAGE_POLICY)
        return response


def _error(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith(("/api/", "/files/")):
        return JSONResponse({"error": message}, status_code=status)
    from html import escape

    return HTMLResponse(f"<!doctype html><title>coverforge studio</title><p>{escape(message)}</p>", status_code=status)
