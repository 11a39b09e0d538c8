"""Tests of nocrud.http.client and nocrud.http.auth against a real HTTP server on 127.0.0.1.

The server is a small ``ThreadingHTTPServer`` that imitates the apps flows talk to:
an echo endpoint, arbitrary statuses, JSON and text bodies, a bearer login, Basic and
API-key protected endpoints, and a Django-like CSRF cookie login. No part of
``requests`` is mocked.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests.auth

from nocrud.http.auth import Redactor
from nocrud.http.client import (
    ANY,
    ApiClient,
    ApiConnectionError,
    ApiKey,
    ApiTimeoutError,
    BasicAuth,
    BearerToken,
    LoginError,
    NotJSONError,
    RequestRecorder,
    SessionLogin,
    UnexpectedStatus,
    bearer_login,
)
from nocrud.masking import MASK
from nocrud.results import RequestRecord

USER = "alice"
PASSWORD = "s3cret-pass-word"
TOKEN = "tok-0123456789abcdef"
API_KEY = "key-fedcba9876543210"


class AppServer(ThreadingHTTPServer):
    # Join handler threads on server_close() so nothing outlives the fixture.
    daemon_threads = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.release = threading.Event()  # lets /slow return at teardown
        self.sessions: set[str] = set()
        self.notes = 0
        self.lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out on purpose (the /slow test) is gone when we answer.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    server: AppServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    # -- plumbing --------------------------------------------------------------

    def send(
        self,
        status: int,
        body: Any = None,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
    ) -> None:
        if body is None:
            payload = b""
        elif isinstance(body, str):
            payload = body.encode()
        else:
            payload = json.dumps(body).encode()
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        for name, value in (cookies or {}).items():
            self.send_header("Set-Cookie", f"{name}={value}; Path=/")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def cookies(self) -> dict[str, str]:
        return {k: m.value for k, m in SimpleCookie(self.headers.get("Cookie", "")).items()}

    # -- routes ----------------------------------------------------------------

    def route(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.removeprefix("/v1")
        query = parse_qs(parts.query)
        body = self.body()
        if path == "/echo":
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            self.send(
                200,
                {
                    "method": self.command,
                    "path": path,
                    "query": query,
                    "headers": dict(self.headers),
                    "body": body.decode(),
                    "json": parsed,
                },
            )
        elif m := re.fullmatch(r"/status/(\d+)", path):
            status = int(m[1])
            kind = query.get("body", ["json"])[0]
            if kind == "text":
                self.send(status, "plain text, not JSON", content_type="text/plain")
            elif kind == "long":
                self.send(status, "x" * 5000, content_type="text/plain")
            elif kind == "empty":
                self.send(status)
            elif kind == "leak":
                self.send(status, f"<p>debug page mentions {TOKEN}</p>", content_type="text/html")
            else:
                self.send(status, {"status": status, "detail": "as requested", "token": TOKEN})
        elif path in ("/api/auth/login", "/api/auth/login-nested"):
            creds = json.loads(body or b"{}")
            if creds != {"username": USER, "password": PASSWORD}:
                self.send(401, {"error": "bad credentials"})
            elif path.endswith("nested"):
                self.send(200, {"data": {"access_token": TOKEN}})
            else:
                self.send(200, {"token": TOKEN, "user": USER})
        elif path == "/api/me":
            if self.headers.get("Authorization") in (f"Bearer {TOKEN}", f"Token {TOKEN}"):
                self.send(200, {"user": USER})
            else:
                self.send(401, {"error": "no token"})
        elif path == "/basic":
            auth = requests.auth._basic_auth_str(USER, PASSWORD)
            self.send(200 if self.headers.get("Authorization") == auth else 401, {})
        elif path == "/apikey":
            sent = {self.headers.get("X-API-Key"), self.headers.get("X-Key")}
            sent.update(query.get("key", []))
            self.send(200 if API_KEY in sent else 403, {})
        elif path == "/accounts/login/":
            self.django_login(body)
        elif path == "/notes":
            self.notes_endpoint()
        elif path in ("/redirect/away", "/redirect/here", "/token", "/openapi.json"):
            self.logins(path, body)
        elif path == "/api/users/login":
            self.realworld_login(body)
        elif path == "/slow":
            self.server.release.wait(2.0)
            self.send(200, {"slow": True})
        else:
            self.send(404, {"detail": f"no route {path}"})

    def django_login(self, body: bytes) -> None:
        if self.command == "GET":
            self.send(
                200,
                "<form>login</form>",
                content_type="text/html",
                cookies={"csrftoken": secrets.token_hex(8)},
            )
            return
        csrf = self.cookies().get("csrftoken")
        if not csrf or self.headers.get("X-CSRFToken") != csrf or not self.headers["Referer"]:
            self.send(403, {"detail": "CSRF verification failed"})
            return
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form != {"username": USER, "password": PASSWORD}:
            self.send(200, "<form>wrong password</form>", content_type="text/html")
            return
        session = secrets.token_hex(8)
        with self.server.lock:
            self.server.sessions.add(session)
        # Django rotates the CSRF token on login and redirects to LOGIN_REDIRECT_URL,
        # which does not exist here.
        self.send(
            302,
            headers={"Location": "/accounts/profile/"},
            cookies={"sessionid": session, "csrftoken": secrets.token_hex(8)},
        )

    def logins(self, path: str, body: bytes) -> None:
        """Redirects, an OAuth2 password-flow token URL and the document declaring it."""
        if path == "/redirect/away":
            self.send(302, headers={"Location": "https://login.example.invalid/sso?next=/x"})
        elif path == "/redirect/here":
            self.send(302, headers={"Location": "/echo"})
        elif path == "/openapi.json":
            flows = {"password": {"tokenUrl": "/token", "scopes": {}}}
            schemes = {"OAuth2PasswordBearer": {"type": "oauth2", "flows": flows}}
            self.send(200, {"openapi": "3.1.0", "components": {"securitySchemes": schemes}})
        elif self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
            self.send(422, {"detail": "form expected"})
        elif {k: v[0] for k, v in parse_qs(body.decode()).items()} != {
            "grant_type": "password",
            "username": USER,
            "password": PASSWORD,
        }:
            self.send(401, {"detail": "Incorrect username or password"})
        else:
            self.send(200, {"access_token": TOKEN, "token_type": "bearer"})

    def realworld_login(self, body: bytes) -> None:
        if json.loads(body or b"{}") != {"user": {"email": USER, "password": PASSWORD}}:
            self.send(422, {"errors": {"body": ["bad credentials"]}})
        else:
            self.send(200, {"user": {"email": USER, "token": TOKEN}})

    def notes_endpoint(self) -> None:
        cookies = self.cookies()
        if cookies.get("sessionid") not in self.server.sessions:
            self.send(403, {"detail": "not logged in"})
        elif self.command == "GET":
            self.send(200, [])
        elif self.headers.get("X-CSRFToken") != cookies.get("csrftoken"):
            self.send(403, {"detail": "CSRF verification failed"})
        else:
            with self.server.lock:
                self.server.notes += 1
                note = self.server.notes
            self.send(201, {"id": note})

    # http.server dispatches each method to do_<METHOD>.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = route  # noqa: N815


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = AppServer()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def make_client(server: str) -> Iterator[Callable[..., ApiClient]]:
    clients: list[ApiClient] = []

    def make(**kwargs: Any) -> ApiClient:
        kwargs.setdefault("timeout", 2.0)
        client = ApiClient(kwargs.pop("base_url", server), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def api(make_client: Callable[..., ApiClient]) -> ApiClient:
    return make_client()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- verbs and bodies ----------------------------------------------------------


@pytest.mark.parametrize("verb", ["get", "post", "put", "patch", "delete", "options"])
def test_each_verb_sends_its_method(api: ApiClient, verb: str) -> None:
    response = getattr(api, verb)("/echo")
    assert response.status == 200
    assert response.data["method"] == verb.upper()


def test_head_has_status_and_headers_but_no_body(api: ApiClient) -> None:
    response = api.head("/echo")
    assert response.status == 200
    assert response.text == ""
    assert response.headers["content-type"] == "application/json"


def test_json_round_trip_with_dates_and_uuids(api: ApiClient) -> None:
    ident = uuid.uuid4()
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    body = {"name": "Zürich", "tags": ["a", "b"], "nested": {"n": 1.5, "ok": None}}
    response = api.post("/echo", json={**body, "id": ident, "at": when})
    sent = response.data
    assert sent["json"] == {**body, "id": str(ident), "at": "2024-05-01T12:30:00+00:00"}
    assert sent["headers"]["Content-Type"] == "application/json"
    assert sent["headers"]["Accept"] == "application/json"
    assert response.data is sent  # parsed once
    assert response.elapsed_s > 0


def test_json_body_with_unserialisable_value_says_what_to_do(api: ApiClient) -> None:
    with pytest.raises(TypeError, match="has no JSON form"):
        api.post("/echo", json={"amount": object()})


def test_query_from_path_and_params_are_both_sent(api: ApiClient) -> None:
    data = api.get("/echo?a=1", params={"b": "2"}).data
    assert data["query"] == {"a": ["1"], "b": ["2"]}


def test_form_data_and_per_call_headers(api: ApiClient) -> None:
    data = api.post("/echo", data={"x": "1"}, headers={"X-Trace": "t1"}).data
    assert data["body"] == "x=1"
    assert data["headers"]["X-Trace"] == "t1"


def test_json_of_a_text_body_names_the_url(api: ApiClient, server: str) -> None:
    response = api.get("/status/200?body=text")
    assert response.text == "plain text, not JSON"
    with pytest.raises(NotJSONError, match=re.escape(f"{server}/status/200")) as info:
        _ = response.data
    assert isinstance(info.value, AssertionError)
    assert "text/plain" in str(info.value)


def test_urls_relative_to_base_url_keep_its_prefix() -> None:
    with ApiClient("http://app.test:8000/v1/") as client:
        assert client.url("/sites") == "http://app.test:8000/v1/sites"
        assert client.url("sites/3") == "http://app.test:8000/v1/sites/3"
        assert client.url("http://APP.test:8000/other") == "http://APP.test:8000/other"
        with pytest.raises(ValueError, match="not on this client's app"):
            client.url("http://elsewhere.test/sites")
    with pytest.raises(ValueError, match="http://host:port"):
        ApiClient("localhost:8000")


def test_absolute_url_on_the_same_origin_is_accepted(api: ApiClient, server: str) -> None:
    assert api.get(f"{server}/echo").status == 200


# -- expectations --------------------------------------------------------------


def test_default_expectation_is_2xx(api: ApiClient) -> None:
    assert api.get("/status/204?body=empty").status == 204
    with pytest.raises(UnexpectedStatus, match=r"expected 2xx"):
        api.get("/status/302?body=empty")
    with pytest.raises(UnexpectedStatus):
        api.get("/status/404")


@pytest.mark.parametrize(
    ("expect", "status"),
    [(404, 404), ([200, 409], 409), (range(400, 500), 422), ("4xx", 403), ("5XX", 503)],
)
def test_expect_accepts_ints_collections_and_classes(
    api: ApiClient, expect: Any, status: int
) -> None:
    assert api.get(f"/status/{status}", expect=expect).status == status


def test_expect_mismatch_lists_what_was_expected(api: ApiClient) -> None:
    with pytest.raises(UnexpectedStatus, match=r"expected one of 4xx, 200, 201") as info:
        api.get("/status/500", expect=["4xx", 200, 201])
    assert info.value.expected == "one of 4xx, 200, 201"
    assert info.value.response.status == 500


def test_expect_any_then_check_afterwards(api: ApiClient) -> None:
    response = api.get("/status/404", expect=ANY)
    assert response.expect(200, 404) is response
    assert response.expect("2xx", "4xx").status == 404
    with pytest.raises(UnexpectedStatus, match="expected 200"):
        response.expect(200)


@pytest.mark.parametrize("bad", [True, 99, 600, "2xy", "404", []])
def test_invalid_expectations_are_rejected(api: ApiClient, bad: Any) -> None:
    with pytest.raises(ValueError, match="expect"):
        api.get("/echo", expect=bad)


def test_expect_status_block_applies_to_calls_inside(api: ApiClient) -> None:
    with api.expect_status(404):
        assert api.get("/status/404").status == 404
        assert api.get("/echo", expect=200).status == 200  # an explicit expect wins
    with pytest.raises(UnexpectedStatus), api.expect_status(403):
        api.get("/status/404")
    assert api.get("/echo").status == 200  # back to 2xx after the block


def test_expect_status_block_without_a_request_fails(
    make_client: Callable[..., ApiClient],
) -> None:
    alice, bob = make_client(name="alice"), make_client(name="bob")
    expected = pytest.raises(AssertionError, match="no request through client 'alice'")
    with expected, alice.expect_status(403):
        bob.get("/echo")  # the wrong client: bob's call still expects 2xx


def test_expect_status_is_per_thread(api: ApiClient) -> None:
    seen: list[int] = []
    with api.expect_status(404):
        worker = threading.Thread(target=lambda: seen.append(api.get("/echo").status))
        worker.start()
        worker.join()
        api.get("/status/404")
    assert seen == [200]


# -- error messages ------------------------------------------------------------


def test_unexpected_status_message_shows_request_and_pretty_response(
    api: ApiClient, server: str
) -> None:
    with pytest.raises(UnexpectedStatus) as info:
        api.post(
            "/status/400",
            params={"page": "2"},
            json={"name": "site", "password": PASSWORD, "nested": {"api_key": "k-123456"}},
            expect=201,
        )
    error = info.value
    message = str(error)
    assert isinstance(error, AssertionError)
    first = message.splitlines()[0]
    assert first == f"POST {server}/status/400?page=2 -> 400 Bad Request (expected 201)"
    assert "client: 'api', auth None" in message
    assert '  {\n    "name": "site",\n    "password": "********",' in message
    assert '"api_key": "********"' in message
    assert "response body (application/json):" in message
    assert '    "status": 400,' in message
    assert PASSWORD not in message
    assert "k-123456" not in message
    assert TOKEN not in message  # the response's "token" field is masked too


def test_unexpected_status_truncates_long_text_and_shows_empty(api: ApiClient) -> None:
    with pytest.raises(UnexpectedStatus) as info:
        api.get("/status/500?body=long")
    message = str(info.value)
    assert "x" * 2000 in message
    assert "x" * 2001 not in message
    assert "(3000 more characters)" in message
    with pytest.raises(UnexpectedStatus, match=r"response body: \(empty\)"):
        api.get("/status/500?body=empty")


def test_connection_refused_is_an_environment_error(
    make_client: Callable[..., ApiClient],
) -> None:
    lines: list[str] = []
    port = unused_port()
    client = make_client(base_url=f"http://127.0.0.1:{port}", log=lines.append)
    with pytest.raises(ApiConnectionError, match=rf"DELETE http://127.0.0.1:{port}/sites/1 "):
        client.delete("/sites/1")
    assert not issubclass(ApiConnectionError, AssertionError)
    assert lines == ["DELETE /sites/1 -> could not reach the app"]
    assert client.recorder.records == ()


def test_timeout_is_an_api_timeout(make_client: Callable[..., ApiClient]) -> None:
    client = make_client(timeout=0.2)
    started = time.perf_counter()
    with pytest.raises(ApiTimeoutError, match="did not answer in time") as info:
        client.get("/slow")
    assert isinstance(info.value, ApiConnectionError)
    assert isinstance(info.value.cause, requests.Timeout)
    assert time.perf_counter() - started < 1.5


# -- auth ----------------------------------------------------------------------


def test_bearer_token(make_client: Callable[..., ApiClient]) -> None:
    client = make_client(auth=BearerToken(TOKEN))
    assert client.get("/api/me").data == {"user": USER}
    client.auth = None
    assert client.get("/api/me", expect=401).status == 401


def test_bearer_login_sets_the_token(api: ApiClient) -> None:
    api.get("/api/me", expect=401)
    token = bearer_login(api, username=USER, password=PASSWORD)
    assert token.token == TOKEN
    assert api.auth is token
    assert api.get("/api/me").data == {"user": USER}


def test_bearer_login_with_nested_token_field(api: ApiClient) -> None:
    bearer_login(
        api,
        "/api/auth/login-nested",
        username=USER,
        password=PASSWORD,
        token_field="data.access_token",
    )
    assert api.get("/api/me").status == 200


def test_bearer_login_failures(api: ApiClient) -> None:
    with pytest.raises(UnexpectedStatus, match="401") as info:
        bearer_login(api, username=USER, password="wrong-password")
    assert "wrong-password" not in str(info.value)
    assert f'"password": "{MASK}"' in str(info.value)
    missing = r"no token at 'jwt' \(top-level keys: \['token', 'user'\]"
    with pytest.raises(LoginError, match=missing):
        bearer_login(api, username=USER, password=PASSWORD, token_field="jwt")


def test_basic_auth(make_client: Callable[..., ApiClient]) -> None:
    assert make_client(auth=BasicAuth(USER, PASSWORD)).get("/basic").status == 200
    assert make_client(auth=BasicAuth(USER, "nope")).get("/basic", expect=401).status == 401


def test_any_requests_authbase_works(make_client: Callable[..., ApiClient]) -> None:
    client = make_client(auth=requests.auth.HTTPBasicAuth(USER, PASSWORD))
    assert client.get("/basic").status == 200
    assert PASSWORD not in repr(client)


@pytest.mark.parametrize(
    "auth",
    [ApiKey(API_KEY), ApiKey(API_KEY, header="X-Key"), ApiKey(API_KEY, param="key")],
    ids=["default-header", "custom-header", "query-param"],
)
def test_api_key(make_client: Callable[..., ApiClient], auth: ApiKey) -> None:
    assert make_client(auth=auth).get("/apikey").status == 200
    assert make_client().get("/apikey", expect=403).status == 403


def test_session_login_with_csrf(make_client: Callable[..., ApiClient]) -> None:
    login = SessionLogin("/accounts/login/", USER, PASSWORD)
    client = make_client(auth=login)
    assert not login.logged_in
    assert client.post("/notes").status == 201  # logs in first, then sends the CSRF header
    assert login.logged_in
    assert client.get("/notes").data == []
    assert client.post("/notes", json={"text": "again"}).status == 201
    logins = [r.path for r in client.recorder.records if r.path == "/accounts/login/"]
    assert logins == ["/accounts/login/", "/accounts/login/"]  # GET then POST, once
    client.auth = None  # switching away logs out
    assert client.get("/notes", expect=403).status == 403


def test_session_login_without_auth_is_refused(api: ApiClient) -> None:
    api.get("/accounts/login/")
    api.post("/notes", expect=403)


def test_session_login_with_wrong_password(make_client: Callable[..., ApiClient]) -> None:
    client = make_client(auth=SessionLogin("/accounts/login/", USER, "wrong-password"))
    with pytest.raises(LoginError, match=r"-> 200 set no 'sessionid' cookie: wrong") as info:
        client.get("/notes")
    assert isinstance(info.value, AssertionError)


def test_session_login_without_csrf_cookie(make_client: Callable[..., ApiClient]) -> None:
    client = make_client(auth=SessionLogin("/echo", USER, PASSWORD))
    with pytest.raises(LoginError, match="set no 'csrftoken' cookie"):
        client.get("/notes")


def test_session_login_belongs_to_one_client(make_client: Callable[..., ApiClient]) -> None:
    login = SessionLogin("/accounts/login/", USER, PASSWORD)
    make_client(auth=login)
    with pytest.raises(ValueError, match="one SessionLogin per client"):
        make_client(auth=login)


# -- secrets -------------------------------------------------------------------


def test_reprs_never_show_secrets(make_client: Callable[..., ApiClient]) -> None:
    helpers = [
        BearerToken(TOKEN),
        BasicAuth(USER, PASSWORD),
        ApiKey(API_KEY),
        ApiKey(API_KEY, param="key"),
        SessionLogin("/accounts/login/", USER, PASSWORD),
    ]
    for helper in helpers:
        shown = repr(helper) + repr(make_client(auth=helper))
        assert MASK in shown
        for secret in (TOKEN, PASSWORD, API_KEY):
            assert secret not in shown
    assert repr(BearerToken("abc")) == f"BearerToken({MASK})"


def test_error_message_masks_auth_headers_and_cookies(
    make_client: Callable[..., ApiClient],
) -> None:
    client = make_client(
        auth=SessionLogin("/accounts/login/", USER, PASSWORD),
        headers={"X-API-Key": API_KEY, "X-Trace": "visible"},
    )
    with pytest.raises(UnexpectedStatus) as info:
        client.post("/status/409", json={"token": TOKEN})
    message = str(info.value)
    assert f"Cookie: csrftoken={MASK}; sessionid={MASK}" in message
    assert f"X-CSRFToken: {MASK}" in message
    assert f"X-API-Key: {MASK}" in message
    assert "X-Trace: visible" in message
    assert "User-Agent" not in message
    assert TOKEN not in message
    assert API_KEY not in message


def test_error_message_masks_bearer_and_known_literals(
    make_client: Callable[..., ApiClient],
) -> None:
    client = make_client(auth=BearerToken(TOKEN))
    with pytest.raises(UnexpectedStatus) as info:
        client.get("/status/500?body=leak")
    message = str(info.value)
    assert f"Authorization: {MASK}" in message
    assert f"debug page mentions {MASK}" in message
    assert TOKEN not in message


def test_api_key_param_is_masked_in_logs_and_errors(
    make_client: Callable[..., ApiClient],
) -> None:
    lines: list[str] = []
    client = make_client(auth=ApiKey(API_KEY, param="key"), log=lines.append)
    with pytest.raises(UnexpectedStatus) as info:
        client.get("/status/404", params={"token": "tok-in-the-url"})
    assert lines[0].startswith(f"GET /status/404?token={MASK}&key={MASK} -> 404 (")
    for text in (str(info.value), lines[0]):
        assert API_KEY not in text
        assert "tok-in-the-url" not in text


def test_redactor_bodies() -> None:
    redactor = Redactor(literals=(PASSWORD, "abc"))
    form = redactor.body(b"user=a&password=p1&next=%2F", "application/x-www-form-urlencoded")
    assert form == f"user=a&password={MASK}&next=%2F"
    assert redactor.body(b"\xff\xfe", "image/png") == "<2 bytes of image/png>"
    assert redactor.body('[{"Secret": 1, "ok": [{"apiKey": 2}]}]') == (
        f'[\n  {{\n    "Secret": "{MASK}",\n    "ok": [\n      {{\n'
        f'        "apiKey": "{MASK}"\n      }}\n    ]\n  }}\n]'
    )
    assert redactor.text(f"pw {PASSWORD}, abc stays (too short to scrub)") == (
        f"pw {MASK}, abc stays (too short to scrub)"
    )
    # The user is kept, as everywhere (nocrud.masking); which names are secret is
    # tested once, for every output path, in tests/unit/test_masking.py.
    assert redactor.url(f"http://u:{PASSWORD}@h/x?a=1&client_secret=s") == (
        f"http://u:{MASK}@h/x?a=1&client_secret={MASK}"
    )


# -- log and recorder ----------------------------------------------------------


def test_log_hook_gets_one_line_per_request(make_client: Callable[..., ApiClient]) -> None:
    lines: list[str] = []
    client = make_client(log=lines.append)
    client.post("/echo", json={})
    client.get("/status/404", expect=404)
    assert len(lines) == 2
    assert re.fullmatch(r"POST /echo -> 200 \(\d+\.\d ms\)", lines[0])
    assert re.fullmatch(r"GET /status/404 -> 404 \(\d+\.\d ms\)", lines[1])
    make_client(name="bob", log=lines.append).get("/echo")
    assert lines[2].startswith("bob: GET /echo -> 200 (")


def test_recorder_records_paths_without_query(
    make_client: Callable[..., ApiClient], server: str
) -> None:
    recorder = RequestRecorder()
    client = make_client(base_url=f"{server}/v1", recorder=recorder)
    client.get("/echo?page=2", params={"q": "x"})
    client.post("/status/201", json={}, endpoint="/status/{code}")
    with pytest.raises(UnexpectedStatus):
        client.put("/status/409")
    records = recorder.records
    assert [(r.method, r.path, r.status) for r in records] == [
        ("GET", "/echo", 200),
        ("POST", "/status/{code}", 201),
        ("PUT", "/status/409", 409),
    ]
    assert all(isinstance(r, RequestRecord) and 0 < r.duration < 2 for r in records)
    assert len(recorder) == 3
    recorder.clear()
    assert recorder.records == ()


def test_clients_share_a_recorder_across_threads(
    make_client: Callable[..., ApiClient],
) -> None:
    recorder = RequestRecorder()
    clients = [make_client(recorder=recorder) for _ in range(4)]

    def work(client: ApiClient) -> None:
        for i in range(10):
            client.get(f"/echo?i={i}")

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(recorder.records) == 40
    assert {r.path for r in recorder.records} == {"/echo"}


def test_recorder_is_thread_safe_under_contention() -> None:
    recorder = RequestRecorder()
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(2000):
            recorder.record(RequestRecord("GET", f"/t{n}", 200, i * 1e-6))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = recorder.records
    assert len(records) == 16000
    for n in range(8):
        mine = [r.duration for r in records if r.path == f"/t{n}"]
        assert mine == sorted(mine)  # each thread's records kept in order
        assert len(mine) == 2000


def test_close_is_idempotent_and_context_manager_closes(server: str) -> None:
    with ApiClient(server) as client:
        assert client.get("/echo").status == 200
    client.close()


def test_the_app_is_reached_directly_even_when_a_proxy_is_set(
    make_client: Callable[..., ApiClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI job's HTTP_PROXY (and no NO_PROXY) must not take the flows' requests away."""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # the discard port: nothing answers
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert make_client().get("/echo").status == 200
