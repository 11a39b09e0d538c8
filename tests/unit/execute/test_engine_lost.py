"""Losing the Docker daemon mid-run: said once, the rest not run, nobody's flow blamed.

Issue 14 item 2: stopping the DinD service gave "4 passed, 34 errors", each with a
traceback. The executor asks the engine check after a flow that did not pass; a lost
daemon stops the scheduler and turns that flow and every later one into SKIPPED
results that say so. A fake provisioner and a fake check stand in for Docker.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from nocrud.docker.engine import EngineLostError
from nocrud.environment import ProvisionError, Run
from nocrud.errors import InfrastructureError
from nocrud.execute import FlowExecutor
from nocrud.flows import Flow, FlowContext
from nocrud.results import FlowResult, Status
from nocrud.scheduler import LocalBackend
from tests.unit.execute.test_executor import FakeTarget


class DaemonThatDies:
    """Provisions ``alive`` environments, then fails every acquire like a vanished daemon."""

    name = "fake"

    def __init__(self, alive: int) -> None:
        self.alive = alive
        self.acquired: list[str] = []
        self.lock = threading.Lock()

    def prepare(self, run: Run) -> None:
        pass

    @contextlib.contextmanager
    def acquire(self, flow: str, *, fresh: bool = False) -> Iterator[FakeTarget]:
        with self.lock:
            self.acquired.append(flow)
            dead = len(self.acquired) > self.alive
        if dead:
            raise ProvisionError("the database container exited with code 0")
        yield FakeTarget("http://127.0.0.1:1")

    def kill_all(self) -> int:
        return 0

    def close(self) -> None:
        pass


def passes(ctx: FlowContext) -> None:
    ctx.log("fine")


def _run(
    provisioner: DaemonThatDies, check: object, flows: int = 10
) -> tuple[FlowExecutor, list[FlowResult]]:
    executor = FlowExecutor(provisioner, flow_timeout=5)
    backend = LocalBackend(executor, parallel=1)
    executor.stop_run = backend.stop
    executor.engine_check = check  # type: ignore[assignment]
    schedule = backend.run([Flow(f"flow_{i}", passes) for i in range(flows)])
    return executor, list(schedule.results)


def test_a_lost_daemon_stops_the_run_the_flow_in_flight_errs_and_the_rest_is_not_run() -> None:
    lost = EngineLostError("tcp://docker:2375", "[Errno -2] Name or service not known")
    asked: list[int] = []

    def check() -> InfrastructureError | None:
        asked.append(1)
        return lost

    provisioner = DaemonThatDies(alive=4)
    executor, results = _run(provisioner, check)

    assert [r.status for r in results[:4]] == [Status.PASSED] * 4
    # The flow in flight is an error that says why (no traceback of the symptom it met);
    # the flows never started are not run.
    assert results[4].status is Status.ERROR
    assert results[4].message == "not finished: the run lost its Docker daemon while this flow ran"
    assert results[4].traceback == ""
    assert {r.status for r in results[5:]} == {Status.SKIPPED}
    assert {r.message for r in results[5:]} == {"not run: run lost its Docker daemon"}
    assert executor.engine_problem is lost
    assert executor.finished_before_problem == 4
    # Scheduling stopped: nothing after the loss was provisioned, and one question was asked.
    assert len(provisioner.acquired) == 5
    assert len(asked) == 1
    assert str(lost) == (
        "lost the Docker daemon at tcp://docker:2375 ([Errno -2] Name or service not known)"
    )


def test_a_daemon_that_still_answers_leaves_the_flows_error_as_it_was() -> None:
    provisioner = DaemonThatDies(alive=2)
    executor, results = _run(provisioner, lambda: None, flows=4)

    assert [r.status for r in results] == [Status.PASSED] * 2 + [Status.ERROR] * 2
    assert "the database container exited with code 0" in results[2].message
    assert executor.engine_problem is None


class _TargetOfADeadDaemon(FakeTarget):
    def app_logs(self, tail: int = 200) -> str:
        raise ConnectionError("[Errno -3] Temporary failure in name resolution")


class _DeadEvidence(DaemonThatDies):
    @contextlib.contextmanager
    def acquire(self, flow: str, *, fresh: bool = False) -> Iterator[FakeTarget]:
        yield _TargetOfADeadDaemon("http://127.0.0.1:1")


def fails_on_the_wire(ctx: FlowContext) -> None:
    raise ConnectionError("the app went away")


def test_evidence_that_cannot_be_gathered_from_a_lost_daemon_is_not_an_internal_error() -> None:
    lost = EngineLostError("tcp://docker:2375", "[Errno -3] Temporary failure in name resolution")
    executor = FlowExecutor(_DeadEvidence(alive=0), flow_timeout=5)
    executor.engine_check = lambda: lost
    result = executor(Flow("flow_0", fails_on_the_wire), 0)
    assert result.status is Status.ERROR
    assert result.message.startswith("not finished: the run lost its Docker daemon while")


def test_a_connection_lost_outside_the_flows_is_exit_3_not_a_traceback() -> None:
    # The Docker SDK lets a dropped connection through as requests' ConnectionError (an
    # image build whose daemon went away); the CLI's guard makes it the infrastructure code.
    import click
    import requests.exceptions
    from click.testing import CliRunner

    from nocrud.cli._guard import Command

    @click.command(cls=Command)
    def builds() -> None:
        raise requests.exceptions.ConnectionError(
            "HTTPConnectionPool(host='docker', port=2375): Max retries exceeded "
            "(Caused by NameResolutionError: [Errno -3] Temporary failure in name resolution)"
        )

    result = CliRunner().invoke(builds, [], env={"NO_COLOR": "1"})
    assert result.exit_code == 3
    assert result.output == (
        "error: Docker failed: [Errno -3] Temporary failure in name resolution; "
        "check the daemon with `nocrud doctor`\n"
    )
