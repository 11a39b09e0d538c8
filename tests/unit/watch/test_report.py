"""What a rerun prints: a line per flow, the blocks of what fails now, one ``watch:`` line."""

from __future__ import annotations

import io
import time

from rich.console import Console

from nocrud.results import FlowResult, RunResult, Status, Timings
from nocrud.watch.report import Failures, WatchReporter


def result(name: str, status: Status, message: str = "") -> FlowResult:
    return FlowResult(name=name, status=status, message=message, timings=Timings(run=0.25))


def rerun(failures: Failures, *results: FlowResult, why: str = "sites.py: flows") -> list[str]:
    out = io.StringIO()
    console = Console(file=out, no_color=True, width=200)
    reporter = WatchReporter(console, total=len(results), failures=failures, why=why)
    with reporter:
        for one in results:
            reporter.flow_finished(one)
    reporter.finish(
        RunResult(
            run_id="r1",
            project="p",
            flows=results,
            started_at=time.time(),
            wall_time=0.3,
            parallel=1,
        )
    )
    return out.getvalue().splitlines()


def test_a_rerun_is_a_line_per_flow_the_failures_block_and_a_summary() -> None:
    lines = rerun(
        Failures(),
        result("site_crud", Status.PASSED),
        result("site_rename", Status.FAILED, "expected 200, got 409\nmore detail"),
    )

    assert lines[0] == "  PASSED  site_crud  0.25s"
    assert lines[1] == "  FAILED  site_rename  0.25s  expected 200, got 409"
    assert any(line.startswith("FAILED  site_rename") for line in lines[2:]), lines
    assert "more detail" in "\n".join(lines), "the block has the whole message"
    assert lines[-1] == "watch: 1 passed, 1 failed in 0.30s (sites.py: flows); 1 failing"


def test_an_earlier_failure_stays_on_screen_until_its_flow_passes() -> None:
    failures = Failures()
    rerun(failures, result("site_rename", Status.FAILED, "expected 200, got 409"))

    other = rerun(failures, result("login", Status.PASSED), why="auth.py: flows")
    text = "\n".join(other)
    assert "still failing since an earlier rerun: site_rename" in text
    assert "expected 200, got 409" in text
    assert other[-1] == "watch: 1 passed in 0.30s (auth.py: flows); 1 failing"

    fixed = rerun(failures, result("site_rename", Status.PASSED))
    assert "site_rename" not in "\n".join(fixed[1:])
    assert fixed[-1] == "watch: 1 passed in 0.30s (sites.py: flows)"


def test_a_removed_flows_failure_is_forgotten() -> None:
    failures = Failures()
    rerun(failures, result("gone", Status.ERROR, "boom"))

    failures.forget_except({"site_crud"})

    assert failures.blocks() == []
