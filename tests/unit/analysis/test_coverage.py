"""Endpoint coverage: operations of a document, matching requests, capture, `nocrud coverage`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from nocrud.analysis.coverage import (
    OpenApiError,
    Operation,
    TemplateMatcher,
    capture_openapi,
    compute_coverage,
    guess_template,
    load_openapi,
    operations,
)
from nocrud.cli import authoring as cli_flows
from nocrud.results import FlowResult, RequestRecord, RunResult, Status

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "paths": {
        "/api/sites": {"get": {}, "post": {}, "parameters": []},
        "/api/sites/{id}": {"get": {}, "put": {}, "delete": {}},
        "/api/sites/{id}/instruments": {"get": {}},
        "/health": {"get": {}},
    },
}


def run_of(**flows: list[tuple[str, str, int]]) -> RunResult:
    return RunResult(
        run_id="run42",
        project="demo",
        started_at=0.0,
        wall_time=1.0,
        parallel=1,
        flows=tuple(
            FlowResult(
                name=name,
                status=Status.PASSED,
                requests=tuple(RequestRecord(m, p, s, 0.01) for m, p, s in requests),
            )
            for name, requests in flows.items()
        ),
    )


def test_operations_keep_document_order_and_skip_non_methods() -> None:
    assert [str(op) for op in operations(DOCUMENT)] == [
        "GET /api/sites",
        "POST /api/sites",
        "GET /api/sites/{id}",
        "PUT /api/sites/{id}",
        "DELETE /api/sites/{id}",
        "GET /api/sites/{id}/instruments",
        "GET /health",
    ]


def test_server_prefixes_are_part_of_the_paths() -> None:
    v3 = {"servers": [{"url": "https://example.com/v1/"}], "paths": {"/x": {"get": {}}}}
    v2 = {"swagger": "2.0", "basePath": "/api", "paths": {"/y/{id}": {"delete": {}}}}
    assert operations(v3) == [Operation("GET", "/v1/x")]
    assert operations(v2) == [Operation("DELETE", "/api/y/{id}")]


def test_templates_match_concrete_paths_and_other_templates() -> None:
    matcher = TemplateMatcher(["/a/{id}", "/a/search", "/a/{id}/b/{b_id}", "/"])
    assert matcher.match("/a/7") == "/a/{id}"
    assert matcher.match("/a/search") == "/a/search"
    assert matcher.match("/a/7/b/x") == "/a/{id}/b/{b_id}"
    assert matcher.match("/a/{site_id}") == "/a/{id}"  # the client's endpoint= names
    assert matcher.match("/a/7/c") is None
    assert matcher.match("/") == "/"
    assert guess_template("/a/123/b/DEADBEEFDEADBEEF00/c") == "/a/{id}/b/{id}/c"
    assert guess_template("/v2/users/me") == "/v2/users/me"


def test_coverage_counts_operations_statuses_and_flows() -> None:
    run = run_of(
        one=[
            ("GET", "/api/sites", 200),
            ("POST", "/api/sites", 201),
            ("POST", "/api/sites", 400),
            ("GET", "/api/sites/{id}", 200),
        ],
        two=[("GET", "/api/sites/5", 404), ("GET", "/nowhere", 404), ("HEAD", "/health", 200)],
    )
    report = compute_coverage(DOCUMENT, run)
    rows = {str(op.operation): op for op in report.operations}
    assert rows["POST /api/sites"].statuses == (201, 400)
    assert rows["GET /api/sites/{id}"].statuses == (200, 404)
    assert rows["GET /api/sites/{id}"].flows == ("one", "two")
    assert not rows["DELETE /api/sites/{id}"].covered
    assert not rows["GET /health"].covered  # HEAD is not GET
    assert report.covered == 3
    assert report.share == pytest.approx(3 / 7)
    assert report.undocumented == (("GET /nowhere", (404,)), ("HEAD /health", (200,)))
    data = report.to_dict()
    assert data["covered"] == 3 and data["total"] == 7
    assert data["operations"][0] == {
        "method": "GET",
        "path": "/api/sites",
        "covered": True,
        "statuses": [200],
        "flows": ["one"],
    }


def test_loading_documents_explains_failures(tmp_path: Path) -> None:
    with pytest.raises(OpenApiError, match="run `nocrud up` first"):
        load_openapi(tmp_path / "openapi.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(OpenApiError, match=r"bad.json is neither JSON nor YAML \(line 1") as bad:
        load_openapi(tmp_path / "bad.json")
    assert "Expecting value" not in str(bad.value)
    (tmp_path / "other.json").write_text('{"openapi": "3.0.0"}')
    with pytest.raises(OpenApiError, match="has no 'paths' object"):
        load_openapi(tmp_path / "other.json")


# -- capture during a run ---------------------------------------------------------------


class DocServer(ThreadingHTTPServer):
    def __init__(self, document: Any) -> None:
        super().__init__(("127.0.0.1", 0), DocHandler)
        self.document = document
        self.hits: list[str] = []


class DocHandler(BaseHTTPRequestHandler):
    server: DocServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        if self.path == "/v3/api-docs" and self.server.document is not None:
            body = json.dumps(self.server.document).encode()
            self.send_response(200)
        else:
            body = b'{"error": "no"}'
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def doc_server(request: pytest.FixtureRequest) -> Iterator[DocServer]:
    server = DocServer(getattr(request, "param", DOCUMENT))
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_capture_tries_the_usual_paths_and_saves_the_document(
    doc_server: DocServer, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{doc_server.server_address[1]}"
    capture_openapi(url, tmp_path / ".nocrud")
    saved = tmp_path / ".nocrud" / "openapi.json"
    assert json.loads(saved.read_text()) == DOCUMENT
    assert doc_server.hits == ["/openapi.json", "/api/openapi.json", "/v3/api-docs"]


@pytest.mark.parametrize("doc_server", [None], indirect=True)
def test_capture_without_a_document_leaves_nothing(doc_server: DocServer, tmp_path: Path) -> None:
    capture_openapi(f"http://127.0.0.1:{doc_server.server_address[1]}", tmp_path / ".nocrud")
    assert not (tmp_path / ".nocrud" / "openapi.json").exists()
    capture_openapi("http://127.0.0.1:1", tmp_path / ".nocrud")  # unreachable: no exception
    # What was tried is kept for `nocrud coverage` to explain (test_openapi_attempts.py).
    attempts = json.loads((tmp_path / ".nocrud" / "openapi-attempts.json").read_text())
    assert attempts["found"] is None
    assert attempts["tried"][0]["answer"] == "no answer (ConnectionError)"


# -- the command ------------------------------------------------------------------------


def test_coverage_command_lists_operations_and_the_share(
    cli_project: Path, run_cli: Callable[..., Any]
) -> None:
    missing = run_cli("coverage")
    assert missing.exit_code == 2 and "run `nocrud up` first" in missing.output

    run = run_of(a=[("GET", "/api/sites", 200), ("GET", "/api/sites/3", 404)])
    results = cli_project / "results.json"
    results.write_text(json.dumps(run.to_dict()))
    cli_flows.record_run(cli_project, results, perf=False, say=print)
    no_document = run_cli("coverage")
    assert no_document.exit_code == 2 and "no OpenAPI document" in no_document.output

    (cli_project / ".nocrud" / "openapi.json").write_text(json.dumps(DOCUMENT))
    shown = run_cli("coverage")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert any("GET" in line and "/api/sites/{id}" in line and "404" in line for line in lines)
    assert "covered 2 of 7 operations (28.6%) in run run42" in shown.output

    only_missing = run_cli("coverage", "--missing")
    assert "/api/sites/{id}/instruments" in only_missing.output
    rows = [line.split()[1:3] for line in only_missing.output.splitlines()]
    assert ["GET", "/api/sites"] not in rows

    assert run_cli("coverage", "--fail-under", "50").exit_code == 1
    assert run_cli("coverage", "--fail-under", "25").exit_code == 0
    data = json.loads(run_cli("coverage", "--json").output)
    assert data["covered"] == 2 and data["share"] == pytest.approx(0.2857)

    other = cli_project / "other.json"
    other.write_text(json.dumps({"paths": {"/api/sites": {"get": {}}}}))
    full = run_cli("coverage", "--openapi", str(other), "--results", str(results))
    assert "covered 1 of 1 operations (100.0%)" in full.output
    assert "called but not in the document: GET /api/sites/{id} (404)" in full.output


def test_yaml_documents_are_read_like_json(tmp_path: Path) -> None:
    # A public API ships openapi.yml, and app.openapi accepts a YAML file.
    (tmp_path / "openapi.yml").write_text(
        "openapi: 3.0.3\npaths:\n  /api/sites:\n    get: {}\n    post: {}\n"
    )
    document = load_openapi(tmp_path / "openapi.yml")
    assert [str(op) for op in operations(document)] == ["GET /api/sites", "POST /api/sites"]


def test_an_operation_that_only_answered_server_errors_is_not_covered() -> None:
    run = run_of(
        one=[("GET", "/api/sites", 500), ("GET", "/api/sites", 502), ("POST", "/api/sites", 500)],
        two=[("POST", "/api/sites", 201)],
    )
    report = compute_coverage(DOCUMENT, run)
    rows = {str(op.operation): op for op in report.operations}
    assert rows["GET /api/sites"].statuses == (500, 502)  # called, and shown as called
    assert not rows["GET /api/sites"].covered
    assert rows["POST /api/sites"].covered  # one answer that was not 5xx is enough
    assert report.covered == 1
    assert report.to_dict()["operations"][0]["covered"] is False
