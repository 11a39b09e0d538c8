"""crud() on the shapes real apps have (issue 21, items 6c and 13): a create answering 200
that the OpenAPI document lists, an app's own not-found status after a delete, an id sent
under one name and answered under another; and a failed step said once in the report.

The app is a small HTTP server in this process, like tests/unit/flows/test_crud.py's.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rich.console import Console

from nocrud.flows.context import FlowContext
from nocrud.flows.crud import crud
from nocrud.report.terminal import TerminalReporter
from nocrud.results import FlowResult, Status
from tests.unit.flows.test_crud import make_context, run, steps


class _Tags(BaseHTTPRequestHandler):
    """Tags: create answers 200 (FastAPI's default); a deleted tag answers 400; a tag's id
    may be chosen by the client, sent as ``tag_id`` and answered as ``id``."""

    server: _Server

    def log_message(self, *_args: object) -> None:
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return dict(json.loads(self.rfile.read(length))) if length else {}

    def _id(self) -> int:
        return int(self.path.rstrip("/").rsplit("/", 1)[1])

    def do_POST(self) -> None:
        body = self._body()
        tags = self.server.tags
        ident = int(body.pop("tag_id", 0)) or len(tags) + 1000
        tags[ident] = {**body, "id": ident}
        self._reply(200, tags[ident])

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/tags":
            self._reply(200, list(self.server.tags.values()))
        elif self._id() in self.server.tags:
            self._reply(200, self.server.tags[self._id()])
        else:
            self._reply(400, {"detail": "no such tag"})

    def do_PUT(self) -> None:
        body = self._body()
        body.pop("tag_id", None)
        self.server.tags[self._id()] = {**body, "id": self._id()}
        self._reply(200, self.server.tags[self._id()])

    def do_DELETE(self) -> None:
        self.server.tags.pop(self._id(), None)
        self._reply(204, None)


class _Server(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Tags)
        self.tags: dict[int, dict[str, Any]] = {}


@pytest.fixture
def app() -> Iterator[str]:
    server = _Server()
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _document(create: tuple[int, ...]) -> dict[str, Any]:
    """A Swagger 2.0 document under a basePath, listing ``create`` for POST /tags/."""
    return {
        "swagger": "2.0",
        "basePath": "/",
        "paths": {
            "/tags/": {"post": {"responses": {str(code): {} for code in create}}},
            "/tags/{tag_id}/": {"get": {"responses": {"200": {}, "400": {}}}},
        },
    }


def _context(app: str, document: Mapping[str, Any] | None) -> FlowContext:
    return replace(make_context(app), _openapi=lambda: document)


TAG = {"name": "red"}


def test_create_answering_200_passes_when_the_document_lists_only_200(app: str) -> None:
    ctx = _context(app, _document((200, 422)))
    flow = crud("tag_crud", "/tags/", create=TAG, update={"name": "blue"}, gone_status=400)
    assert run(flow, ctx) is None, steps(ctx)
    assert "create answered 200: the app's OpenAPI document lists 200 for POST /tags/" in (
        "\n".join(ctx.lines)
    )


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (None, "201: crud()'s default for a create; the app has no OpenAPI document"),
        (
            _document((201,)),
            "201: crud()'s default, and the OpenAPI document lists it for POST /tags/",
        ),
        (_document(()), "201: crud()'s default; the OpenAPI document lists no 2xx for POST /tags/"),
    ],
)
def test_create_answering_200_fails_saying_what_it_expected_and_why(
    app: str, document: dict[str, Any] | None, why: str
) -> None:
    ctx = _context(app, document)
    assert run(crud("tag_crud", "/tags/", create=TAG, gone_status=400), ctx) is not None
    status, message = steps(ctx)["create"]
    assert status is Status.FAILED
    assert (
        f"POST {app}/tags/ -> 200 OK (expected {why}; if 200 is right, pass create_status=200)"
        in (message)
    )


def test_create_status_given_by_the_flow_wins_over_the_document(app: str) -> None:
    ctx = _context(app, _document((201,)))
    flow = crud("tag_crud", "/tags/", create=TAG, create_status=200, gone_status=400)
    assert run(flow, ctx) is None, steps(ctx)


def test_the_apps_own_not_found_status_after_a_delete(app: str) -> None:
    ctx = _context(app, _document((200,)))
    assert run(crud("tag_crud", "/tags/", create=TAG), ctx) is not None
    status, message = steps(ctx)["delete"]
    assert status is Status.FAILED
    assert message == (
        "after DELETE /tags/1000/, GET /tags/1000/ -> 400: still there (expected 404 or 410); "
        "if the app answers 400 for an object it deleted, pass gone_status=400"
    )
    ctx = _context(app, _document((200,)))
    assert run(crud("tag_crud", "/tags/", create=TAG, gone_status=400), ctx) is None


def test_an_id_sent_under_one_name_and_answered_under_another(app: str) -> None:
    flow = crud(
        "tag_crud",
        "/tags/",
        create=TAG,
        id=lambda ctx: 77,
        send_id_as="tag_id",
        update={"name": "blue"},
        create_status=200,
        gone_status=400,
    )
    ctx = _context(app, None)
    assert run(flow, ctx) is None, steps(ctx)
    # Without send_id_as the chosen id goes as "id", which this app ignores.
    ctx = _context(app, None)
    plain = crud("tag_crud", "/tags/", create=TAG, id=lambda ctx: 78, create_status=200)
    assert run(plain, ctx) is not None
    assert "the flow chose id=78, the answer says 1000" in steps(ctx)["create"][1]


def test_a_crud_flow_failing_two_steps_says_each_once() -> None:
    ctx = FlowContext(name="x", base_url="http://x", api=None, _connect_db=None, _new_client=None)  # type: ignore[arg-type]
    ctx.add_step("create", Status.PASSED)
    ctx.add_step("read", Status.PASSED)
    ctx.add_step("update", Status.FAILED, "after PUT /tags/1/: field 'name': sent 'b', got 'a'")
    ctx.add_step("list", Status.FAILED, "GET /tags/ does not list id=1 (0 items on 1 page)")
    message = "\n".join(f"{s.name}: {s.message}" for s in ctx.steps if s.status.name == "FAILED")
    result = FlowResult(
        name="tag_crud", kind="crud", status=Status.FAILED, message=message, steps=tuple(ctx.steps)
    )
    out = io.StringIO()
    reporter = TerminalReporter(Console(file=out, width=200, no_color=True), total=1)
    reporter.console.print(reporter.render_flow(result))
    text = out.getvalue()
    assert text.count("does not list id=1") == 1, text
    assert text.count("field 'name'") == 1, text
