"""Who may use the console: the serve token off loopback, CSRF on every state change.

The console starts runs, which executes the project's code, so:

- **Token.** When ``nocrud serve`` has a token (required to listen beyond loopback), every
  request carries it: ``Authorization: Bearer TOKEN`` (scripts, CI), or the HttpOnly
  cookie set by opening ``/?token=TOKEN`` once (a browser). The events a run streams
  back are the exception: they carry the token issued to that run alone.
- **CSRF.** A browser's state-changing request (POST) must send the ``X-CSRF-Token``
  header equal to the ``nocrud_csrf`` cookie (double submit; the console's pages do).
  Another site can neither read the cookie nor set the header without a CORS preflight,
  which the console never grants. A request with the serve token in its Authorization
  header is not a browser riding on cookies, so it needs no CSRF header; neither does
  registering a run (``/api/reports``, JSON only, which a form on another site cannot send).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "TOKEN_COOKIE", "csrf_token", "guard"]

CSRF_COOKIE: Final = "nocrud_csrf"
CSRF_HEADER: Final = "x-csrf-token"
TOKEN_COOKIE: Final = "nocrud_token"  # noqa: S105 - the cookie's name, not a secret
_SAFE: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_RUN_EVENTS: Final = re.compile(r"^/api/runs/[^/]+/events$")


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def guard(
    token: str,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """The middleware enforcing the token and CSRF rules above."""

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if path.startswith("/static/") or (request.method == "POST" and _RUN_EVENTS.match(path)):
            return await call_next(request)  # per-run token, checked by the endpoint
        bearer_ok = bool(token) and secrets.compare_digest(_bearer(request), token)
        if token and not bearer_ok:
            given = request.query_params.get("token", "")
            if request.method in _SAFE and given and secrets.compare_digest(given, token):
                target = request.url.remove_query_params("token")
                answer: Response = RedirectResponse(str(target.path) or "/", status_code=303)
                answer.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
                return answer
            if not secrets.compare_digest(request.cookies.get(TOKEN_COOKIE, ""), token):
                return JSONResponse(
                    {
                        "detail": "this console needs its token: send 'Authorization: Bearer "
                        "TOKEN', or open /?token=TOKEN once in the browser "
                        "(the token is NOCRUD_SERVE_TOKEN or --token of nocrud serve)"
                    },
                    status_code=401,
                )
        if request.method not in _SAFE and not bearer_ok:
            if path == "/api/reports":
                if not request.headers.get("content-type", "").startswith("application/json"):
                    return JSONResponse(
                        {"detail": "send the run as JSON (Content-Type: application/json)"},
                        status_code=415,
                    )
            else:
                cookie = request.cookies.get(CSRF_COOKIE, "")
                header = request.headers.get(CSRF_HEADER, "")
                if not cookie or not secrets.compare_digest(cookie, header):
                    return JSONResponse(
                        {
                            "detail": "missing or wrong X-CSRF-Token header: send the value "
                            f"of the {CSRF_COOKIE} cookie (GET /api/csrf sets one and returns "
                            "it), or authenticate with 'Authorization: Bearer TOKEN'"
                        },
                        status_code=403,
                    )
        csrf = csrf_token(request)
        response = await call_next(request)
        if CSRF_COOKIE not in request.cookies:
            response.set_cookie(CSRF_COOKIE, csrf, httponly=False, samesite="strict")
        return response

    return middleware


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (the cookie's, or a new one the response will set)."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing:
        return existing
    if not hasattr(request.state, "csrf"):
        request.state.csrf = secrets.token_urlsafe(24)
    return str(request.state.csrf)
