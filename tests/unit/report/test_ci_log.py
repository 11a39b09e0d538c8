"""Reports that read in a CI log: no terminal, 80 columns (issue 13 item 8)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console

from nocrud.report import TerminalReporter, write_json, write_junit
from nocrud.report.terminal import plural, running
from nocrud.results import FlowResult, RunResult, Status, Timings

LONG = "the_seeded_head_office_is_listed_for_every_flow_of_the_run_" + "x" * 40
MESSAGE = (
    "GET http://127.0.0.1:33160/sites/999999 -> 404 NOT FOUND (expected 2xx)\n"
    "client: 'api', auth None\n"
    "request headers:\n"
    "  Accept: application/json\n"
    "response body (text/html):\n"
    "  <h1>Not Found</h1>\n"
    "kept for inspection (remove with `nocrud clean`):\n"
    "  app: http://127.0.0.1:33160"
)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "flows/sites.py", line 29, in unknown_site\n'
    '    ctx.api.get("/sites/999999").expect(200)\n'
    "nocrud.http.responses.UnexpectedStatus: " + MESSAGE.split("\nkept", 1)[0] + "\n"
)
CRASH_LOGS = "booting\nTraceback (most recent call last):\nImportError: no module named app\n"
ASSERT_MESSAGE = (
    "assert site['contact'] == 'Grace'\n  'Ada' == 'Grace'\n  where site['contact'] = 'Ada'"
)
RUN = RunResult(
    run_id="r1",
    project="sites",
    parallel=2,
    started_at=0.0,
    wall_time=3.0,
    flows=(
        FlowResult(LONG, Status.PASSED, timings=Timings(1.0, 1.0, 0.1)),
        FlowResult(
            "unknown_site",
            Status.FAILED,
            message=MESSAGE,
            traceback=TRACEBACK,
            app_logs="GET /sites/999999 404\n",
        ),
        FlowResult(
            "app_crashed",
            Status.ERROR,
            message="the app exited with code 3 before it was ready; its last log lines:\n"
            + "".join(f"  {line}\n" for line in CRASH_LOGS.splitlines()),
            app_logs=CRASH_LOGS,
        ),
        FlowResult(
            "contact_is_updated",
            Status.FAILED,
            message=ASSERT_MESSAGE,
            traceback="Traceback (most recent call last):\n  ...\nAssertionError\n",
        ),
    ),
)


def ci_log() -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=80, no_color=True)
    reporter = TerminalReporter(console, total=len(RUN.flows))
    for flow in RUN.flows:
        reporter.flow_finished(flow)
    reporter.finish(RUN)
    return out.getvalue()


def block(text: str, name: str) -> list[str]:
    """The lines of one flow's block: its header line to the blank line after it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line[8:].startswith(f"{name}  "))
    end = lines.index("", start)
    return lines[start:end]


def test_every_line_of_a_failure_block_is_indented_as_one_block() -> None:
    lines = block(ci_log(), "unknown_site")
    assert lines[0].startswith("FAILED  unknown_site")
    assert all(line.startswith("  ") for line in lines[1:]), lines
    assert "  client: 'api', auth None" in lines
    assert "  kept for inspection (remove with `nocrud clean`):" in lines


def test_the_request_and_response_are_shown_once() -> None:
    text = "\n".join(block(ci_log(), "unknown_site"))
    assert text.count("request headers:") == 1
    assert text.count("<h1>Not Found</h1>") == 1
    assert "UnexpectedStatus: (the message above)" in text


def test_app_logs_are_not_repeated_when_the_message_quotes_them() -> None:
    text = "\n".join(block(ci_log(), "app_crashed"))
    assert text.count("ImportError: no module named app") == 1
    assert "app logs: their last lines are in the message above" in text


def test_the_summary_never_cuts_or_wraps_a_flow_name() -> None:
    summary = ci_log().split("─" * 20, 1)[1]
    rows = [line for line in summary.splitlines() if line.startswith(LONG)]
    assert len(rows) == 1
    assert rows[0].split()[:2] == [LONG, "passed"]


def test_singular_and_plural_counts() -> None:
    assert running(1, 2) == "1 flow"
    assert running(38, 8) == "38 flows with 8 in parallel"
    # Never more in parallel than there are flows (issue 21, item 13).
    assert running(3, 4) == "3 flows with 3 in parallel"
    assert running(0, 4) == "0 flows"
    assert plural(0, "flow") == "0 flows"


def test_junit_and_json_carry_the_same_full_text(tmp_path: Path) -> None:
    write_junit(RUN, tmp_path / "junit.xml")
    write_json(RUN, tmp_path / "run.json")
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "junit.xml").iter("testcase")}
    flows = {f["name"]: f for f in json.loads((tmp_path / "run.json").read_text())["flows"]}
    for name in ("unknown_site", "contact_is_updated"):
        failure = cases[name].find("failure")
        assert failure is not None
        assert failure.get("message") == flows[name]["message"]
        body = failure.text or ""
        # The whole message is in the body CI views show, not only in an attribute.
        for line in flows[name]["message"].splitlines():
            assert line.strip() in body
        assert flows[name]["traceback"].strip() in body
