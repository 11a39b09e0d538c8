"""CRUD flows, builders and the flow context against a small REST server on 127.0.0.1.

The server (``FakeRest``) keeps objects in memory under ``/api/<collection>``, pages
lists (offset/total, a Link header or a ``next`` URL), wants a bearer token from
``POST /api/auth/login`` for writes, and can be broken on purpose one way at a time
(PUT ignores a field, reads drop one, delete keeps the object...) to prove each CRUD
step fails alone, naming what differed. Nothing in ``requests`` is mocked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from nocrud.flows import FlowContext, builders
from nocrud.flows.crud import CrudFailed, crud, differences
from nocrud.http.client import ApiClient, ApiConnectionError, RequestRecorder, UnexpectedStatus
from nocrud.results import Status

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
