"""The console's JSON API: runs, flows, logs, start/cancel/rerun, and runs reporting in.

Every page is built from these same store queries, and scripts and CI use them directly
(the OpenAPI document is at ``/openapi.json``). Bad input is a 4xx with one message per
field, never a 500: unknown runs are 404, a second active run 409 with a link to the
first, malformed bodies 422.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from nocrud.console.forms import StartRequest, field_errors, validate_start
from nocrud.console.launcher import Launcher, NotCancellable
from nocrud.console.security import csrf_token
from nocrud.console.settings import ConsoleSettings
from nocrud.console.views import ansi_to_html, flow_total
from nocrud.results import FlowResult, RunResult
from nocrud.store import ACTIVE, ActiveRunError, RunFilter, RunStatus, RunStore, status_for

__all__ = ["Console", "router"]

router = APIRouter(prefix="/api")


class Console:
    """The store, the launcher and the settings, shared by the API and the pages."""

    def __init__(self, store: RunStore, launcher: Launcher, settings: ConsoleSettings) -> None:
        self.store = store
        self.launcher = launcher
        self.settings = settings


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


class Unprocessable(HTTPException):
    """422 with one message per field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(status_code=422, detail={"errors": errors})


def _date(value: str, name: str) -> float | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise Unprocessable({name: f"{value!r} is not a date: write YYYY-MM-DD"}) from None


def run_filter(
    status: str = "", flow: str = "", branch: str = "", since: str = "", until: str = ""
) -> RunFilter:
    """The runs page's filters from query parameters (dates as YYYY-MM-DD, UTC)."""
    if status and status not in {s.value for s in RunStatus}:
        raise Unprocessable(
            {"status": f"unknown status {status!r}: one of {', '.join(s.value for s in RunStatus)}"}
        )
    end = _date(until, "until")
    return RunFilter(
        status=status,
        flow=flow,
        branch=branch,
        since=_date(since, "since"),
        until=end + 86400 if end is not None else None,
    )


def project_scope(console: Console) -> str:
    """The project whose runs this console shows; empty with ``--all-projects``."""
    return "" if console.settings.all_projects else console.settings.project


def shown_run(console: Console, run_id: str) -> dict[str, Any] | None:
    """The run ``run_id`` when this console shows it (its project's, or any with --all-projects)."""
    run = console.store.get_run(run_id)
    scope = project_scope(console)
    if run is None or (scope and run["project"] != scope):
        return None
    return run


def not_shown(console: Console, run_id: str) -> str:
    """Why ``run_id`` is not here: not recorded, or another project's run."""
    run = console.store.get_run(run_id)
    if run is not None:
        return (
            f"run {run_id!r} is of project {run['project']!r}; this console shows "
            f"{console.settings.project!r}: open it with `nocrud serve --all-projects` "
            "or that project's config"
        )
    return f"no run {run_id!r}: see /api/runs for the runs there are"


def _run_or_404(console: Console, run_id: str) -> dict[str, Any]:
    run = shown_run(console, run_id)
    if run is None:
        raise HTTPException(404, not_shown(console, run_id))
    return run


def run_state(console: Console, run: dict[str, Any]) -> dict[str, Any]:
    """A run with its flows' statuses and durations: what live pages update from."""
    flows = console.store.run_flows(run["id"])
    return {
        "run": run,
        "cancellable": run["status"] in ACTIVE and run.get("cancel_requested") is None,
        "flows": [
            {
                "name": f["name"],
                "status": f["status"],
                "worker": f["worker"],
                "duration": round(flow_total(f), 3),
                "message": f["message"].splitlines()[0] if f["message"] else "",
            }
            for f in flows
        ],
    }


Page = Annotated[int, Query(ge=1, le=100000)]
PerPage = Annotated[int, Query(ge=1, le=200)]


@router.get("/runs", summary="Runs, newest first, filtered and paged")
def list_runs(  # noqa: PLR0917 - FastAPI reads query parameters from the signature
    request: Request,
    status: str = "",
    flow: str = "",
    branch: str = "",
    since: str = "",
    until: str = "",
    page: Page = 1,
    per_page: PerPage = 25,
) -> dict[str, Any]:
    console = console_of(request)
    where = replace(run_filter(status, flow, branch, since, until), project=project_scope(console))
    runs, total = console.store.list_runs(where, page=page, per_page=per_page)
    return {"runs": runs, "total": total, "page": page, "per_page": per_page}


@router.post("/runs", status_code=201, summary="Start a run of the project")
def start_run(request: Request, body: StartRequest) -> JSONResponse:
    console = console_of(request)
    errors = validate_start(body, console.settings)
    if errors:
        raise Unprocessable(errors)
    return _start(console, body)


def _start(console: Console, body: StartRequest) -> JSONResponse:
    try:
        run_id = console.launcher.start(body)
    except ActiveRunError as exc:
        return JSONResponse(
            {"detail": str(exc), "active_run": exc.run_id, "url": f"/runs/{exc.run_id}"},
            status_code=409,
        )
    return JSONResponse({"run_id": run_id, "url": f"/runs/{run_id}"}, status_code=201)


@router.get("/runs/{run_id}", summary="One run with its flows' statuses")
def get_run(request: Request, run_id: str) -> dict[str, Any]:
    console = console_of(request)
    return run_state(console, _run_or_404(console, run_id))


@router.get("/runs/{run_id}/flows", summary="One run's flows in full (texts as blob ids)")
def get_run_flows(request: Request, run_id: str) -> list[dict[str, Any]]:
    console = console_of(request)
    _run_or_404(console, run_id)
    return console.store.run_flows(run_id)


@router.post("/runs/{run_id}/cancel", status_code=202, summary="Cancel an active run")
def cancel_run(request: Request, run_id: str) -> dict[str, Any]:
    """Cancel a run: one this console started, or a CLI or CI run recording or reporting here."""
    console = console_of(request)
    run = _run_or_404(console, run_id)
    if run["status"] not in ACTIVE:
        raise HTTPException(409, f"run {run_id} is already over ({run['status']})")
    try:
        said = console.launcher.cancel(run_id)
    except NotCancellable as exc:
        raise HTTPException(409, str(exc)) from None
    return {"run_id": run_id, "status": "cancelling", "detail": said}


@router.post("/runs/{run_id}/rerun", status_code=201, summary="Run a run's failed flows again")
def rerun(request: Request, run_id: str, failed_only: bool = True) -> JSONResponse:
    console = console_of(request)
    run = _run_or_404(console, run_id)
    selection = run["selection"] or {}
    if failed_only:
        names = [
            f["name"] for f in console.store.run_flows(run_id) if f["status"] in ("failed", "error")
        ]
        if not names:
            raise Unprocessable({"failed_only": f"run {run_id} has no failed flows to run again"})
        body = StartRequest(
            flows=names, parallel=run["parallel"], strategy=run["strategy"] or "image"
        )
    else:
        try:
            body = StartRequest(
                **{k: v for k, v in selection.items() if k in StartRequest.model_fields},
                parallel=run["parallel"],
                strategy=run["strategy"] or "image",
            )
        except ValidationError as exc:
            raise Unprocessable(field_errors(exc.errors())) from None
    errors = validate_start(body, console.settings)
    if errors:
        raise Unprocessable(errors)
    return _start(console, body)


@router.get("/runs/{run_id}/log", summary="The run's log lines after a line number")
def run_log(
    request: Request,
    run_id: str,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
) -> dict[str, Any]:
    console = console_of(request)
    _run_or_404(console, run_id)
    lines = console.store.log_lines(run_id, after=after, limit=limit)
    return {
        "lines": [{"seq": s, "text": t, "html": ansi_to_html(t)} for s, t in lines],
        "next": lines[-1][0] if lines else after,
    }


@router.get("/blobs/{digest}", summary="One page of a stored log, traceback or output")
def blob(
    request: Request, digest: str, page: Annotated[int, Query(ge=0, le=1000000)] = 0
) -> dict[str, Any]:
    text, pages = console_of(request).store.blob_page(digest, page)
    if not pages:
        raise HTTPException(404, f"no stored text {digest!r}")
    if page >= pages:
        raise Unprocessable({"page": f"page {page} is past the last one ({pages - 1})"})
    return {"text": text, "page": page, "pages": pages}


@router.get("/flows/{name:path}", summary="A flow's recent results")
def flow_history(
    request: Request, name: str, limit: Annotated[int, Query(ge=1, le=500)] = 30
) -> dict[str, Any]:
    from nocrud.console.views import is_flaky

    console = console_of(request)
    history = console.store.flow_history(name, limit=limit, project=project_scope(console))
    if not history:
        raise HTTPException(404, f"no recorded results of flow {name!r}")
    return {"name": name, "flaky": is_flaky(history), "results": history}


@router.get("/csrf", summary="This client's CSRF token (also set as the nocrud_csrf cookie)")
def csrf(request: Request) -> dict[str, str]:
    return {"token": csrf_token(request), "header": "X-CSRF-Token"}


@router.get("/meta", summary="The project, the strategies a run may use, the defaults")
def meta(request: Request) -> dict[str, Any]:
    settings = console_of(request).settings
    return {
        "project": settings.project,
        "strategies": list(settings.strategies),
        "default_parallel": settings.default_parallel,
    }


class ReportRequest(BaseModel):
    """A run elsewhere (``nocrud up --report-to``) asks for an id and its own token.

    ``run_id`` and ``token`` are the run's id and token in the store it records into
    itself: when that is this console's store, the run is already here.
    """

    model_config = ConfigDict(extra="ignore")

    project: str = Field(min_length=1, max_length=64)
    run_id: str = Field(default="", max_length=64)
    token: str = Field(default="", max_length=200)
    selection: dict[str, Any] = Field(default_factory=dict)
    parallel: int = Field(default=1, ge=1, le=1024)
    strategy: str = Field(default="", max_length=64)


@router.post("/reports", status_code=201, summary="Register a run that reports in live")
def register(request: Request, body: ReportRequest) -> dict[str, Any]:
    """A new run for the reporter, or its own run when it records into this same store.

    Only the process holding that run's token (issued when it recorded the run) can
    claim it, so no one can write into another run by naming its id.
    """
    store = console_of(request).store
    if body.run_id and body.token and store.check_token(body.run_id, body.token):
        return {
            "run_id": body.run_id,
            "token": body.token,
            "url": f"/runs/{body.run_id}",
            "recorded": True,  # the same store: the console reads it, events are not needed
        }
    # The run's own id (the one its terminal, reports and Docker labels show) when no run
    # has it yet, so `/runs/<that id>` opens it; taken, the console gives it a new one.
    free = bool(re.fullmatch(r"[0-9a-z]{4,32}", body.run_id)) and store.get_run(body.run_id) is None
    run_id, token = store.create_run(
        project=body.project,
        trigger="remote",
        run_id=body.run_id if free else None,
        selection=body.selection,
        parallel=body.parallel,
        strategy=body.strategy,
    )
    return {"run_id": run_id, "token": token, "url": f"/runs/{run_id}", "recorded": False}


class Event(BaseModel):
    """One event of a reporting run."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(pattern="^(run_started|flow_started|flow_finished|log|run_finished)$")


class Events(BaseModel):
    events: list[Event] = Field(max_length=10000)


@router.post("/runs/{run_id}/events", summary="A reporting run's events; says if it is to stop")
def take_events(
    request: Request,
    run_id: str,
    body: Events,
    authorization: Annotated[str, Header()] = "",
) -> dict[str, bool]:
    """Apply the events; the answer's ``cancel`` is true once the run was asked to stop.

    A run with nothing to report sends an empty batch now and then, to ask.
    """
    console = console_of(request)
    token = authorization.partition(" ")[2].strip()
    if not token or not console.store.check_token(run_id, token):
        raise HTTPException(401, f"this run's token is required to report events for {run_id}")
    for index, event in enumerate(body.events):
        try:
            _apply(console, run_id, event.model_dump())
        except (KeyError, TypeError, ValueError) as exc:
            raise Unprocessable({f"events.{index}": f"{event.type}: {exc}"}) from None
    return {"cancel": console.store.cancel_requested(run_id)}


def _apply(console: Console, run_id: str, event: dict[str, Any]) -> None:
    store = console.store
    kind = event["type"]
    if kind == "run_started":
        store.start_run(
            run_id,
            flow_names=[str(n) for n in event.get("flows", [])],
            commit=str(event.get("commit", "")),
            branch=str(event.get("branch", "")),
            nocrud_run_id=str(event.get("nocrud_run_id", "")),
            nocrud_version=str(event.get("nocrud_version", "")),
            owner=str(event.get("owner", "")) or None,
            parallel=int(event["parallel"]) if "parallel" in event else None,
            strategy=str(event["strategy"]) if "strategy" in event else None,
        )
    elif kind == "flow_started":
        store.flow_started(run_id, str(event["name"]), int(event.get("worker", 0)))
    elif kind == "flow_finished":
        store.flow_finished(run_id, FlowResult.from_dict(event["result"]))
    elif kind == "log":
        store.append_log(run_id, [str(line) for line in event.get("lines", [])])
    elif kind == "run_finished":
        result = RunResult.from_dict(event["result"]) if event.get("result") else None
        code = int(event.get("exit_code", 1))
        store.finish_run(
            run_id,
            status=status_for(
                code,
                cancelled=bool(event.get("cancelled")) or console.launcher.cancelled(run_id),
            ),
            result=result,
            exit_code=code,
            message=str(event.get("message", "")),
        )


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


@router.get("/runs/{run_id}/stream", summary="Server-sent events: the run's state and log, live")
async def stream_run(
    request: Request, run_id: str, after: Annotated[int, Query(ge=0)] = 0
) -> StreamingResponse:
    console = console_of(request)
    await run_in_threadpool(_run_or_404, console, run_id)

    async def events() -> AsyncIterator[str]:
        seq, seen, quiet, final = after, -1.0, 0, ""
        while not await request.is_disconnected():
            changed = await run_in_threadpool(console.store.changed_at, run_id)
            lines = await run_in_threadpool(console.store.log_lines, run_id, after=seq)
            if lines:
                seq = lines[-1][0]
                yield _sse("log", [{"seq": s, "html": ansi_to_html(t)} for s, t in lines])
            if changed != seen:
                seen, quiet = changed, 0
                run = await run_in_threadpool(console.store.get_run, run_id)
                if run is None:
                    return
                yield _sse("state", await run_in_threadpool(run_state, console, run))
                final = "" if run["status"] in ACTIVE else str(run["status"])
            elif not lines:
                quiet += 1
                if quiet % 30 == 0:
                    yield ": keep-alive\n\n"
            if final and not lines:  # over, and its log sent to the last line
                yield _sse("end", {"status": final})
                return
            await asyncio.sleep(0.5)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/stream", summary="Server-sent events: something in the run list changed")
async def stream_runs(request: Request) -> StreamingResponse:
    console = console_of(request)

    async def events() -> AsyncIterator[str]:
        seen = await run_in_threadpool(console.store.changed_at)
        ticks = 0
        while not await request.is_disconnected():
            await asyncio.sleep(1.0)
            changed = await run_in_threadpool(console.store.changed_at)
            ticks += 1
            if changed != seen:
                seen = changed
                yield _sse("changed", {"at": changed})
            elif ticks % 15 == 0:
                yield ": keep-alive\n\n"

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
