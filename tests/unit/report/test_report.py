"""Unit tests of nocrud.report: terminal text, JUnit XML and the JSON results file.

Every reporter is fed the same RunResult, built here with one flow of each status,
so each test reads like "given this run, a person / GitLab / a dashboard sees ...".
"""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from nocrud.report import (
    TerminalReporter,
    format_steps,
    format_totals,
    read_json,
    write_json,
    write_junit,
)
from nocrud.results import FlowResult, RequestRecord, RunResult, Status, StepResult, Timings

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "flows/orders.py", line 12, in update\n'
    "    assert r.status == 200\n"
    "AssertionError: expected 200, got 422\n"
)
DASH = "\u2013"  # the "not run" mark; escaped because it looks like a hyphen
CRUD = ("create", "read", "update", "list", "delete")


def crud_steps(failing: str | None = None) -> tuple[StepResult, ...]:
    steps, after = [], False
    for name in CRUD:
        if name == failing:
            steps.append(StepResult(name, Status.FAILED, "expected 200, got 422", 0.02))
            after = True
        else:
            steps.append(StepResult(name, Status.SKIPPED if after else Status.PASSED, "", 0.01))
    return tuple(steps)


RUN = RunResult(
    run_id="run-1",
    project="shop",
    started_at=1_700_000_000.25,
    wall_time=12.345,
    parallel=2,
    nocrud_version="0.1.0",
    flows=(
        FlowResult(
            name="users_crud",
            status=Status.PASSED,
            kind="crud",
            timings=Timings(0.4, 0.7, 0.125),
            steps=crud_steps(),
            app_logs="PASSED-APP-LOG\n",
            output="PASSED-OUTPUT\n",
            requests=(RequestRecord("POST", "/users", 201, 0.015),),
        ),
        FlowResult(
            name="orders_crud",
            status=Status.FAILED,
            kind="crud",
            message="expected 200, got 422",
            traceback=TRACEBACK,
            timings=Timings(0.5, 0.25, 0.125),
            steps=crud_steps(failing="update"),
            app_logs="\n".join(f"app line {i:02d} [not markup]" for i in range(60)) + "\n",
            output="FAILED-OUTPUT\n",
            worker=1,
        ),
        FlowResult(
            name="checkout",
            status=Status.ERROR,
            message="app never became healthy",
            traceback="nocrud.environment.NotHealthy: app never became healthy\n",
            timings=Timings(30.0, 0.0, 0.5),
            app_logs="ERROR-APP-LOG \x1b[31mbind failed\x1b[0m\n",
        ),
        FlowResult(
            name="refunds",
            status=Status.SKIPPED,
            message="not run: stopped after the first failure (--fail-fast)",
        ),
    ),
)


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=120), out


def report(run: RunResult, console: Console, *, verbose: bool = False) -> None:
    reporter = TerminalReporter(console, verbose=verbose, total=len(run.flows))
    reporter.start()
    for flow in run.flows:
        if flow.status is not Status.SKIPPED:
            reporter.flow_started(flow.name, flow.worker)
        reporter.flow_finished(flow)
    reporter.finish(run)


# -- terminal ----------------------------------------------------------------------


def test_terminal_prints_one_block_per_flow_then_the_summary() -> None:
    console, out = plain_console()
    report(RUN, console)
    text = out.getvalue()

    headers = [
        line for line in text.splitlines() if re.match(r"^(PASSED|FAILED|ERROR|SKIPPED)", line)
    ]
    assert [h.split()[1] for h in headers] == ["users_crud", "orders_crud", "checkout", "refunds"]
    assert headers[0].startswith("PASSED  users_crud  C✔ R✔ U✔ L✔ D✔  (1.23 s)")
    assert "provision 0.40 s · run 0.70 s · teardown 0.12 s" in headers[0]
    assert headers[1].startswith(f"FAILED  orders_crud  C✔ R✔ U✘ L{DASH} D{DASH}  (0.88 s)")
    assert headers[3] == "SKIPPED refunds  not run: stopped after the first failure (--fail-fast)"
    assert text.rstrip().endswith("1 passed, 1 failed, 1 error, 1 skipped in 12.35s")
    assert "\x1b" not in text


def test_a_passed_flow_is_one_line_and_a_failed_one_shows_its_evidence() -> None:
    console, out = plain_console()
    report(RUN, console)
    text = out.getvalue()
    failed_block = text[text.index("FAILED  orders_crud") : text.index("ERROR   checkout")]

    assert "PASSED-OUTPUT" not in text
    assert "PASSED-APP-LOG" not in text
    assert "  update: expected 200, got 422" in failed_block
    assert "AssertionError: expected 200, got 422" in failed_block
    assert "FAILED-OUTPUT" in failed_block
    assert "app logs (last 40 of 60 lines; all of them in --json):" in failed_block
    assert "app line 19" not in failed_block
    assert "app line 20 [not markup]" in failed_block  # printed as text, not rich markup
    assert "app line 59" in failed_block
    error_block = text[text.index("ERROR   checkout") : text.index("SKIPPED refunds")]
    assert "ERROR-APP-LOG bind failed" in error_block  # colour codes dropped, text kept


def test_verbose_shows_a_passed_flows_output() -> None:
    console, out = plain_console()
    report(RUN, console, verbose=True)

    assert "PASSED-OUTPUT" in out.getvalue()
    assert "PASSED-APP-LOG" not in out.getvalue()


def test_the_summary_table_lists_every_flow_with_its_timings() -> None:
    console, out = plain_console()
    report(RUN, console)
    table = out.getvalue()[out.getvalue().index("provision    ") - 30 :]

    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines() if line.strip()}
    assert rows["flow"] == ["status", "provision", "run", "teardown", "total"]
    assert rows["users_crud"] == ["passed", "0.40", "s", "0.70", "s", "0.12", "s", "1.23", "s"]
    assert rows["refunds"] == ["skipped", DASH, DASH, DASH, DASH]


def test_not_a_terminal_means_no_live_display() -> None:
    console, out = plain_console()
    reporter = TerminalReporter(console, total=1)
    reporter.start()
    reporter.flow_started("users_crud", 0)

    assert out.getvalue() == ""


def test_no_ansi_codes_with_no_color_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert TerminalReporter(total=0).console.no_color

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, no_color=True, width=120)
    reporter = TerminalReporter(console, total=len(RUN.flows))
    for flow in RUN.flows:
        reporter.flow_finished(flow)
    reporter.finish(RUN)

    assert "\x1b" not in out.getvalue()
    assert "FAILED  orders_crud" in out.getvalue()


def test_colours_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert not TerminalReporter(total=0).console.no_color
    out = io.StringIO()
    reporter = TerminalReporter(Console(file=out, force_terminal=True, width=120), total=1)
    reporter.flow_finished(RUN.flows[1])

    assert "\x1b[" in out.getvalue()


def test_live_display_on_a_terminal_with_flows_finishing_on_many_threads() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    reporter = TerminalReporter(console, total=len(RUN.flows))
    together = threading.Barrier(len(RUN.flows), timeout=5)

    def worker(flow: FlowResult) -> None:
        reporter.flow_started(flow.name, flow.worker)
        together.wait()
        reporter.flow_finished(flow)

    with reporter:
        threads = [threading.Thread(target=worker, args=(f,)) for f in RUN.flows]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
    reporter.finish(RUN)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())

    assert "running: " in text
    assert "4/4" in text
    # Each block arrived whole: the failed flow's evidence follows its own header.
    failed_block = text[text.index("FAILED  orders_crud") :]
    assert failed_block.index("AssertionError") < failed_block.index("app line 59")
    assert text.count("FAILED  orders_crud") == 1


def test_live_display_leaves_sys_stdout_alone() -> None:
    # The runner swaps sys.stdout to capture flows' prints; the display must not undo that.
    before = sys.stdout, sys.stderr
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with TerminalReporter(console, total=1):
        assert (sys.stdout, sys.stderr) == before
    assert (sys.stdout, sys.stderr) == before


def test_format_steps() -> None:
    assert format_steps(crud_steps(failing="list")) == f"C✔ R✔ U✔ L✘ D{DASH}"
    assert format_steps(crud_steps(failing="list"), ascii_only=True) == "C+ R+ U+ Lx D-"
    assert format_steps(()) == ""


@pytest.mark.parametrize(
    ("statuses", "interrupted", "expected"),
    [
        ("PPPFEE", False, "3 passed, 1 failed, 2 errors in 1.50s"),
        ("PSS", True, "1 passed, 2 skipped, interrupted in 1.50s"),
        ("", False, "no flows ran in 1.50s"),
    ],
)
def test_format_totals(statuses: str, interrupted: bool, expected: str) -> None:
    status = {"P": Status.PASSED, "F": Status.FAILED, "E": Status.ERROR, "S": Status.SKIPPED}
    run = RunResult(
        run_id="r",
        project="p",
        flows=tuple(FlowResult(f"f{i}", status[s]) for i, s in enumerate(statuses)),
        started_at=0.0,
        wall_time=1.5,
        parallel=1,
        interrupted=interrupted,
    )
    assert format_totals(run) == expected


# -- JUnit XML ---------------------------------------------------------------------


def junit(run: RunResult, tmp_path: Path) -> ET.Element:
    path = tmp_path / "reports" / "deep" / "junit.xml"  # parents are created
    write_junit(run, path)
    return ET.parse(path).getroot()


def test_junit_counts_and_one_testcase_per_flow(tmp_path: Path) -> None:
    root = junit(RUN, tmp_path)

    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "nocrud"
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped", "time")} == {
        "tests": "4",
        "failures": "1",
        "errors": "1",
        "skipped": "1",
        "time": "12.345",
    }
    assert suite.get("hostname")
    assert suite.get("timestamp", "").startswith("2023-11-1")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("nocrud.shop", "users_crud"),
        ("nocrud.shop", "orders_crud"),
        ("nocrud.shop", "checkout"),
        ("nocrud.shop", "refunds"),
    ]
    assert cases[0].get("time") == "1.225"


def test_junit_failure_error_and_skipped_elements(tmp_path: Path) -> None:
    passed, failed, error, skipped = junit(RUN, tmp_path).iter("testcase")

    assert passed.find("failure") is None
    assert passed.find("error") is None
    assert passed.find("system-err") is None  # app logs only for flows that did not pass
    failure = failed.find("failure")
    assert failure is not None
    assert failure.get("message") == "expected 200, got 422"
    assert failure.get("type") == "AssertionError"
    assert failure.text == TRACEBACK
    err = error.find("error")
    assert err is not None
    assert err.get("type") == "nocrud.environment.NotHealthy"
    assert error.findtext("system-err") == "ERROR-APP-LOG bind failed\n"
    skip = skipped.find("skipped")
    assert skip is not None
    assert skip.get("message") == "not run: stopped after the first failure (--fail-fast)"


def test_junit_steps_and_timings_as_properties_and_readable_lines(tmp_path: Path) -> None:
    failed = list(junit(RUN, tmp_path).iter("testcase"))[1]

    props = {p.get("name"): p.get("value") for p in failed.iter("property")}
    assert {k: v for k, v in props.items() if k and k.startswith("step.")} == {
        "step.create": "passed",
        "step.read": "passed",
        "step.update": "failed",
        "step.list": "skipped",
        "step.delete": "skipped",
    }
    assert props["timing.provision"] == "0.500"
    assert props["timing.teardown"] == "0.125"
    out = failed.findtext("system-out") or ""
    assert "step update: failed (0.020 s): expected 200, got 422" in out
    assert "FAILED-OUTPUT" in out


def test_junit_survives_control_characters(tmp_path: Path) -> None:
    nasty = FlowResult(
        name="bell\x07flow",
        status=Status.FAILED,
        message="bad \x00byte\x1b[0m and \x0bvertical tab",
        traceback="line\x08\ufffe\n",
        output="out\x01put \udcff",  # a lone surrogate: an undecodable byte of output
        app_logs="log\x1f",
    )
    run = RunResult("r", "p<&>", (nasty,), 0.0, 1.0, 1)

    case = junit(run, tmp_path).find("testsuite/testcase")

    assert case is not None
    assert case.get("name") == "bellflow"
    assert case.get("classname") == "nocrud.p<&>"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "bad byte and vertical tab"
    assert failure.text == "bad byte and vertical tab\n\nline\n"  # the whole text: test_ci_log
    assert case.findtext("system-err") == "log"
    assert case.findtext("system-out") == "output "


def test_terminal_survives_undecodable_output() -> None:
    console, out = plain_console()
    flow = FlowResult(name="f", status=Status.FAILED, output="bad \udcff byte")
    TerminalReporter(console, total=1).flow_finished(flow)

    assert "bad ? byte" in out.getvalue()
    out.getvalue().encode("utf-8")  # nothing left that a stream cannot write


# -- JSON --------------------------------------------------------------------------


def test_json_round_trip_equals_the_original(tmp_path: Path) -> None:
    path = tmp_path / "out" / "run.json"
    write_json(RUN, path)

    assert read_json(path) == RUN
    text = path.read_text(encoding="utf-8")
    assert text.startswith('{\n  "flows": [')  # indent 2, keys sorted
    assert json.loads(text)["totals"] == {
        "passed": 1,
        "failed": 1,
        "error": 1,
        "skipped": 1,
        "total": 4,
    }
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]  # no temp file left


def test_json_write_is_stable(tmp_path: Path) -> None:
    write_json(RUN, tmp_path / "a.json")
    write_json(read_json(tmp_path / "a.json"), tmp_path / "b.json")

    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("not json", "not valid JSON"),
        ("[1]", "expected a JSON object"),
        ('{"schema_version": "1.0"}', "missing key 'run_id'"),
        ('{"schema_version": "9.0"}', "schema_version '9.0'"),
    ],
)
def test_read_json_names_the_file_and_the_problem(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "run.json"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(ValueError, match=re.escape(error)) as excinfo:
        read_json(path)
    assert str(path) in str(excinfo.value)
