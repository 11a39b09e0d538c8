"""The executor through the provisioning seam, with a fake provisioner: no Docker, milliseconds.

The executor only knows the :class:`~nocrud.environment.Provisioner` protocol, so what it
promises (classification, evidence, keeping, teardown errors, timeouts, the OpenAPI
document fetched once per run) is checked here against a fake that records what was
asked of it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from nocrud.config import ConfigError, load_config
from nocrud.docker.postgres import DatabaseAddress
from nocrud.environment import STRATEGIES, ProvisionError, Run, provisioner_for
from nocrud.execute import FlowExecutor
from nocrud.flows import Flow, FlowContext
from nocrud.results import Status
from nocrud.scheduler import LocalBackend


class FakeTarget:
    def __init__(self, base_url: str, *, casualties: list[str] | None = None) -> None:
        self.base_url = base_url
        self.database = DatabaseAddress("127.0.0.1", 1, "db", "user", "pw")
        self.killed = False
        self.kept = False
        self._casualties = casualties or []

    def app_logs(self, tail: int = 200) -> str:
        return "app says: boom"

    def casualties(self) -> list[str]:
        return self._casualties

    def kill(self) -> None:
        self.killed = True

    def keep(self) -> str:
        self.kept = True
        return "kept for inspection: here"


class FakeProvisioner:
    name = "fake"

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:1",
        *,
        fail: Exception | None = None,
        teardown_error: Exception | None = None,
        casualties: list[str] | None = None,
    ) -> None:
        self.base_url = base_url
        self.fail = fail
        self.teardown_error = teardown_error
        self.casualties = casualties
        self.acquired: list[str] = []
        self.released: list[str] = []
        self.targets: list[FakeTarget] = []
        self.killed_all = 0

    def prepare(self, run: Run) -> None:
        pass

    @contextlib.contextmanager
    def acquire(self, flow: str, *, fresh: bool = False) -> Iterator[FakeTarget]:
        self.acquired.append(flow)
        if self.fail is not None:
            raise self.fail
        target = FakeTarget(self.base_url, casualties=self.casualties)
        self.targets.append(target)
        yield target
        self.released.append(flow)
        if self.teardown_error is not None:
            raise self.teardown_error

    def kill_all(self) -> int:
        self.killed_all += 1
        return len(self.acquired) - len(self.released)

    def close(self) -> None:
        pass


def passes(ctx: FlowContext) -> None:
    ctx.log("fine")


def fails(ctx: FlowContext) -> None:
    assert 1 + 1 == 3, "arithmetic"


def test_a_passing_flow_gets_and_returns_its_environment() -> None:
    provisioner = FakeProvisioner()
    result = FlowExecutor(provisioner, flow_timeout=5)(Flow("ok", passes), 2)
    assert result.status is Status.PASSED
    assert (result.output, result.worker) == ("fine", 2)
    assert provisioner.acquired == provisioner.released == ["ok"]
    assert result.timings.provision >= 0 and result.timings.teardown >= 0


def test_a_provisioning_failure_is_an_error_with_the_evidence_and_no_traceback() -> None:
    provisioner = FakeProvisioner(fail=ProvisionError("the app container exited with code 3"))
    result = FlowExecutor(provisioner, flow_timeout=5)(Flow("broken", passes), 0)
    assert result.status is Status.ERROR
    assert result.message == "environment did not start: the app container exited with code 3"
    assert result.traceback == ""


def test_an_unexpected_provisioning_bug_keeps_its_traceback() -> None:
    provisioner = FakeProvisioner(fail=KeyError("Ports"))
    result = FlowExecutor(provisioner, flow_timeout=5)(Flow("bug", passes), 0)
    assert result.status is Status.ERROR
    assert "KeyError" in result.message and "KeyError" in result.traceback


def test_a_failing_flow_is_failed_with_app_logs_and_is_kept_when_asked() -> None:
    provisioner = FakeProvisioner()
    result = FlowExecutor(provisioner, flow_timeout=5, keep_failed=True)(Flow("bad", fails), 0)
    assert result.status is Status.FAILED
    assert result.message.startswith("arithmetic")
    assert "kept for inspection: here" in result.message
    assert result.app_logs == "app says: boom"
    assert provisioner.targets[0].kept


def test_a_failed_teardown_turns_a_pass_into_an_error_but_not_a_failure_into_a_pass() -> None:
    provisioner = FakeProvisioner(teardown_error=RuntimeError("network in use"))
    executor = FlowExecutor(provisioner, flow_timeout=5)
    passed = executor(Flow("ok", passes), 0)
    assert passed.status is Status.ERROR
    assert "teardown failed: RuntimeError: network in use" in passed.message
    failed = executor(Flow("bad", fails), 0)
    assert failed.status is Status.FAILED


def test_a_flow_past_its_timeout_is_abandoned_and_its_environment_killed() -> None:
    def sleeps(ctx: FlowContext) -> None:
        time.sleep(30)

    provisioner = FakeProvisioner()
    result = FlowExecutor(provisioner, flow_timeout=0.2)(Flow("slow", sleeps), 0)
    assert result.status is Status.ERROR
    assert result.message == "timed out after 0.2 s"
    assert provisioner.targets[0].killed


def test_a_dead_container_is_named_as_the_cause_of_a_failure() -> None:
    provisioner = FakeProvisioner(casualties=["the database container exited with code 137"])
    result = FlowExecutor(provisioner, flow_timeout=5)(Flow("bad", fails), 0)
    assert result.status is Status.ERROR
    assert result.message.startswith("the database container exited with code 137 during the flow")


def test_kill_all_goes_to_the_provisioner_and_later_flows_do_not_start() -> None:
    provisioner = FakeProvisioner()
    executor = FlowExecutor(provisioner, flow_timeout=5)
    executor.kill_all()
    assert provisioner.killed_all == 1
    result = executor(Flow("late", passes), 0)
    assert result.status is Status.SKIPPED and provisioner.acquired == []


class _Counting(BaseHTTPRequestHandler):
    hits: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = json.dumps({"openapi": "3.0.0", "paths": {}}).encode()
        self.send_response(200 if self.path == "/openapi.json" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def openapi_app() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("Handler", (_Counting,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_the_openapi_document_is_fetched_once_per_run_not_per_flow(
    openapi_app: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, hits = openapi_app
    executor = FlowExecutor(FakeProvisioner(url), flow_timeout=5, state_dir=tmp_path)
    flows = [Flow(f"flow_{i}", passes) for i in range(12)]
    schedule = LocalBackend(executor, parallel=4).run(flows)
    assert all(r.status is Status.PASSED for r in schedule.results)
    assert hits == ["/openapi.json"]
    assert json.loads((tmp_path / "openapi.json").read_text())["openapi"] == "3.0.0"


def test_an_unknown_strategy_is_a_config_error_naming_the_key_and_the_choices(
    tmp_path: Path,
) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "nocrud.yaml").write_text("project: demo\napp:\n  image: demo:1\n")
    config = load_config(tmp_path / "nocrud.yaml", env={})
    assert provisioner_for(config).name == "image"
    for name in ("pool", "template", "migrate", "external"):
        if name in STRATEGIES:
            continue
        strategy = config.model_copy(
            update={"run": config.run.model_copy(update={"strategy": name})}
        )
        with pytest.raises(ConfigError) as caught:
            provisioner_for(strategy)
        assert f"run.strategy: {name!r}" in str(caught.value)
        assert "'image'" in str(caught.value)


def test_a_configuration_problem_stops_the_run_after_the_first_flow() -> None:
    from nocrud.environment import MisconfigurationError

    problem = MisconfigurationError("app.health_path: GET /healthz answered 404 Not Found")
    provisioner = FakeProvisioner(fail=problem)
    executor = FlowExecutor(provisioner, flow_timeout=5)
    backend = LocalBackend(executor, parallel=1)
    executor.stop_run = backend.stop
    schedule = backend.run([Flow(f"flow_{i}", passes) for i in range(5)])
    first, *rest = schedule.results
    assert (first.status, first.message) == (Status.ERROR, str(problem))
    assert {r.status for r in rest} == {Status.SKIPPED}
    assert (
        rest[0].message == "not run: run stopped by a configuration problem (see the first error)"
    )
    assert executor.configuration_problem is problem
    assert provisioner.acquired == ["flow_0"]


def test_flows_started_beside_the_first_to_meet_a_configuration_problem_do_not_repeat_it() -> None:
    """Issue 21 item 11: the advice and its app logs are said once per run."""
    from nocrud.environment import MisconfigurationError

    executor = FlowExecutor(FakeProvisioner(), flow_timeout=5)
    first, second = (
        MisconfigurationError("app.health_path: GET /health answered 404 NOT FOUND"),
        MisconfigurationError("app.health_path: GET /health answered 404 NOT FOUND"),
    )
    first.app_logs = second.app_logs = "Listening at: http://0.0.0.0:8000"
    # Two flows whose environments had started before the run stopped.
    executor.provisioner = FakeProvisioner(fail=first)
    one = executor.run(Flow("flow_a", passes), 0)
    executor.provisioner = FakeProvisioner(fail=second)
    two = executor.run(Flow("flow_b", passes), 1)
    assert (one.message, one.app_logs) == (str(first), "Listening at: http://0.0.0.0:8000")
    assert two.status is Status.ERROR
    assert two.message == (
        "environment did not start: the same configuration problem as flow_a (its block says "
        "what it is and how to fix it)"
    )
    assert two.app_logs == ""
