"""The replay rounds of nocrud.fuzz.runner with a fake at the provisioning seam.

The fake stands for ``workflow.run_flows``: it runs each replay flow's exchanges against
a "clean database" rule instead of a brand-new environment, and answers FAILED (the
failure came back, with the app's log) or PASSED, as the executor would.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from nocrud.flows import Flow
from nocrud.fuzz.model import Exchange, Finding, Verdict
from nocrud.fuzz.plan import FuzzOptions
from nocrud.fuzz.report import FuzzReport
from nocrud.fuzz.runner import _replay_all, results_of
from nocrud.results import FlowResult, RunResult, Status
from nocrud.workflow import UpOptions

RED = Exchange("POST", "/tags", body=b'{"name": "red"}', status=201, unit="u1")
AGAIN = Exchange("POST", "/tags", body=b'{"name": "red"}', status=500, unit="u1")
CRASH = Exchange("GET", "/stats?per=0", status=500, unit="u2")


class FakeSchema:
    """What the replay flow asks of the schema: did the failing case fail again?"""

    def __init__(self) -> None:
        self.sent: list[Exchange] = []

    def fails_again(self, case: Exchange, target: Any, checks: Any) -> bool:
        history = [*self.sent, case]
        self.sent.clear()
        if case == CRASH:
            return True
        return history.count(RED) + history.count(AGAIN) >= 2


def finding(check: str, history: tuple[Exchange, ...], unit: str) -> Finding:
    return Finding(
        operation=f"{history[-1].method} {history[-1].path.partition('?')[0]}",
        check=check,
        message="Server error",
        unit=unit,
        history=history,
        extra={"case": history[-1]},
    )


def test_rounds_classify_each_failure_once_per_response(monkeypatch: Any) -> None:
    schema = FakeSchema()
    rounds: list[list[str]] = []

    def send(exchanges: Sequence[Exchange], target: Any) -> list[int]:
        schema.sent.extend(exchanges)
        return [e.status for e in exchanges]

    monkeypatch.setattr("nocrud.fuzz.runner.send_exchanges", send)
    monkeypatch.setattr("nocrud.fuzz.runner._target", lambda ctx, setup: None)

    def flows(items: Sequence[Flow], options: UpOptions) -> RunResult:
        assert all(f.fresh for f in items), "every replay needs a brand-new environment"
        assert not options.keep_failed
        rounds.append([f.name for f in items])
        results = []
        for item in items:
            try:
                item.func(None)  # type: ignore[arg-type]
                results.append(FlowResult(name=item.name, status=Status.PASSED))
            except AssertionError:
                results.append(
                    FlowResult(name=item.name, status=Status.FAILED, app_logs="IntegrityError")
                )
        return RunResult("r", "p", tuple(results), time.time(), 0.1, 2)

    findings = [
        finding("not_a_server_error", (RED, AGAIN), "u1"),
        finding("status_code_conformance", (RED, AGAIN), "u1"),  # same response: same replays
        finding("not_a_server_error", (CRASH,), "u2"),
    ]
    classified = _replay_all(
        findings,
        schema=schema,  # type: ignore[arg-type]
        options=FuzzOptions(),
        setup=None,
        flows=flows,
        quiet=UpOptions(),
    )
    assert [f.verdict for f in classified] == [
        Verdict.ORDER_DEPENDENT,
        Verdict.ORDER_DEPENDENT,
        Verdict.REPRODUCIBLE,
    ]
    assert classified[0].minimal == (RED, AGAIN) == classified[1].minimal
    assert classified[2].minimal == (CRASH,)
    assert all(f.app_logs == "IntegrityError" for f in classified)
    # Round 1: the two distinct responses alone; then only the order-dependent one goes on.
    assert len(rounds[0]) == 2
    assert all(len(r) == 1 for r in rounds[1:])


def test_results_for_the_store_pass_units_and_fail_reproduced_failures() -> None:
    reproduced = dataclasses.replace(
        finding("not_a_server_error", (CRASH,), "u2"),
        verdict=Verdict.REPRODUCIBLE,
        minimal=(CRASH,),
    )
    flaky = dataclasses.replace(reproduced, check="x", verdict=Verdict.NOT_REPRODUCED)
    explored = RunResult(
        "r", "p", (FlowResult(name="GET /stats [positive] #0", status=Status.FAILED),), 1.0, 1.0, 2
    )
    report = FuzzReport("r", "p", 3, ("GET /stats",), ("not_a_server_error",), (reproduced, flaky))
    result = results_of(report, explored, started_at=5.0)
    by_name = {f.name: f for f in result.flows}
    assert by_name["GET /stats [positive] #0"].status is Status.PASSED
    assert by_name["fuzz GET /stats: not_a_server_error"].status is Status.FAILED
    assert "FAIL 1: GET /stats: not_a_server_error (reproducible)" in (
        by_name["fuzz GET /stats: not_a_server_error"].message
    )
    assert by_name["fuzz GET /stats: x"].status is Status.PASSED
