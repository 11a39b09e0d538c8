"""CRUD flows, builders and the flow context against a small REST server on 127.0.0.1.

The server (``FakeRest``) keeps objects in memory under ``/api/<collection>``, pages
lists (offset/total, a Link header or a ``next`` URL), wants a bearer token from
``POST /api/auth/login`` for writes, and can be broken on purpose one way at a time
(PUT ignores a field, reads drop one, delete keeps the object...) to prove each CRUD
step fails alone, naming what differed. Nothing in ``requests`` is mocked.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from nocrud.flows import FlowContext, builders
from nocrud.flows.crud import CrudFailed, CrudFlow, collection_path, crud, differences
from nocrud.http.client import ApiClient, ApiConnectionError, RequestRecorder, UnexpectedStatus
from nocrud.report.terminal import format_steps
from nocrud.results import Status, StepResult

TOKEN = "tok-crud-0123456789"
USERS = {"alice": "alice-password", "viewer": "viewer-password"}


@dataclass
class Breakage:
    """One way the server misbehaves; the defaults are a correct server."""

    create_status: int = 201
    create_omits_id: bool = False
    put_ignores: str | None = None
    patch_clears_others: bool = False
    read_drops: str | None = None
    list_omits: bool = False
    delete_keeps: bool = False
    pagination: str = "offset"  # offset | link | next | none
    page_size: int = 2


@dataclass
class State:
    objects: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    next_id: int = 1
    broken: Breakage = field(default_factory=Breakage)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeRest(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = State()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def seed(self, collection: str, count: int, **fields: Any) -> None:
        with self.state.lock:
            for _ in range(count):
                object_id = self.state.next_id
                self.state.next_id += 1
                self.state.objects.setdefault(collection, {})[object_id] = {
                    "id": object_id,
                    **fields,
                }


class Handler(BaseHTTPRequestHandler):
    server: FakeRest

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def route(self) -> tuple[str, int | None, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        if len(segments) < 2 or segments[0] != "api":
            return "", None, {}
        collection = segments[1]
        object_id = int(segments[2]) if len(segments) > 2 and segments[2].isdigit() else None
        return collection, object_id, parse_qs(parts.query)

    def writer(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self.reply(401, {"error": "log in first"})
        return False

    @property
    def state(self) -> State:
        return self.server.state

    def do_GET(self) -> None:
        collection, object_id, query = self.route()
        broken = self.state.broken
        with self.state.lock:
            table = dict(self.state.objects.get(collection, {}))
        if object_id is not None:
            obj = table.get(object_id)
            if obj is None:
                self.reply(404, {"error": "not found"})
                return
            shown = {k: v for k, v in obj.items() if k != broken.read_drops}
            self.reply(200, shown)
            return
        items = [] if broken.list_omits else [table[k] for k in sorted(table)]
        size = broken.page_size
        if broken.pagination == "none":
            self.reply(200, items)
            return
        if broken.pagination == "offset":
            offset = int(query.get("offset", ["0"])[0])
            limit = int(query.get("limit", [str(size)])[0])
            page = items[offset : offset + limit]
            self.reply(200, {"items": page, "total": len(items), "offset": offset, "limit": limit})
            return
        number = int(query.get("page", ["1"])[0])
        page = items[(number - 1) * size : number * size]
        more = number * size < len(items)
        link = f"{self.server.url}/api/{collection}?page={number + 1}"
        if broken.pagination == "link":
            self.reply(200, page, {"Link": f'<{link}>; rel="next"'} if more else {})
        else:
            self.reply(200, {"results": page, "next": link if more else None})

    def do_POST(self) -> None:
        if self.path == "/api/auth/login":
            creds = self.body() or {}
            if USERS.get(creds.get("username")) == creds.get("password"):
                self.reply(200, {"token": TOKEN})
            else:
                self.reply(401, {"error": "invalid username or password"})
            return
        if not self.writer():
            return
        collection, _, _ = self.route()
        payload = self.body()
        if not isinstance(payload, dict) or "name" not in payload:
            self.reply(400, {"error": "invalid", "fields": {"name": "is required"}})
            return
        with self.state.lock:
            object_id = self.state.next_id
            self.state.next_id += 1
            obj = {"id": object_id, **payload}
            self.state.objects.setdefault(collection, {})[object_id] = obj
        broken = self.state.broken
        shown = {k: v for k, v in obj.items() if k != "id"} if broken.create_omits_id else obj
        self.reply(broken.create_status, shown, {"Location": f"/api/{collection}/{object_id}"})

    def _update(self, partial: bool) -> None:
        if not self.writer():
            return
        collection, object_id, _ = self.route()
        payload = self.body() or {}
        broken = self.state.broken
        with self.state.lock:
            table = self.state.objects.get(collection, {})
            if object_id not in table:
                self.reply(404, {"error": "not found"})
                return
            current = table[object_id]
            if partial:
                if broken.patch_clears_others:
                    current = {"id": object_id, **{k: None for k in current if k != "id"}}
                new = {**current, **payload}
            else:
                kept = (
                    {broken.put_ignores: current.get(broken.put_ignores)}
                    if broken.put_ignores
                    else {}
                )
                new = {"id": object_id, **payload, **kept}
            table[object_id] = new
        self.reply(200, new)

    def do_PUT(self) -> None:
        self._update(partial=False)

    def do_PATCH(self) -> None:
        self._update(partial=True)

    def do_DELETE(self) -> None:
        if not self.writer():
            return
        collection, object_id, _ = self.route()
        with self.state.lock:
            table = self.state.objects.get(collection, {})
            if object_id not in table:
                self.reply(404, {"error": "not found"})
                return
            if not self.state.broken.delete_keeps:
                del table[object_id]
        self.reply(204)


@pytest.fixture
def server() -> Iterator[FakeRest]:
    srv = FakeRest()
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def make_context(base_url: str, name: str = "test_flow") -> FlowContext:
    recorder = RequestRecorder()
    holder: list[FlowContext] = []

    def log(line: str) -> None:
        holder[0].log(line)

    def new_client(**kwargs: Any) -> ApiClient:
        kwargs.setdefault("recorder", recorder)
        kwargs.setdefault("log", log)
        return ApiClient(base_url, **kwargs)

    def no_db() -> Any:
        raise RuntimeError("no database in unit tests")

    ctx = FlowContext(
        name=name,
        base_url=base_url,
        api=ApiClient(base_url, recorder=recorder, log=log),
        _connect_db=no_db,
        _new_client=new_client,
    )
    holder.append(ctx)
    return ctx


@pytest.fixture
def ctx(server: FakeRest) -> Iterator[FlowContext]:
    context = make_context(server.url)
    yield context
    context.api.close()
    context.close()


SITE = {
    "name": "North Lab",
    "contact": "Ada",
    "address": {"street": "1 Science Park", "city": "Cambridge"},
}

site_crud = crud(
    "site_crud",
    "/api/sites",
    create=SITE,
    update={"contact": "Grace", "address": {"street": "2 Science Park", "city": "Cambridge"}},
    partial_update={"name": "South Lab"},
    auth=("alice", USERS["alice"]),
)


def steps(ctx: FlowContext) -> dict[str, tuple[Status, str]]:
    return {s.name: (s.status, s.message) for s in ctx.steps}


def run(flow: Any, ctx: FlowContext) -> BaseException | None:
    try:
        flow(ctx)
    except BaseException as exc:
        return exc
    return None


# -- CRUD flows -----------------------------------------------------------------------


def test_a_correct_api_passes_every_step_in_order(server: FakeRest, ctx: FlowContext) -> None:
    server.seed("sites", 5, name="other")  # the new site lands on the third page of two
    assert run(site_crud, ctx) is None
    assert [s.name for s in ctx.steps] == ["create", "read", "update", "list", "delete"]
    assert all(s.status is Status.PASSED for s in ctx.steps), steps(ctx)
    assert all(s.duration > 0 for s in ctx.steps)
    assert server.state.objects["sites"].keys() == {1, 2, 3, 4, 5}
    recorded = {(r.method, r.path) for r in ctx.api.recorder.records}
    assert ("GET", "/api/sites/{id}") in recorded
    assert ("GET", "/api/sites") in recorded
    assert ("DELETE", "/api/sites/{id}") in recorded


def test_put_ignoring_a_field_fails_only_update_and_names_the_field(
    server: FakeRest, ctx: FlowContext
) -> None:
    server.state.broken.put_ignores = "contact"
    error = run(site_crud, ctx)
    assert isinstance(error, CrudFailed)
    result = steps(ctx)
    assert result["update"][0] is Status.FAILED
    assert "field 'contact': sent 'Grace', got 'Ada'" in result["update"][1]
    assert "after PUT /api/sites/1" in result["update"][1]
    assert {k for k, (status, _) in result.items() if status is Status.PASSED} == {
        "create",
        "read",
        "list",
        "delete",
    }
    assert str(error).startswith("update: after PUT")


def test_read_dropping_a_field_fails_read_and_the_later_steps_still_run(
    server: FakeRest, ctx: FlowContext
) -> None:
    server.state.broken.read_drops = "contact"
    assert isinstance(run(site_crud, ctx), CrudFailed)
    result = steps(ctx)
    assert result["read"] == (
        Status.FAILED,
        "GET /api/sites/1 after create: field 'contact' is missing (sent 'Ada')",
    )
    assert result["list"][0] is Status.PASSED
    assert result["delete"][0] is Status.PASSED
    assert result["update"][0] is Status.FAILED  # it reads back through the same GET


def test_nested_fields_are_compared_by_path() -> None:
    sent = {"address": {"city": "Cambridge", "street": "1 Park"}, "active": True, "n": 1}
    got = {"address": {"city": "Oxford", "street": "1 Park"}, "active": 1, "n": 1.0}
    assert differences(sent, got) == [
        "field 'address.city': sent 'Cambridge', got 'Oxford'",
        "field 'active': sent True, got 1",
    ]
    assert differences(sent, got, ignore={"address.city", "active"}) == []
    assert differences({"a": 1}, [1]) == ["expected a JSON object, got [1]"]


def test_patch_clearing_other_fields_fails_update_naming_them(
    server: FakeRest, ctx: FlowContext
) -> None:
    server.state.broken.patch_clears_others = True
    assert isinstance(run(site_crud, ctx), CrudFailed)
    message = steps(ctx)["update"][1]
    assert (
        "after PATCH /api/sites/1: field 'contact': not patched, was 'Grace', got None" in message
    )
    assert "'name'" not in message  # the patched field itself is right


def test_failed_create_skips_the_rest_with_the_reason(server: FakeRest, ctx: FlowContext) -> None:
    server.state.broken.create_status = 200
    error = run(site_crud, ctx)
    assert isinstance(error, CrudFailed)
    result = steps(ctx)
    assert result["create"][0] is Status.FAILED
    assert "POST" in result["create"][1] and "200" in result["create"][1]
    assert "expected 201" in result["create"][1]
    for name in ("read", "update", "list", "delete"):
        assert result[name] == (Status.SKIPPED, "not run: create failed")


def test_wrong_credentials_fail_create(ctx: FlowContext) -> None:
    flow = crud("bad_login", "/api/sites", create=SITE, auth=("alice", "nope"))
    assert isinstance(run(flow, ctx), CrudFailed)
    assert "401" in steps(ctx)["create"][1]
    assert [s.name for s in ctx.steps] == ["create", "read", "list", "delete"]  # no update declared


def test_delete_that_keeps_the_object_fails_delete(server: FakeRest, ctx: FlowContext) -> None:
    server.state.broken.delete_keeps = True
    assert isinstance(run(site_crud, ctx), CrudFailed)
    status, message = steps(ctx)["delete"]
    assert status is Status.FAILED
    assert (
        message
        == "after DELETE /api/sites/1, GET /api/sites/1 -> 200: still there (expected 404 or 410)"
    )


def test_list_that_misses_the_object_fails_list(server: FakeRest, ctx: FlowContext) -> None:
    server.state.broken.list_omits = True
    assert isinstance(run(site_crud, ctx), CrudFailed)
    assert steps(ctx)["list"] == (
        Status.FAILED,
        "GET /api/sites does not list id=1 (0 items on 1 page)",
    )
    assert steps(ctx)["delete"][0] is Status.PASSED


@pytest.mark.parametrize("style", ["link", "next", "none"])
def test_list_follows_every_pagination_style(
    server: FakeRest, ctx: FlowContext, style: str
) -> None:
    server.state.broken.pagination = style
    server.seed("sites", 7, name="other")
    flow = crud(
        f"paged_{style}",
        "/api/sites",
        create=SITE,
        auth=("alice", USERS["alice"]),
        items_key="results",
    )
    assert run(flow, ctx) is None, steps(ctx)
    pages = [r for r in ctx.api.recorder.records if r.method == "GET" and r.path == "/api/sites"]
    assert len(pages) == (1 if style == "none" else 4)


def test_missing_id_falls_back_to_the_location_header(server: FakeRest, ctx: FlowContext) -> None:
    server.state.broken.create_omits_id = True
    flow = crud("located", "/api/sites", create=SITE, auth=("alice", USERS["alice"]))
    assert run(flow, ctx) is None, steps(ctx)
    assert server.state.objects["sites"] == {}


def test_an_unreachable_app_is_an_error_not_a_failure() -> None:
    closed = FakeRest()
    url = closed.url
    closed.server_close()
    context = make_context(url)
    error = run(crud("gone", "/api/sites", create=SITE), context)
    assert isinstance(error, ApiConnectionError)
    assert steps(context)["create"][0] is Status.ERROR
    assert steps(context)["read"] == (Status.SKIPPED, "not run: create failed")


def test_payload_functions_build_prerequisites(server: FakeRest, ctx: FlowContext) -> None:
    def new_room(ctx: FlowContext) -> dict[str, Any]:
        site = build_site(ctx)
        return {"name": builders.unique("room"), "site_id": site["id"]}

    flow = crud(
        "room_crud",
        "/api/rooms",
        create=new_room,
        update=lambda ctx, room: {"name": room["name"] + "-renamed"},
        auth=lambda ctx: ctx.login("alice", USERS["alice"]),
    )
    assert run(flow, ctx) is None, steps(ctx)
    assert len(server.state.objects["sites"]) == 1
    assert server.state.objects["rooms"] == {}


# -- builders -------------------------------------------------------------------------


def build_site(target: FlowContext | ApiClient, **fields: Any) -> dict[str, Any]:
    body = builders.fields(fields, name=lambda: builders.unique("site"), contact="Ada")
    return builders.create(target, "/api/sites", body)


def build_room(target: FlowContext | ApiClient, **fields: Any) -> dict[str, Any]:
    body = builders.fields(
        fields, name=lambda: builders.unique("room"), site_id=lambda: build_site(target)["id"]
    )
    return builders.create(target, "/api/rooms", body)


def test_builders_compose_and_create_prerequisites_only_when_needed(
    server: FakeRest, ctx: FlowContext
) -> None:
    ctx.login("alice", USERS["alice"])
    room = build_room(ctx)
    assert server.state.objects["sites"][room["site_id"]]["contact"] == "Ada"
    site = build_site(ctx.api, name="Fixed", contact=None)
    assert site["name"] == "Fixed" and site["contact"] is None
    build_room(ctx, site_id=site["id"])
    assert len(server.state.objects["sites"]) == 2  # no site built for the second room


def test_builder_failures_show_the_request(ctx: FlowContext) -> None:
    with pytest.raises(UnexpectedStatus, match="401"):
        build_site(ctx)


def test_unique_values_do_not_collide() -> None:
    names = {builders.unique("site") for _ in range(2000)}
    assert len(names) == 2000
    assert all(n.startswith("site-") for n in names)
    macs = {builders.unique_mac() for _ in range(2000)}
    assert len(macs) == 2000
    assert all(len(m) == 17 and m == m.lower() for m in macs)
    assert int(builders.unique_mac()[:2], 16) & 0b10  # locally administered
    assert len({builders.unique_int() for _ in range(2000)}) == 2000
    assert len(builders.unique_uuid()) == 36
    assert builders.unique_email("bob").endswith("@example.com")


def test_fields_keeps_overrides_and_extra_keys_and_calls_only_needed_defaults() -> None:
    calls: list[str] = []

    def expensive() -> int:
        calls.append("built")
        return 7

    assert builders.fields({"a": 1, "extra": 2}, a=lambda: 0, b=expensive) == {
        "a": 1,
        "b": 7,
        "extra": 2,
    }
    assert calls == ["built"]
    assert builders.fields({"b": None}, b=expensive) == {"b": None}
    assert calls == ["built"]


# -- the flow context ---------------------------------------------------------------


def test_login_and_second_users(server: FakeRest, ctx: FlowContext) -> None:
    assert ctx.login("alice", USERS["alice"]) is ctx.api
    ctx.api.post("/api/sites", json={"name": "a"}, expect=201)
    viewer = ctx.new_client(username="viewer", password=USERS["viewer"])
    anonymous = ctx.new_client()
    assert viewer.name == "viewer" and anonymous.name == "client2"
    anonymous.post("/api/sites", json={"name": "b"}, expect=401)
    assert any(line.startswith("client2: POST /api/sites -> 401") for line in ctx.lines)
    assert all(USERS["alice"] not in line for line in ctx.lines)
    with pytest.raises(TypeError, match="both"):
        ctx.new_client(username="viewer")
    with pytest.raises(UnexpectedStatus, match="401"):
        ctx.new_client(username="alice", password="wrong")
    ctx.close()
    assert ctx._clients == []


def test_step_records_outcomes_and_lets_exceptions_through(ctx: FlowContext) -> None:
    with ctx.step("first"):
        pass
    with pytest.raises(AssertionError), ctx.step("second"):
        raise AssertionError("two\nmore")
    with pytest.raises(KeyError), ctx.step("third"):
        raise KeyError("x")
    assert [(s.name, s.status, s.message) for s in ctx.steps] == [
        ("first", Status.PASSED, ""),
        ("second", Status.FAILED, "two"),
        ("third", Status.ERROR, "KeyError: 'x'"),
    ]


# -- scaffolded flows run as written ----------------------------------------------------


def test_scaffolded_flows_run_as_written(ctx: FlowContext) -> None:
    from nocrud.flows import scaffold

    namespace: dict[str, Any] = {"__name__": "scaffolded"}
    source = scaffold.crud_source("site", "/api/sites", auth=("alice", USERS["alice"]))
    exec(compile(source, "site_crud.py", "exec"), namespace)
    assert run(namespace["site_crud"], ctx) is None, steps(ctx)
    assert [s.status for s in ctx.steps] == [Status.PASSED] * 5

    exec(
        compile(scaffold.flow_source("smoke", health_path="/api/health"), "smoke.py", "exec"),
        namespace,
    )
    namespace["smoke"](ctx)
    assert any("health: 200" in line for line in ctx.lines)


# -- APIs of other shapes: trailing slashes, ids the client chooses, answers without JSON --


@dataclass
class Shape:
    """How one collection of :class:`SlashApp` creates objects; the default assigns ids."""

    key: str = "id"  # the field naming an object
    client_ids: bool = False  # ids come from the payload's ``key`` or the path (upsert)
    answer: str = "json"  # what create answers: json | empty | text
    location: bool = False


class SlashApp(ThreadingHTTPServer):
    """A third-party-shaped app in the style of Django REST framework, no login.

    Every path ends in a slash (``/sensors/``, ``/sensors/<id>/``); without it the
    answer is 404. Lists are pages of two: ``{"count", "next", "previous", "results"}``.
    With ``client_ids`` a collection takes the id from the payload, and ``PUT`` or
    ``POST`` at an unknown object's path creates it (an upsert).
    """

    daemon_threads = True

    def __init__(self, shapes: dict[str, Shape]) -> None:
        super().__init__(("127.0.0.1", 0), SlashHandler)
        self.shapes = shapes
        self.objects: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in shapes}
        self.next_id = 1
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class SlashHandler(Handler):
    server: SlashApp  # type: ignore[assignment]

    def target(self) -> tuple[str, str | None, dict[str, list[str]]] | None:
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        if not parts.path.endswith("/") or segments[0] not in self.server.shapes:
            self.reply(404, {"detail": "Not found."})
            return None
        return segments[0], segments[1] if len(segments) > 1 else None, parse_qs(parts.query)

    def created(self, collection: str, obj: dict[str, Any]) -> None:
        shape, key = self.server.shapes[collection], str(obj[self.server.shapes[collection].key])
        self.server.objects[collection][key] = obj
        headers = {"Location": f"/{collection}/{key}/"} if shape.location else {}
        if shape.answer == "json":
            self.reply(201, obj, headers)
            return
        text = b"" if shape.answer == "empty" else b"created"
        self.send_response(201)
        for name, value in headers.items():
            self.send_header(name, value)
        if text:
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def do_GET(self) -> None:
        found = self.target()
        if found is None:
            return
        collection, key, query = found
        table = self.server.objects[collection]
        if key is not None:
            if key in table:
                self.reply(200, table[key])
            else:
                self.reply(404, {"detail": "Not found."})
            return
        number = int(query.get("page", ["1"])[0])
        items = list(table.values())
        more = number * 2 < len(items)
        self.reply(
            200,
            {
                "count": len(items),
                "next": f"{self.server.url}/{collection}/?page={number + 1}" if more else None,
                "previous": None,
                "results": items[(number - 1) * 2 : number * 2],
            },
        )

    def do_POST(self) -> None:
        found = self.target()
        if found is None:
            return
        collection, key, _ = found
        shape, payload = self.server.shapes[collection], self.body() or {}
        with self.server.lock:
            if key is not None:  # POST at an object's own path: creates when ids are the client's
                if not shape.client_ids or key in self.server.objects[collection]:
                    self.reply(405, {"detail": 'Method "POST" not allowed.'})
                    return
                self.created(collection, {**payload, shape.key: key})
            elif shape.client_ids:
                if payload.get(shape.key) is None:
                    self.reply(400, {shape.key: ["This field is required."]})
                    return
                self.created(collection, payload)
            else:
                self.created(collection, {**payload, shape.key: self.server.next_id})
                self.server.next_id += 1

    def _update(self, partial: bool) -> None:
        found = self.target()
        if found is None or found[1] is None:
            return
        collection, key, _ = found
        shape, payload = self.server.shapes[collection], self.body() or {}
        with self.server.lock:
            table = self.server.objects[collection]
            if key not in table:
                if partial or not shape.client_ids:
                    self.reply(404, {"detail": "Not found."})
                else:
                    self.created(collection, {**payload, shape.key: key})
                return
            table[key] = {
                **(table[key] if partial else {}),
                **payload,
                shape.key: table[key][shape.key],
            }
            self.reply(200, table[key])

    def do_DELETE(self) -> None:
        found = self.target()
        if found is None or found[1] is None:
            return
        collection, key, _ = found
        with self.server.lock:
            if self.server.objects[collection].pop(str(key), None) is None:
                self.reply(404, {"detail": "Not found."})
                return
        self.reply(204)


@pytest.fixture
def slash_app() -> Iterator[SlashApp]:
    app = SlashApp(
        {
            "sensors": Shape(),
            "readings": Shape(client_ids=True, answer="empty"),
            "stations": Shape(key="code", client_ids=True, answer="text"),
            "plain": Shape(answer="empty"),
            "located": Shape(answer="text", location=True),
        }
    )
    thread = threading.Thread(target=app.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield app
    app.shutdown()
    app.server_close()


@pytest.fixture
def slash_ctx(slash_app: SlashApp) -> Iterator[FlowContext]:
    context = make_context(slash_app.url)
    yield context
    context.api.close()
    context.close()


def requests_made(ctx: FlowContext) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in ctx.api.recorder.records]


def all_passed(ctx: FlowContext) -> bool:
    return [s.name for s in ctx.steps] == ["create", "read", "update", "list", "delete"] and all(
        s.status is Status.PASSED for s in ctx.steps
    )


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [("api/sites", "/api/sites"), ("/sites/", "/sites/"), ("sites//", "/sites/"), ("/", "/")],
)
def test_collection_path_keeps_the_trailing_slash(endpoint: str, expected: str) -> None:
    assert collection_path(endpoint) == expected


def test_a_trailing_slash_is_kept_for_the_collection_and_its_objects(
    slash_app: SlashApp, slash_ctx: FlowContext
) -> None:
    slash_app.objects["sensors"] = {str(n): {"id": n, "name": "old"} for n in range(100, 103)}
    flow = crud(
        "sensor_crud",
        "/sensors/",
        create={"name": "roof"},
        update={"name": "garden"},
        partial_update={"name": "shed"},
        items_key="results",
    )
    assert (flow.spec.collection, flow.spec.item_template) == ("/sensors/", "/sensors/{id}/")
    assert run(flow, slash_ctx) is None, steps(slash_ctx)
    assert all_passed(slash_ctx), steps(slash_ctx)
    made = requests_made(slash_ctx)
    assert made[0] == ("POST", "/sensors/")
    assert {("GET", "/sensors/{id}/"), ("PUT", "/sensors/{id}/"), ("GET", "/sensors/")} <= set(made)
    assert flow.__doc__ == "Create, read, update, list and delete at /sensors/."


@pytest.mark.parametrize("method", ["PUT", "post"])
def test_upsert_creates_at_the_object_path_with_the_id_the_flow_chose(
    slash_app: SlashApp, slash_ctx: FlowContext, method: str
) -> None:
    chosen: list[str] = []

    def new_id(ctx: FlowContext) -> str:
        chosen.append(builders.unique_uuid())
        return chosen[-1]

    flow = crud(
        "reading_crud",
        "/readings/",
        id=new_id,
        upsert=method,
        create={"celsius": 21.5},
        update={"celsius": 22.0},
        items_key="results",
    )
    assert run(flow, slash_ctx) is None, steps(slash_ctx)
    assert all_passed(slash_ctx), steps(slash_ctx)
    assert len(chosen) == 1
    assert requests_made(slash_ctx)[0] == (method.upper(), "/readings/{id}/")
    assert any(f"/readings/{chosen[0]}/ -> 201" in line for line in slash_ctx.lines)
    assert slash_app.objects["readings"] == {}  # deleted again


def test_an_id_field_in_the_payload_is_the_id_when_create_answers_text(
    slash_app: SlashApp, slash_ctx: FlowContext
) -> None:
    flow = crud(
        "station_crud",
        "/stations/",
        id_field="code",
        create=lambda ctx: {"code": builders.unique("st"), "name": "Roof"},
        partial_update={"name": "Garden"},
        items_key="results",
    )
    assert run(flow, slash_ctx) is None, steps(slash_ctx)
    assert all_passed(slash_ctx), steps(slash_ctx)


def test_an_id_given_with_id_is_sent_in_the_payload_when_posting_to_the_collection(
    slash_app: SlashApp, slash_ctx: FlowContext
) -> None:
    seen: list[Any] = []

    def rename(ctx: FlowContext, station: Any) -> dict[str, Any]:
        seen.append(dict(station))
        return {"name": station["name"] + " 2"}

    flow = crud(
        "station_crud",
        "/stations/",
        id_field="code",
        id="st-fixed",
        create={"name": "Roof"},
        update=rename,
        items_key="results",
    )
    assert run(flow, slash_ctx) is None, steps(slash_ctx)
    assert all_passed(slash_ctx), steps(slash_ctx)
    # Create answered text: update functions get the payload with the id.
    assert seen == [{"name": "Roof", "code": "st-fixed"}]


def test_location_gives_the_id_when_create_answers_text(slash_ctx: FlowContext) -> None:
    flow = crud("located_crud", "/located/", create={"name": "x"}, items_key="results")
    assert run(flow, slash_ctx) is None, steps(slash_ctx)
    assert [s.status for s in slash_ctx.steps] == [Status.PASSED] * 4


def test_create_without_a_way_to_know_the_id_fails_naming_the_options(
    slash_ctx: FlowContext,
) -> None:
    flow = crud("plain_crud", "/plain/", create={"name": "x"}, items_key="results")
    assert isinstance(run(flow, slash_ctx), CrudFailed)
    status, message = steps(slash_ctx)["create"]
    assert status is Status.FAILED
    assert message.startswith(
        "POST /plain/ -> 201 gave no id: the answer is empty, no Location header, and the flow "
        "chose none."
    )
    assert "id_field=" in message and "id=lambda ctx: unique_uuid()" in message
    assert "upsert='PUT'" in message
    assert steps(slash_ctx)["read"] == (Status.SKIPPED, "not run: create failed")


def test_create_answering_text_without_an_id_says_what_it_answered(
    slash_app: SlashApp, slash_ctx: FlowContext
) -> None:
    slash_app.shapes["plain"] = Shape(answer="text")
    assert isinstance(run(crud("t", "/plain/", create={"name": "x"}), slash_ctx), CrudFailed)
    message = steps(slash_ctx)["create"][1]
    assert "gave no id: the answer is not JSON (text/plain: 'created')" in message


def test_upsert_without_an_id_fails_before_sending(slash_ctx: FlowContext) -> None:
    flow = crud("r", "/readings/", upsert="PUT", create=lambda ctx: {"celsius": 1.0})
    assert isinstance(run(flow, slash_ctx), CrudFailed)
    assert steps(slash_ctx)["create"] == (
        Status.FAILED,
        "upsert='PUT' creates at /readings/{id}/, but the flow chose no id: pass "
        "id=lambda ctx: unique_uuid() (or a value), or put 'id' in the create payload",
    )
    assert requests_made(slash_ctx) == []


def test_the_app_ignoring_the_chosen_id_fails_create(slash_ctx: FlowContext) -> None:
    flow = crud("s", "/sensors/", id="mine", create={"name": "x"})
    assert isinstance(run(flow, slash_ctx), CrudFailed)
    assert steps(slash_ctx)["create"] == (
        Status.FAILED,
        "POST /sensors/ -> 201: the flow chose id='mine', the answer says 1",
    )


def test_upsert_declarations_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match=r"upsert='PATCH'.*'PUT' or 'POST'"):
        crud("a", "/x/", upsert="PATCH", id="1", create={})
    with pytest.raises(ValueError, match=r"pass id=lambda ctx: unique_uuid\(\).*or put 'id'"):
        crud("b", "/x/", upsert="PUT", create={"name": "n"})
    assert crud("c", "/x/", upsert="put", create={"id": "n1"}).spec.upsert == "PUT"


def test_create_status_takes_several_statuses(slash_ctx: FlowContext) -> None:
    flow = crud(
        "reading_crud",
        "/readings/",
        id="r-1",
        upsert="PUT",
        create={"celsius": 1.0},
        create_status=(200, 201),
        items_key="results",
    )
    assert flow.spec.create_status == (200, 201)
    assert run(flow, slash_ctx) is None, steps(slash_ctx)


def test_step_labels_are_initials_unless_two_steps_share_one() -> None:
    five = tuple(
        StepResult(n, Status.PASSED) for n in ("create", "read", "update", "list", "delete")
    )
    assert format_steps(five) == "C✔ R✔ U✔ L✔ D✔"
    colliding = (StepResult("database", Status.PASSED), StepResult("delete", Status.FAILED))
    assert format_steps(colliding) == "database✔ delete✘"
    assert format_steps(colliding, ascii_only=True) == "database+ deletex"
    logout = tuple(StepResult(n, Status.PASSED) for n in ("login", "out", "refused"))
    assert format_steps(logout) == "L✔ O✔ R✔"


def documented_shapes_block() -> str:
    """The CRUD section's example for apps of other shapes (a plain ```python block)."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "flows.md").read_text()
    section = text.split("## CRUD flows", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"^```python\n(# flows/weather_crud\.py\n.*?)^```", section, re.M | re.S)
    return str(block)


def test_the_documented_example_for_other_shapes_runs(slash_app: SlashApp) -> None:
    namespace: dict[str, Any] = {"__name__": "weather_crud"}
    exec(compile(documented_shapes_block(), "flows/weather_crud.py", "exec"), namespace)
    flows = [v for v in namespace.values() if isinstance(v, CrudFlow)]
    assert sorted(f.spec.name for f in flows) == ["reading_crud", "sensor_crud", "station_crud"]
    for flow in flows:
        context = make_context(slash_app.url, flow.spec.name)
        try:
            assert run(flow, context) is None, steps(context)
            assert all(s.status is Status.PASSED for s in context.steps), steps(context)
        finally:
            context.api.close()
            context.close()


def test_a_scaffolded_upsert_flow_runs_as_written(slash_ctx: FlowContext) -> None:
    from nocrud.flows import scaffold

    document = {
        "paths": {
            "/readings/": {"get": {}},
            "/readings/{reading_id}/": {
                "get": {},
                "put": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "properties": {"note": {"type": "string", "example": "ok"}}
                                }
                            }
                        }
                    }
                },
                "delete": {},
            },
        }
    }
    source = scaffold.crud_source("reading", "/readings/", document=document)
    namespace: dict[str, Any] = {"__name__": "scaffolded"}
    exec(compile(source.replace("tags=", 'items_key="results", tags='), "r.py", "exec"), namespace)
    assert run(namespace["reading_crud"], slash_ctx) is None, steps(slash_ctx)
    assert all_passed(slash_ctx), steps(slash_ctx)


def test_a_page_of_results_needs_no_items_key_option(
    slash_app: SlashApp, slash_ctx: FlowContext
) -> None:
    # What `nocrud new crud sensor --endpoint /sensors/` writes: no items_key (issue 13).
    slash_app.objects["sensors"] = {str(n): {"id": n, "name": "old"} for n in range(100, 103)}
    flow = crud(
        "sensor_crud", "/sensors/", create={"name": "roof"}, update=lambda ctx, obj: {"name": "x"}
    )
    assert run(flow, slash_ctx) is None, steps(slash_ctx)
    assert all_passed(slash_ctx), steps(slash_ctx)
