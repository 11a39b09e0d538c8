"""The console's ASGI application: the API and the pages over one store, behind the guard.

:func:`create_app` wires the store, the launcher and the settings ``nocrud serve``
decided into a FastAPI app; its lifespan recovers runs a previous console left behind
and stops the runs this one started when it shuts down. Every error a client can cause
is a 4xx JSON answer with a message (per field for validation), never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from nocrud import __version__
from nocrud.console import api, pages
from nocrud.console.forms import field_errors
from nocrud.console.launcher import Launcher
from nocrud.console.security import guard
from nocrud.console.settings import ConsoleSettings
from nocrud.store import RunStore

__all__ = ["create_app"]

log = logging.getLogger("nocrud.console")


def create_app(settings: ConsoleSettings, *, store: RunStore | None = None) -> FastAPI:
    """The console for ``settings``; ``store`` defaults to one opened on its URL."""
    store = store or RunStore(settings.store_url)
    launcher = Launcher(store, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        gone = launcher.recover()
        if gone:
            log.warning("marked %d run(s) interrupted: their process is gone", len(gone))
        store.retain(keep_runs=settings.keep_runs, keep_days=settings.keep_days)
        yield
        launcher.shutdown()

    app = FastAPI(
        title="nocrud console",
        version=__version__,
        summary="Runs of nocrud: history, live progress, start, cancel and rerun.",
        docs_url=None,  # Swagger UI loads its assets from a CDN; the document is enough
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.console = api.Console(store, launcher, settings)
    app.middleware("http")(guard(settings.token))
    app.mount(
        "/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"
    )
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(list(exc.errors()))
        return JSONResponse(
            {"detail": "; ".join(f"{k}: {v}" for k, v in errors.items()), "errors": errors},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail
        body = detail if isinstance(detail, dict) else {"detail": str(detail)}
        if isinstance(detail, dict) and "errors" in detail:
            body = {
                "detail": "; ".join(f"{k}: {v}" for k, v in detail["errors"].items()),
                **detail,
            }
        wants_html = "text/html" in request.headers.get(
            "accept", ""
        ) and not request.url.path.startswith("/api/")
        if wants_html:
            return pages.templates.TemplateResponse(
                request,
                "error.html",
                {
                    "status": exc.status_code,
                    "message": body["detail"],
                    "csrf": "",
                    "project": settings.project,
                },
                status_code=exc.status_code,
            )
        return JSONResponse(body, status_code=exc.status_code)

    return app
