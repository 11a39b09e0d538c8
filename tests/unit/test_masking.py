"""One masking policy, every output path: the same table through each place nocrud prints.

Each row of ``ROWS`` is a value under a name (an env var, a JSON or form field, a query
parameter) and how it must be shown. The same rows go through ``nocrud config``
(:meth:`Config.to_display_dict`), the HTTP client's request log (an ``UnexpectedStatus``
message and the per-call log line, against a real server on 127.0.0.1), and the
terminal, JUnit and JSON reports of a flow whose message, traceback, output and app logs
hold them. Every path must show every row as the table says.
"""

from __future__ import annotations

import io
import json
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import yaml
from rich.console import Console

from nocrud.config import Config, load_config
from nocrud.config.model import PLACEHOLDERS
from nocrud.http.client import ApiClient, BearerToken, UnexpectedStatus
from nocrud.masking import (
    MASK,
    is_secret_header,
    is_secret_name,
    mask_header,
    mask_mapping,
    mask_text,
    mask_url,
)
from nocrud.report import TerminalReporter, write_json, write_junit
from nocrud.results import FlowResult, RunResult, Status, StepResult


@dataclass(frozen=True)
class Row:
    """``value`` under ``name`` must be shown as ``shown``; ``hidden`` must never appear."""

    name: str
    value: str
    shown: str
    hidden: str | None

    @property
    def id(self) -> str:
        return f"{self.name}={self.value}"[:60]


def secret(name: str) -> Row:
    value = f"v4lue-{name}-9q"
    return Row(name, value, MASK, value)


def shown(name: str) -> Row:
    value = f"v4lue-{name}-9q"
    return Row(name, value, value, None)


def text(name: str, value: str, masked: str, hidden: str | None = None) -> Row:
    return Row(name, value, masked, hidden)


ROWS = [
    # Names: the same rule for env vars, JSON and form fields, query parameters.
    secret("PRIVATE_KEY"),
    secret("DB_PASSWD"),
    secret("API_TOKEN"),
    secret("Secret"),
    secret("password"),
    secret("apiKey"),
    secret("access_token"),
    secret("client_secret"),
    secret("X-Api-Key"),
    secret("token"),
    secret("PGPASSWORD"),
    secret("DB_PASS"),
    secret("secret_key"),
    secret("signingKey"),
    secret("PWD"),  # the shell's working directory, but a "pwd" form field is a password
    secret("max_tokens"),  # the price of catching "accesstoken" run together
    secret("DJANGO_KEY"),  # a final "key" after any other word (issue 21)
    secret("STRIPE_KEY"),
    secret("appKey"),
    secret("github-keys"),
    shown("sort_key"),
    shown("cache_key"),
    shown("PARTITION_KEY"),
    shown("KEY_NAME"),
    shown("primary_key"),
    shown("public_key"),
    shown("ACCESS_KEY_ID"),  # names a key, is not one
    shown("key"),  # a bare key names a thing; ApiKey(param="key") declares its own
    shown("keyboard"),
    shown("monkey"),
    shown("author"),
    shown("username"),
    shown("page"),
    # URLs: keep the user, hide the password and a lone userinfo, keep placeholders.
    text(
        "DATABASE_URL",
        "postgres://admin:s3cret-pw@db.internal:5432/app",
        f"postgres://admin:{MASK}@db.internal:5432/app",
        "s3cret-pw",
    ),
    text("REPLICA_URL", "postgres://alice@db.internal/app", f"postgres://{MASK}@db.internal/app"),
    text(
        "REPO_URL",
        "https://ghp_0123456789abcdef@github.com/org/repo.git",
        f"https://{MASK}@github.com/org/repo.git",
        "ghp_0123456789abcdef",
    ),
    text(
        "TEMPLATE_URL",
        "postgresql://{db_user}:{db_password}@{db_host}/{db_name}",
        "postgresql://{db_user}:{db_password}@{db_host}/{db_name}",
    ),
    text(
        "APP_DB_URL", "postgres://app:{db_password}@db/app", "postgres://app:{db_password}@db/app"
    ),
    text("FTP_URL", "ftp://alice:@files.example.com/pub", "ftp://alice:@files.example.com/pub"),
    text(
        "REDIS_URL", "redis://:c4che-pw@cache:6379/0", f"redis://:{MASK}@cache:6379/0", "c4che-pw"
    ),
    text("AT_URL", "postgres://u:p@ss-w0rd@db/app", f"postgres://u:{MASK}@db/app", "ss-w0rd"),
    text(
        "ITEMS_URL",
        "https://api.example.com/v1/items?page=2&access_token=tok-abc123",
        f"https://api.example.com/v1/items?page=2&access_token={MASK}",
        "tok-abc123",
    ),
    text(
        "LIST_URL",
        "https://api.example.com/v1/items?sort_key=name&page=2",
        "https://api.example.com/v1/items?sort_key=name&page=2",
    ),
    text(
        "CALLBACK_URL",
        "https://app.example.com/cb#id_token=eyJ0eXAi.x",
        f"https://app.example.com/cb#id_token={MASK}",
        "eyJ0eXAi",
    ),
    # Free text: name=value pairs, quoted pairs.
    text(
        "LOG_LINE",
        "login failed: password=hunter22 user=bob",
        f"login failed: password={MASK} user=bob",
        "hunter22",
    ),
    text(
        "QUERY_LINE",
        "GET /items?token=abc123&page=2",
        f"GET /items?token={MASK}&page=2",
        "abc123",
    ),
    text(
        "DICT_LINE",
        "'password': 'hunter22', 'sort_key': 'name', 'pin': 1234",
        f"'password': '{MASK}', 'sort_key': 'name', 'pin': 1234",
        "hunter22",
    ),
    text(
        "DSN",
        "host=db password=pg-s3cret dbname=app",
        f"host=db password={MASK} dbname=app",
        "pg-s3cret",
    ),
    text("DSN_TEMPLATE", "host=db password={db_password}", "host=db password={db_password}"),
]

NAME_ROWS = [row for row in ROWS if row.value == f"v4lue-{row.name}-9q"]


def in_config(row: Row) -> bool:
    """Whether ``row`` can be an app.env entry: a variable name, only known placeholders."""
    braces = re.findall(r"\{([^{}]*)\}", row.value)
    return re.fullmatch(r"[A-Za-z_]\w*", row.name) is not None and set(braces) <= PLACEHOLDERS


def report_text(row: Row, value: str) -> str:
    """How ``row`` appears in a flow's message, output or app logs: a pair and JSON."""
    return f"{row.name}={value}\n{json.dumps({row.name: value})}"


def assert_shown(row: Row, text: str, *expected: str) -> None:
    for part in expected:
        assert part in text
    if row.hidden is not None:
        assert row.hidden not in text


# -- the table itself ---------------------------------------------------------------


@pytest.mark.parametrize("row", NAME_ROWS, ids=lambda row: row.name)
def test_names(row: Row) -> None:
    assert is_secret_name(row.name) is (row.shown == MASK)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_free_text_and_nested_data(row: Row) -> None:
    assert mask_mapping({row.name: row.value}) == {row.name: row.shown}
    assert mask_text(report_text(row, row.value)) == report_text(row, row.shown)
    # Masking is idempotent: a request log inside a flow's message is masked twice.
    assert mask_text(report_text(row, row.shown)) == report_text(row, row.shown)


# -- nocrud config ------------------------------------------------------------------


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("project")
    (root / "flows").mkdir()
    (root / "flows" / "__init__.py").write_text("")
    data = {
        "project": "demo",
        "app": {"image": "demo/app:1", "env": {r.name: r.value for r in ROWS if in_config(r)}},
        "database": {"migrate": ["true"], "password": "db-s3cret"},
    }
    (root / "nocrud.yaml").write_text(yaml.safe_dump(data))
    return load_config(root / "nocrud.yaml", env={})


@pytest.mark.parametrize("row", [r for r in ROWS if in_config(r)], ids=lambda row: row.id)
def test_config_display(config: Config, row: Row) -> None:
    shown = config.to_display_dict()
    assert shown["app"]["env"][row.name] == row.shown
    assert shown["database"]["password"] == MASK


# -- the HTTP client's request log ----------------------------------------------------


class EchoHandler(BaseHTTPRequestHandler):
    """Answers every POST 422, echoing the JSON body and the raw query string."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.dumps(
            {"json": json.loads(body or b"null"), "query": urlsplit(self.path).query}
        ).encode()
        self.send_response(422)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def failed_request(base_url: str, **kwargs: Any) -> tuple[str, list[str]]:
    """The UnexpectedStatus message and the log lines of one POST to the echo server."""
    lines: list[str] = []
    with ApiClient(base_url, log=lines.append) as client, pytest.raises(UnexpectedStatus) as info:
        client.post("/echo", **kwargs)
    return str(info.value), lines


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_request_log(server: str, row: Row) -> None:
    message, lines = failed_request(
        server, json={row.name: row.value}, params={row.name: row.value}
    )

    query = urlencode({row.name: row.shown}, safe="*")
    field = f"{json.dumps(row.name)}: {json.dumps(row.shown)}"
    assert_shown(row, message, f"/echo?{query} -> 422", field)
    assert message.count(field) == 2  # the request body, and the response echoing it
    assert_shown(row, lines[0], f"POST /echo?{query} -> 422 (")


def test_request_log_masks_secret_headers_as_reports_do(server: str) -> None:
    headers = {
        "X-Auth-Token": "hdr-s3cret",
        "Cookie": "sessionid=abc123; csrftoken=def456",
        "X-Trace": "visible",
    }
    message, _ = failed_request(server, json={}, headers=headers)

    expected = [
        f"X-Auth-Token: {MASK}",
        f"Cookie: sessionid={MASK}; csrftoken={MASK}",
        "X-Trace: visible",
    ]
    for line in expected:
        assert line in message
    # The same header lines in an app's log come out the same in the reports.
    app_log = "\n".join(f"{name}: {value}" for name, value in headers.items())
    assert mask_text(app_log).splitlines() == expected
    for name, value in headers.items():
        assert mask_header(name, value) == expected[list(headers).index(name)].split(": ", 1)[1]
    assert is_secret_header("Authorization")
    assert not is_secret_header("Idempotency-Key")


def test_request_log_scrubs_known_literals(server: str) -> None:
    client = ApiClient(server, auth=BearerToken("tok-literal-0123"))
    with client, pytest.raises(UnexpectedStatus) as info:
        client.post("/echo", json={"note": "the token is tok-literal-0123"})
    assert "the token is ********" in str(info.value)
    assert "tok-literal-0123" not in str(info.value)
    assert mask_text("pw abc, pw abcd", literals=["abc", "abcd"]) == f"pw abc, pw {MASK}"


# -- the reports ----------------------------------------------------------------------


def run_of(row: Row) -> RunResult:
    """A run of one FAILED flow carrying ``row`` in every text a report shows."""
    words = report_text(row, row.value)
    flow = FlowResult(
        name="leaky_flow",
        status=Status.FAILED,
        message=words,
        traceback=f"Traceback (most recent call last):\nAssertionError: {words}\n",
        output=words,
        app_logs=words,
        steps=(StepResult("update", Status.FAILED, words),),
    )
    return RunResult("run-1", "demo", (flow,), 0.0, 1.0, 1)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_terminal_report(row: Row) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    TerminalReporter(console, total=1).flow_finished(run_of(row).flows[0])

    assert_shown(row, out.getvalue(), *report_text(row, row.shown).splitlines())


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_junit_report(row: Row, tmp_path: Path) -> None:
    write_junit(run_of(row), tmp_path / "junit.xml")

    xml = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    case = ET.fromstring(xml).find("testsuite/testcase")
    assert case is not None
    expected = report_text(row, row.shown)
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == expected
    assert expected in case.findtext("failure", "")
    assert expected in case.findtext("system-out", "")
    assert case.findtext("system-err") == expected
    if row.hidden is not None:
        assert row.hidden not in xml


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_json_report(row: Row, tmp_path: Path) -> None:
    write_json(run_of(row), tmp_path / "run.json")

    raw = (tmp_path / "run.json").read_text(encoding="utf-8")
    flow = json.loads(raw)["flows"][0]
    expected = report_text(row, row.shown)
    assert flow["message"] == expected
    assert flow["output"] == expected
    assert flow["app_logs"] == expected
    assert flow["steps"][0]["message"] == expected
    assert expected in flow["traceback"]
    if row.hidden is not None:
        assert row.hidden not in raw


def test_reports_see_through_colour_codes(tmp_path: Path) -> None:
    coloured = "\x1b[32mconnecting to postgres://admin:s3cret-pw@db/app\x1b[0m"
    flow = FlowResult(name="f", status=Status.ERROR, message="app crashed", app_logs=coloured)
    run = RunResult("run-1", "demo", (flow,), 0.0, 1.0, 1)
    out = io.StringIO()
    TerminalReporter(Console(file=out, force_terminal=False), total=1).flow_finished(flow)
    write_junit(run, tmp_path / "junit.xml")
    write_json(run, tmp_path / "run.json")

    for shown_text in (
        out.getvalue(),
        (tmp_path / "junit.xml").read_text(),
        (tmp_path / "run.json").read_text(),
    ):
        assert f"postgres://admin:{MASK}@db/app" in shown_text
        assert "s3cret-pw" not in shown_text
    assert mask_url("postgres://admin:s3cret-pw@db/app") == f"postgres://admin:{MASK}@db/app"
