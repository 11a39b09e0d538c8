"""App readiness rules against a real HTTP server on 127.0.0.1, the container faked at its seam."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from nocrud.environment import MisconfigurationError, ProvisionError
from nocrud.environment.readiness import WRONG_PATH_AFTER, wait_for_app


class RunningContainer:
    """The container seam: always running, logs on request."""

    what = "app"

    def death(self) -> str | None:
        return None

    def logs(self, tail: int) -> str:
        return "app: listening on 0.0.0.0:8000"


def _server(status: int) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = b"<h1>Not Found</h1>"
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def answers_404() -> Iterator[str]:
    yield from _server(404)


@pytest.fixture
def answers_500() -> Iterator[str]:
    yield from _server(500)


def _wait(url: str, ready_when: str = "healthy", timeout: float = 30) -> None:
    wait_for_app(
        url,
        "/healthz",
        RunningContainer(),  # type: ignore[arg-type]
        timeout,
        check_interrupted=lambda: None,
        ready_when=ready_when,
    )


def test_a_health_path_that_keeps_answering_404_is_a_configuration_error_within_seconds(
    answers_404: str,
) -> None:
    started = time.monotonic()
    with pytest.raises(MisconfigurationError) as caught:
        _wait(answers_404, timeout=60)
    assert time.monotonic() - started < 60  # not the whole app_ready timeout
    text = str(caught.value)
    assert text.startswith("app.health_path: GET /healthz answered 404 Not Found")
    assert "The app answered: HTTP 404 (text/html): <h1>Not Found</h1>" in text
    assert "app.ready_when: answers" in text
    assert WRONG_PATH_AFTER <= 5


def test_an_app_without_a_health_endpoint_is_ready_by_answers_or_listening(
    answers_404: str,
) -> None:
    _wait(answers_404, "answers")
    _wait(answers_404, "listening")


def test_a_server_error_is_not_ready_unless_any_answer_will_do(answers_500: str) -> None:
    with pytest.raises(ProvisionError) as caught:
        _wait(answers_500, "answers", timeout=0.3)
    assert not isinstance(caught.value, MisconfigurationError)
    assert "GET /healthz gave HTTP 500" in str(caught.value)
    _wait(answers_500, "listening")


def test_the_app_is_polled_directly_even_when_a_proxy_is_set(
    answers_404: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI job's HTTP_PROXY (and no NO_PROXY) must not swallow the polls of 127.0.0.1."""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # the discard port: nothing answers
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    _wait(answers_404, "answers", timeout=5)


def _app_with_document(paths: dict[str, int], document: dict[str, Any] | None) -> Iterator[str]:
    """An app answering ``paths`` (status each), serving ``document`` at /openapi.json."""
    import json

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/openapi.json" and document is not None:
                status, body = 200, json.dumps(document).encode()
            else:
                status, body = paths.get(self.path, 404), b"{}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_wrong_health_path_suggests_a_health_like_path_of_the_document() -> None:
    """Issue 21 item 11: the document's health-like GET path that answers 2xx is named."""
    document = {
        "openapi": "3.1.0",
        "paths": {
            "/api/v1/items/": {"get": {}},
            "/api/v1/utils/health-check/": {"get": {}},
            "/api/v1/status/{job}": {"get": {}},
        },
    }
    app = _app_with_document({"/api/v1/utils/health-check/": 200}, document)
    base = next(app)
    try:
        with pytest.raises(MisconfigurationError) as caught:
            wait_for_app(base, "/health", RunningContainer(), 30, check_interrupted=lambda: None)  # type: ignore[arg-type]
    finally:
        app.close()
    assert (
        "GET /api/v1/utils/health-check/ answers 200 (listed in the app's OpenAPI document "
        "(/openapi.json)): try app.health_path: /api/v1/utils/health-check/"
    ) in str(caught.value)
    assert caught.value.app_logs == "app: listening on 0.0.0.0:8000"


def test_without_a_document_a_common_health_path_that_answers_is_named_or_none() -> None:
    app = _app_with_document({"/healthz": 200}, None)
    base = next(app)
    try:
        with pytest.raises(MisconfigurationError) as caught:
            wait_for_app(base, "/health", RunningContainer(), 30, check_interrupted=lambda: None)  # type: ignore[arg-type]
    finally:
        app.close()
    assert "GET /healthz answers 200 (a common health path): try app.health_path: /healthz" in (
        str(caught.value)
    )
    app = _app_with_document({}, None)
    base = next(app)
    try:
        with pytest.raises(MisconfigurationError) as caught:
            wait_for_app(base, "/health", RunningContainer(), 30, check_interrupted=lambda: None)  # type: ignore[arg-type]
    finally:
        app.close()
    assert "try app.health_path" not in str(caught.value)


TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1
   1: 0B00007F:A99D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2
   2: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 3
   3: 00000000:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 4
   4: 0100007F:1F91 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000  1000        0 5
"""


def test_listening_sockets_are_read_from_proc_net_tcp() -> None:
    """Docker's DNS resolver (127.0.0.11) is not the app's; a connected socket does not listen."""
    from nocrud.environment.readiness import parse_listening

    assert parse_listening(TCP) == [("0.0.0.0", 8081), ("127.0.0.1", 8000), ("0.0.0.0", 5432)]


class _Listening(RunningContainer):
    """A running container whose app listens on 8081, and on 8000 for loopback only."""

    class _Obj:
        def exec_run(self, command: list[str], demux: bool = False) -> tuple[int, bytes]:
            return 0, TCP.encode()

    obj = _Obj()


def test_a_refused_port_while_the_app_listens_elsewhere_is_a_configuration_error() -> None:
    """Not the whole app_ready timeout per flow: seconds, naming what the app listens on."""
    import socket

    with socket.socket() as closed:  # a port nothing listens on: every connection refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(MisconfigurationError) as caught:
        wait_for_app(
            f"http://127.0.0.1:{port}", "/health", _Listening(), 60, check_interrupted=lambda: None
        )  # type: ignore[arg-type]
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert "its container listens on 0.0.0.0:8081, 127.0.0.1:8000" in message
    assert "set app.port to the port it serves on (8081)" in message
    assert "make the app listen on 0.0.0.0, not 127.0.0.1 (port 8000)" in message


def test_refused_connections_while_the_app_listens_on_its_port_are_not_a_wrong_port() -> None:
    """The soak kills a pair's database, and with it the network namespace the app is in:
    connections are refused although the app listens on app.port. That is the flow's error
    (the timeout, or the dead container), never a configuration problem stopping the run."""
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(ProvisionError) as caught:
        wait_for_app(
            f"http://127.0.0.1:{port}", "/health", _Listening(), 7,
            check_interrupted=lambda: None, app_port=8081,
        )  # type: ignore[arg-type]  # fmt: skip
    assert not isinstance(caught.value, MisconfigurationError)
    assert "app not ready after 7s" in str(caught.value)
