"""Without an OpenAPI document, `nocrud coverage` says what was tried (issue 13 item 7)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nocrud.analysis import coverage
from nocrud.analysis.coverage import OpenApiError, capture_openapi, find_openapi

DOCUMENT = {"openapi": "3.0.0", "paths": {"/sites/": {"get": {}}}}


class _App(BaseHTTPRequestHandler):
    """An app with no document at the usual places; /api/schema/ serves one."""

    def do_GET(self) -> None:
        answers = {
            "/openapi.json": (200, "text/html", b"<html>welcome</html>"),
            "/swagger.json": (200, "application/json", b'{"hello": "world"}'),
            "/api/schema/": (200, "application/json", json.dumps(DOCUMENT).encode()),
        }
        status, kind, body = answers.get(self.path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def app() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_every_usual_path_tried_is_recorded_with_its_answer(app: str, tmp_path: Path) -> None:
    state = coverage.state_dir(tmp_path)
    capture_openapi(app, state)
    assert not (state / coverage.OPENAPI_FILE).exists()
    (state / coverage.LAST_RUN_FILE).write_text("{}")
    with pytest.raises(OpenApiError) as caught:
        find_openapi(tmp_path, None, None)
    message = str(caught.value)
    assert "GET /openapi.json" in message
    assert "200 OK, but text/html, not JSON (nor a YAML document)" in message
    assert "GET /api/openapi.json  404 Not Found" in message
    assert "application/json without a 'paths' object" in message  # /swagger.json
    assert "--openapi PATH_OR_URL" in message
    assert "app.openapi" in message
    assert "run `nocrud up` first" not in message


def test_app_openapi_names_the_path_the_app_serves(app: str, tmp_path: Path) -> None:
    state = coverage.state_dir(tmp_path)
    capture_openapi(app, state, "/api/schema/")
    assert find_openapi(tmp_path, None, "/api/schema/") == DOCUMENT
    tried = json.loads((state / coverage.ATTEMPTS_FILE).read_text())
    assert tried["found"] == "/api/schema/"
    assert [t["path"] for t in tried["tried"]] == ["/api/schema/"]


def test_app_openapi_may_be_a_file_next_to_nocrud_yaml(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text(json.dumps(DOCUMENT))
    assert find_openapi(tmp_path, None, "schema.json") == DOCUMENT


def test_before_any_run_the_advice_is_to_run_first(tmp_path: Path) -> None:
    with pytest.raises(OpenApiError, match=r"run `nocrud up` first"):
        find_openapi(tmp_path, None, None)
