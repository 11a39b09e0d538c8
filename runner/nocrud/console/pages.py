"""The console's HTML pages: runs, a run, a flow, the start form; fragments for live updates.

Server-rendered Jinja2 over the same store queries as the API. Live pages load
``console.js``, which follows ``/api/.../stream`` (server-sent events) and falls back
to polling; the runs table and a run's flows come as fragments it swaps in.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from nocrud.console.api import (
    console_of,
    not_shown,
    project_scope,
    run_filter,
    run_state,
    shown_run,
)
from nocrud.console.security import csrf_token
from nocrud.console.views import (
    ansi_to_html,
    compare,
    duration,
    flow_total,
    is_flaky,
    parse_failure,
    runs_chart,
    trend_chart,
)
from nocrud.masking import mask_text
from nocrud.store import ACTIVE, RunStatus

__all__ = ["router", "templates"]

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["mask"] = mask_text
templates.env.filters["duration"] = duration
templates.env.filters["ansi"] = ansi_to_html
templates.env.filters["when"] = lambda ts: (
    datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "—"
)
templates.env.globals["statuses"] = [s.value for s in RunStatus]

router = APIRouter(include_in_schema=False)

PER_PAGE = 25


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    console = console_of(request)
    return templates.TemplateResponse(
        request,
        template,
        {"csrf": csrf_token(request), "project": console.settings.project, **context},
    )


def _runs_context(request: Request, page: int) -> dict[str, Any]:
    console = console_of(request)
    q = request.query_params
    where = run_filter(
        q.get("status", ""),
        q.get("flow", ""),
        q.get("branch", ""),
        q.get("since", ""),
        q.get("until", ""),
    )
    where = replace(where, project=project_scope(console))
    runs, total = console.store.list_runs(where, page=page, per_page=PER_PAGE)
    query = {k: v for k, v in q.items() if k != "page" and v}
    return {
        "runs": runs,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PER_PAGE)),
        "query": query,
        "query_string": urlencode(query),
        "chart": runs_chart(runs),
        "branches": console.store.branches(),
    }


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request, page: int = Query(1, ge=1)) -> HTMLResponse:
    return _page(request, "runs.html", **_runs_context(request, page))


@router.get("/fragments/runs", response_class=HTMLResponse)
def runs_fragment(request: Request, page: int = Query(1, ge=1)) -> HTMLResponse:
    return _page(request, "_runs_table.html", **_runs_context(request, page))


def _run_or_404(request: Request, run_id: str) -> dict[str, Any]:
    console = console_of(request)
    run = shown_run(console, run_id)
    if run is None:
        raise HTTPException(404, not_shown(console, run_id))
    return run


def _flows_context(request: Request, run: dict[str, Any]) -> dict[str, Any]:
    console = console_of(request)
    flows = console.store.run_flows(run["id"])
    # The waterfall's axis starts with the first flow, not the run (whose build came first).
    begun = [f["started_at"] for f in flows if f["started_at"]]
    start = min(begun) if begun else run["started_at"] or run["created_at"]
    end = max([f["finished_at"] or time.time() for f in flows if f["started_at"]] + [start + 0.001])
    span = max(end - start, 0.001)
    for flow in flows:
        flow["total"] = flow_total(flow)
        if flow["started_at"]:
            offset = max(flow["started_at"] - start, 0.0)
            flow["bar"] = {
                "left": offset / span * 100,
                "provision": flow["provision"] / span * 100,
                "run": flow["run"] / span * 100,
                "teardown": flow["teardown"] / span * 100,
            }
    order = {"failed": 0, "error": 1, "running": 2, "queued": 3}
    return {
        "run": run,
        "flows": flows,
        "failures": sorted(
            (f for f in flows if f["status"] in ("failed", "error")),
            key=lambda f: order.get(f["status"], 9),
        ),
        "state": run_state(console, run),
    }


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> HTMLResponse:
    console = console_of(request)
    run = _run_or_404(request, run_id)
    context = _flows_context(request, run)
    for failure in context["failures"]:
        failure["parsed"] = parse_failure(failure["message"])
        failure["log_tail"] = console.store.blob_tail(failure["app_logs"], 40)
        failure["traceback_tail"] = console.store.blob_tail(failure["traceback"], 30)
    previous = console.store.previous_run(run) if run["status"] not in ACTIVE else None
    comparison = (
        compare(previous["id"], context["flows"], console.store.run_flows(previous["id"]))
        if previous
        else None
    )
    return _page(
        request,
        "run.html",
        comparison=comparison,
        active=run["status"] in ACTIVE,
        cancellable=run["status"] in ACTIVE and run.get("cancel_requested") is None,
        **context,
    )


@router.get("/fragments/runs/{run_id}/flows", response_class=HTMLResponse)
def flows_fragment(request: Request, run_id: str) -> HTMLResponse:
    run = _run_or_404(request, run_id)
    return _page(request, "_flows_table.html", **_flows_context(request, run))


@router.get("/flows/{name:path}", response_class=HTMLResponse)
def flow_page(request: Request, name: str) -> HTMLResponse:
    console = console_of(request)
    history = console.store.flow_history(name, limit=30, project=project_scope(console))
    return _page(
        request,
        "flow.html",
        name=name,
        history=history,
        flaky=is_flaky(history),
        trend=trend_chart(history),
        totals=[flow_total(h) for h in history],
    )


@router.get("/new", response_class=HTMLResponse)
def new_page(request: Request) -> HTMLResponse:
    console = console_of(request)
    return _page(
        request,
        "new.html",
        strategies=console.settings.strategies,
        default_parallel=console.settings.default_parallel,
        active=console.store.active_run(console.settings.project),
        prefill=dict(request.query_params),
    )


@router.get("/blobs/{digest}", response_class=HTMLResponse)
def blob_page(request: Request, digest: str, page: int = Query(0, ge=0)) -> Response:
    text, pages = console_of(request).store.blob_page(digest, page)
    if not pages:
        raise HTTPException(404, f"no stored text {digest!r}")
    return _page(request, "blob.html", digest=digest, text=text, page=page, pages=pages)
