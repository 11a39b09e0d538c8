"""The Celery backend's protocol, with a real Redis (Debian's redis-server) and no Docker.

The coordinator (:class:`CeleryBackend`) sends tasks through a recording stand-in for
Celery's ``send_task`` and hears events from a real Redis; the worker's task body
(:meth:`WorkerService.run_task`) runs flows through the real executor with a
provisioner stand-in: the one Docker seam. Together they pin the failure semantics:
attempts keyed by run and flow, the first result counting, a lost worker's flow
running once more with the reason, a dead Docker daemon handing the task back, a
different checkout refused, a stopped or orphaned run torn down.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nocrud.config import load_config
from nocrud.docker.postgres import DatabaseAddress
from nocrud.errors import UsageError
from nocrud.results import FlowResult, Status
from nocrud.scheduler.celery_backend import (
    LEASE_CHECK,
    LEASE_TTL,
    TASK_NAME,
    BrokerError,
    CeleryBackend,
    Keys,
    broker_urls,
    check_broker,
    make_app,
)
from nocrud.worker.checkout import compare, fingerprint
from nocrud.worker.service import WorkerOptions, WorkerService, hard_time_limit

# ---------------------------------------------------------------- a real Redis


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server (.ci/run does)")
    sock = tmp_path_factory.mktemp("redis") / "redis.sock"
    proc = subprocess.Popen(
        [server, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"unix://{sock}?db=0"
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis(redis_url: str) -> Any:
    from nocrud.scheduler.celery_backend import redis_client

    client = redis_client(redis_url)
    client.flushdb()
    return client


# ---------------------------------------------------------------- URLs and limits


def test_broker_urls_for_celery_and_redis() -> None:
    assert broker_urls("redis://ci-redis:6379/0") == ("redis://ci-redis:6379/0",) * 2
    assert broker_urls("unix:///run/r.sock?db=2") == (
        "redis+socket:///run/r.sock?virtual_host=2",
        "unix:///run/r.sock?db=2",
    )
    with pytest.raises(UsageError, match=r"not a Redis URL: write redis://HOST:PORT/DB"):
        broker_urls("amqp://rabbit//")


def test_an_unreachable_broker_is_named_with_what_to_do() -> None:
    with pytest.raises(BrokerError, match=r"cannot reach the broker at redis://127.0.0.1:1/0"):
        check_broker("redis://127.0.0.1:1/0")


def test_the_app_carries_the_failure_settings() -> None:
    conf = make_app("redis://127.0.0.1:1/0", visibility_timeout=120).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    options = conf.broker_transport_options
    assert options["visibility_timeout"] == 120
    # A lost task is looked for every 10 s, not kombu's default 10 x 10 s.
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] == 10


# ---------------------------------------------------------------- the checkout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    # A package name of its own: flows are imported, and each test has its own copy.
    package = f"celeryflows_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "test_some.py").write_text(FLOWS)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001.sql").write_text("CREATE TABLE t (id int);")
    (tmp_path / "nocrud.yaml").write_text(
        "project: demo\napp:\n  image: demo/app:1\n"
        'database:\n  migrate: ["true"]\n  migrations: [migrations]\n'
        f"flows:\n  path: {package}\n"
        "timeouts:\n  db_ready: 5\n  app_ready: 5\n  flow: 20\n"
    )
    return tmp_path


FLOWS = '''
import time
from nocrud import flow

@flow
def quick(ctx):
    """Passes."""

@flow
def failing(ctx):
    assert 1 == 2, "one is not two"

@flow
def slow(ctx):
    for _ in range(400):
        time.sleep(0.05)
'''


def test_fingerprint_names_the_part_that_differs(project: Path) -> None:
    config = load_config(project / "nocrud.yaml")
    before = fingerprint(config)
    assert compare(before, fingerprint(config)) == []
    (project / "migrations" / "0002.sql").write_text("ALTER TABLE t ADD x int;")
    assert compare(before, fingerprint(config)) == ["migrations"]
    config.flows.path.joinpath("test_some.py").write_text(FLOWS + "\n# edited\n")
    assert compare(before, fingerprint(config)) == ["flows", "migrations"]


def test_a_task_limit_above_the_visibility_timeout_is_refused(project: Path) -> None:
    config = load_config(project / "nocrud.yaml")
    assert hard_time_limit(config) == 5 + 5 + 20 + 15
    options = WorkerOptions(broker="redis://x:1/0", name="w", concurrency=1, visibility_timeout=20)
    with pytest.raises(UsageError, match=r"a task may take up to 45 s.*raise --visibility-timeout"):
        WorkerService(config, options, say=print).open(app=None, console=None)


# ---------------------------------------------------------------- the worker's task body


@dataclass
class FakeTarget:
    """One environment, as far as the executor can tell; the flow's requests fail once killed."""

    killed: bool = False
    base_url: str = "http://127.0.0.1:9"
    database: DatabaseAddress = field(
        default_factory=lambda: DatabaseAddress("127.0.0.1", 9, "d", "u", "p")
    )

    def app_logs(self, tail: int = 50) -> str:
        return "app log line"

    def casualties(self) -> list[str]:
        return []

    def kill(self) -> None:
        self.killed = True

    def keep(self) -> str:
        return ""


class FakeProvisioner:
    name = "fake"

    def __init__(self) -> None:
        self.targets: list[FakeTarget] = []

    def prepare(self, run: Any) -> None:
        pass

    @contextlib.contextmanager
    def acquire(self, flow: str, *, fresh: bool = False) -> Iterator[FakeTarget]:
        target = FakeTarget()
        self.targets.append(target)
        yield target

    def kill_all(self) -> int:
        for target in self.targets:
            target.kill()
        return len(self.targets)

    def close(self) -> None:
        pass


class FakeClient:
    """The daemon's ping: answers ``answers`` times (forever when None), then is refused."""

    def __init__(self, answers: int | None = None) -> None:
        self.answers = answers

    def ping(self) -> bool:
        if self.answers is not None:
            if self.answers <= 0:
                raise ConnectionError("connection refused")
            self.answers -= 1
        return True


class RecordingApp:
    """Celery's send_task and control, recorded."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.revoked: list[str] = []
        self.cancelled: list[tuple[str, list[str]]] = []
        self.control = self

    def send_task(self, name: str, *, kwargs: dict[str, Any], task_id: str, queue: str) -> None:
        assert name == TASK_NAME
        self.sent.append({"kwargs": kwargs, "task_id": task_id, "queue": queue})

    def revoke(self, ids: list[str]) -> None:
        self.revoked.extend(ids)

    def cancel_consumer(self, queue: str, destination: list[str]) -> None:
        self.cancelled.append((queue, destination))

    def ping(self, timeout: float) -> list[Any]:
        return []


def worker(project: Path, redis_url: str, name: str, app: RecordingApp) -> WorkerService:
    """A worker prepared without Docker: the provisioner and the daemon's ping are stand-ins."""
    from nocrud.flows import discover
    from nocrud.scheduler.celery_backend import redis_client

    config = load_config(project / "nocrud.yaml")
    options = WorkerOptions(broker=redis_url, name=name, concurrency=2, visibility_timeout=60)
    service = WorkerService(config, options, say=lambda _line: None)
    service._redis = redis_client(redis_url)
    service._app = app
    service._provisioner = FakeProvisioner()
    service._engine = type("Engine", (), {"client": FakeClient()})()
    service.flows = {f.name: f for f in discover(config.flows.path)}
    return service


def task(service: WorkerService, run: str, flow: str, **changes: Any) -> dict[str, Any]:
    return {
        "run": run,
        "flow": flow,
        "index": 0,
        "checkout": service.fingerprint,
        "coordinator": "laptop",
    } | changes


def events(redis: Any, run: str) -> list[dict[str, Any]]:
    return [json.loads(e) for e in redis.lrange(Keys(run).events, 0, -1)]


def alive(redis: Any, run: str) -> None:
    redis.set(Keys(run).alive, "laptop", ex=60)


def test_a_flow_runs_and_its_result_travels_as_a_dict(
    project: Path, redis_url: str, redis: Any
) -> None:
    service = worker(project, redis_url, "w1@a", RecordingApp())
    alive(redis, "r1")
    assert service.run_task(**task(service, "r1", "failing")) == "failed"
    started, finished = events(redis, "r1")
    assert (started["type"], started["host"], started["attempt"]) == ("started", "w1@a", 1)
    result = FlowResult.from_dict(finished["result"])
    assert (result.status, result.host) == (Status.FAILED, "w1@a")
    assert result.message.startswith("one is not two")
    assert result.app_logs == "app log line"


def test_a_bug_in_the_worker_costs_the_flow_not_the_run(
    project: Path, redis_url: str, redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = worker(project, redis_url, "w1@a", RecordingApp())
    alive(redis, "r0")

    def broken(*_args: Any) -> FlowResult:
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "_execute", broken)
    assert service.run_task(**task(service, "r0", "quick")) == "error"
    result = FlowResult.from_dict(events(redis, "r0")[-1]["result"])
    assert result.message == "internal error on worker w1@a: RuntimeError: boom"
    assert "RuntimeError: boom" in result.traceback


def test_a_redelivered_task_never_counts_twice(project: Path, redis_url: str, redis: Any) -> None:
    service = worker(project, redis_url, "w1@a", RecordingApp())
    alive(redis, "r2")
    assert service.run_task(**task(service, "r2", "quick")) == "passed"
    assert service.run_task(**task(service, "r2", "quick")) == (
        "dropped: the flow already has a result"
    )
    assert [e["type"] for e in events(redis, "r2")] == ["started", "finished"]


def test_a_lost_workers_flow_runs_again_once_saying_why(
    project: Path, redis_url: str, redis: Any
) -> None:
    first = worker(project, redis_url, "w1@a", RecordingApp())
    second = worker(project, redis_url, "w2@b", RecordingApp())
    alive(redis, "r3")
    # w1 took attempt 1 and was SIGKILLed mid-flow: the broker delivers the task again.
    keys = Keys("r3")
    redis.incr(keys.attempt("quick"))
    redis.hset(keys.attempts("quick"), "1", json.dumps({"host": "w1@a", "state": "running"}))
    assert second.run_task(**task(second, "r3", "quick")) == "passed"
    result = FlowResult.from_dict(events(redis, "r3")[-1]["result"])
    assert (result.attempt, result.host, result.status) == (2, "w2@b", Status.PASSED)
    assert "attempt 1 on w1@a did not finish: its worker was lost" in result.retried
    # A third delivery (w2 lost too, in another story) would not run the flow again.
    redis.delete(keys.done("quick"))
    assert first.run_task(**task(first, "r3", "quick")) == "error"
    third = FlowResult.from_dict(events(redis, "r3")[-1]["result"])
    assert third.message.startswith("not run a third time: attempt 1 on w1@a")


def test_a_late_delivery_while_another_attempt_runs_counts_nothing(
    project: Path, redis_url: str, redis: Any
) -> None:
    first = worker(project, redis_url, "w1@a", RecordingApp())
    alive(redis, "r8")
    keys = Keys("r8")
    # Attempt 2 runs on w2 (its lease is fresh) when the broker's visibility timeout
    # hands the original task to w1 once more.
    redis.set(keys.attempt("quick"), 2)
    redis.set(keys.lease("quick"), "2 w2@b", ex=20)
    outcome = first.run_task(**task(first, "r8", "quick"))
    assert outcome == "dropped: attempt 2 of the flow runs on w2@b"
    assert events(redis, "r8") == []
    assert not redis.exists(keys.done("quick"))


def test_a_running_attempt_renews_its_lease(project: Path, redis_url: str, redis: Any) -> None:
    service = worker(project, redis_url, "w1@a", RecordingApp())
    alive(redis, "r9")
    keys = Keys("r9")
    seen: list[tuple[Any, int]] = []

    def look() -> None:
        seen.append((redis.get(keys.lease("slow")), redis.pttl(keys.lease("slow"))))
        redis.set(keys.cancel, "interrupted")

    threading.Timer(1.5, look).start()
    assert service.run_task(**task(service, "r9", "slow")) == "error"
    ((lease, ttl),) = seen
    assert lease == "1 w1@a"
    assert ttl > (LEASE_TTL - 1.5) * 1000  # renewed since the flow started


def test_a_dead_docker_daemon_is_an_error_with_its_cause_then_another_worker_runs_it(
    project: Path, redis_url: str, redis: Any
) -> None:
    app = RecordingApp()
    service = worker(project, redis_url, "w1@a", app)
    alive(redis, "r4")
    service._engine.client.answers = 1  # answers before the flow, dies while it fails
    outcome = service.run_task(**task(service, "r4", "failing"))
    assert outcome == "handed back: Docker stopped answering during the flow"
    failed = events(redis, "r4")[-1]
    assert failed["type"] == "attempt_failed"
    assert failed["reason"].startswith("FAILED: one is not two")
    assert "; the Docker daemon of worker w1@a" in failed["reason"]
    assert app.cancelled == [("nocrud.demo", ["w1@a"])]  # it takes no more tasks
    assert app.sent[0]["kwargs"]["flow"] == "failing"
    other = worker(project, redis_url, "w2@b", app)
    assert other.run_task(**app.sent[0]["kwargs"]) == "failed"
    result = FlowResult.from_dict(events(redis, "r4")[-1]["result"])
    assert result.attempt == 2
    assert result.retried.startswith("attempt 1 on w1@a: FAILED: one is not two")
    assert "the Docker daemon of worker w1@a" in result.retried


def test_a_daemon_dying_while_the_flow_is_examined_hands_the_flow_back(
    project: Path, redis_url: str, redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = RecordingApp()
    service = worker(project, redis_url, "w1@a", app)
    alive(redis, "r10")
    service._engine.client.answers = 1  # answers before the flow, then is gone

    def examine(*_args: Any) -> FlowResult:
        # As the executor does when a failed flow's containers cannot be inspected.
        raise ConnectionError("inspect: connection refused")

    monkeypatch.setattr(service, "_execute", examine)
    outcome = service.run_task(**task(service, "r10", "slow"))
    assert outcome == "handed back: Docker stopped answering during the flow"
    failed = events(redis, "r10")[-1]
    assert failed["reason"].startswith("ERROR: ConnectionError: inspect: connection refused; ")
    assert app.sent[0]["kwargs"]["flow"] == "slow"
    assert not redis.exists(Keys("r10").done("slow"))


def test_a_worker_with_another_checkout_refuses_saying_which_part(
    project: Path, redis_url: str, redis: Any
) -> None:
    service = worker(project, redis_url, "w1@a", RecordingApp())
    alive(redis, "r5")
    theirs = {**service.fingerprint, "migrations": "0" * 16}
    assert service.run_task(**task(service, "r5", "quick", checkout=theirs)) == "error"
    result = FlowResult.from_dict(events(redis, "r5")[-1]["result"])
    assert "worker w1@a refused the flow: its checkout differs from the coordinator's" in (
        result.message
    )
    assert "(laptop) in migrations: check out the same commit" in result.message


def test_tasks_of_a_stopped_or_orphaned_run_run_nothing(
    project: Path, redis_url: str, redis: Any
) -> None:
    service = worker(project, redis_url, "w1@a", RecordingApp())
    assert service.run_task(**task(service, "r6", "quick")) == (
        "dropped: the coordinator is gone"  # no heartbeat
    )
    (dropped,) = events(redis, "r6")  # heard by a coordinator that was only starved
    assert (dropped["type"], dropped["flow"]) == ("dropped", "quick")
    alive(redis, "r6")
    redis.set(Keys("r6").cancel, "interrupted")
    assert service.run_task(**task(service, "r6", "quick")) == "dropped: the run was stopped"
    assert len(events(redis, "r6")) == 1


def test_a_living_coordinator_sends_a_dropped_flow_again(redis_url: str, redis: Any) -> None:
    app, heard = RecordingApp(), Heard()
    backend = coordinator(redis_url, app, heard, run_id="c5")
    lapsed = "the coordinator's heartbeat had lapsed"
    play(
        redis,
        "c5",
        [
            {"type": "dropped", "flow": "a", "host": "w1@a", "reason": lapsed},
            {"type": "started", "flow": "a", "host": "w2@b", "attempt": 1},
            finished("a", "w2@b"),
        ],
    )
    schedule = backend.run([Named("a")])
    assert [s["task_id"] for s in app.sent] == ["c5.0", "c5.0.s1"]
    assert schedule.results[0].status is Status.PASSED


def test_a_running_flow_is_torn_down_when_its_coordinator_dies(
    project: Path, redis_url: str, redis: Any
) -> None:
    service = worker(project, redis_url, "w1@a", RecordingApp())
    alive(redis, "r7")
    threading.Timer(0.5, redis.delete, args=[Keys("r7").alive]).start()
    started = time.monotonic()
    assert service.run_task(**task(service, "r7", "slow")) == "error"
    assert time.monotonic() - started < 8  # not the flow's 20 s
    result = FlowResult.from_dict(events(redis, "r7")[-1]["result"])
    assert result.message == "flow abandoned: run interrupted"
    assert service._provisioner.targets[-1].killed  # type: ignore[union-attr]


# ---------------------------------------------------------------- the coordinator


@dataclass(frozen=True)
class Named:
    name: str


class Heard:
    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.finished: list[FlowResult] = []

    def flow_started(self, name: str, worker: int) -> None:
        self.started.append((name, worker))

    def flow_finished(self, result: FlowResult) -> None:
        self.finished.append(result)


def coordinator(redis_url: str, app: RecordingApp, listener: Heard, **kwargs: Any) -> Any:
    return CeleryBackend(
        broker=redis_url,
        run_id=kwargs.pop("run_id", "c1"),
        project="demo",
        checkout={"flows": "f"},
        app=app,
        listener=listener,
        stop_grace=kwargs.pop("stop_grace", 2.0),
        **kwargs,
    )


def play(redis: Any, run: str, script: list[dict[str, Any]], delay: float = 0.2) -> None:
    """A worker's events, pushed from another thread."""

    def push() -> None:
        for event in script:
            time.sleep(delay)
            redis.rpush(Keys(run).events, json.dumps(event))

    threading.Thread(target=push, daemon=True).start()


def push(redis: Any, run: str, event: dict[str, Any]) -> None:
    redis.rpush(Keys(run).events, json.dumps(event))


def finished(name: str, host: str, status: str = "passed", attempt: int = 1) -> dict[str, Any]:
    result = FlowResult(name=name, status=Status(status), attempt=attempt).to_dict()
    return {"type": "finished", "flow": name, "host": host, "result": result}


def test_the_coordinator_sends_one_task_per_flow_and_reports_like_a_local_run(
    redis_url: str, redis: Any
) -> None:
    app, heard = RecordingApp(), Heard()
    backend = coordinator(redis_url, app, heard)
    play(
        redis,
        "c1",
        [
            {"type": "started", "flow": "b", "host": "w2@b", "attempt": 1},
            {"type": "started", "flow": "a", "host": "w1@a", "attempt": 1},
            finished("b", "w2@b"),
            finished("a", "w1@a", "failed"),
            finished("a", "w9@late"),  # a late second result of "a": not counted
        ],
    )
    schedule = backend.run([Named("a"), Named("b")])
    assert [s["kwargs"]["flow"] for s in app.sent] == ["a", "b"]
    assert {s["queue"] for s in app.sent} == {"nocrud.demo"}
    assert app.sent[0]["kwargs"]["checkout"] == {"flows": "f"}
    assert [(r.name, r.status, r.host, r.worker) for r in schedule.results] == [
        ("a", Status.FAILED, "w1@a", 2),
        ("b", Status.PASSED, "w2@b", 1),
    ]
    assert heard.started == [("b", 1), ("a", 2)]
    assert [r.name for r in heard.finished] == ["b", "a"]
    assert not redis.exists(Keys("c1").alive)  # the heartbeat ends with the run


def test_a_lapsed_lease_sends_the_flow_again_at_once(redis_url: str, redis: Any) -> None:
    app, heard = RecordingApp(), Heard()
    backend = coordinator(redis_url, app, heard, run_id="c6")
    keys = Keys("c6")

    def worker_lost() -> None:
        # w1 started attempt 1, renewed its lease once, and was SIGKILLed.
        redis.set(keys.lease("a"), "1 w1@a", px=300)
        push(redis, "c6", {"type": "started", "flow": "a", "host": "w1@a", "attempt": 1})
        deadline = time.monotonic() + 10
        while len(app.sent) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        redis.set(keys.lease("a"), "2 w2@b", ex=20)
        push(redis, "c6", {"type": "started", "flow": "a", "host": "w2@b", "attempt": 2})
        push(redis, "c6", finished("a", "w2@b", attempt=2))

    threading.Thread(target=worker_lost, daemon=True).start()
    started = time.monotonic()
    schedule = backend.run([Named("a")])
    assert [s["task_id"] for s in app.sent] == ["c6.0", "c6.0.l1"]
    assert time.monotonic() - started < 3 * LEASE_CHECK + 1  # not the visibility timeout
    assert (schedule.results[0].status, schedule.results[0].attempt) == (Status.PASSED, 2)


def test_stop_revokes_what_is_queued_and_waits_for_what_runs(redis_url: str, redis: Any) -> None:
    app, heard = RecordingApp(), Heard()
    backend = coordinator(redis_url, app, heard, run_id="c2")
    play(redis, "c2", [{"type": "started", "flow": "a", "host": "w1@a", "attempt": 1}])
    threading.Timer(0.6, backend.stop, args=["interrupted"]).start()
    play(redis, "c2", [finished("a", "w1@a", "error")], delay=1.2)
    schedule = backend.run([Named("a"), Named("b"), Named("c")])
    assert schedule.interrupted
    assert app.revoked == ["c2.1", "c2.2"]
    assert redis.get(Keys("c2").cancel) == "interrupted"
    assert [(r.name, r.status) for r in schedule.results] == [
        ("a", Status.ERROR),
        ("b", Status.SKIPPED),
        ("c", Status.SKIPPED),
    ]
    assert schedule.results[1].message == "not run: run interrupted"


def test_fail_fast_revokes_the_rest(redis_url: str, redis: Any) -> None:
    app, heard = RecordingApp(), Heard()
    backend = coordinator(redis_url, app, heard, run_id="c3", fail_fast=True)
    play(
        redis,
        "c3",
        [
            {"type": "started", "flow": "a", "host": "w1@a", "attempt": 1},
            finished("a", "w1@a", "failed"),
        ],
    )
    schedule = backend.run([Named("a"), Named("b")])
    assert schedule.stopped_by_fail_fast
    assert app.revoked == ["c3.1"]
    assert schedule.results[1].status is Status.SKIPPED


def test_a_flow_never_given_back_after_a_stop_is_an_error_naming_its_worker(
    redis_url: str, redis: Any
) -> None:
    app, heard = RecordingApp(), Heard()
    backend = coordinator(redis_url, app, heard, run_id="c4", stop_grace=0.5)
    play(redis, "c4", [{"type": "started", "flow": "a", "host": "w1@a", "attempt": 1}])
    threading.Timer(0.5, backend.stop, args=["interrupted"]).start()
    schedule = backend.run([Named("a")])
    assert schedule.results[0].status is Status.ERROR
    assert "no result from worker w1@a after the run stopped" in schedule.results[0].message


def test_doctor_checks_the_broker_and_says_when_no_worker_listens(redis_url: str) -> None:
    from nocrud.cli.doctor import CheckStatus, broker_checks

    checks = broker_checks(redis_url)
    assert [(c.name, c.status) for c in checks] == [
        ("broker", CheckStatus.OK),
        ("workers", CheckStatus.WARN),
    ]
    assert "start `nocrud worker --broker URL` on each Docker host" in checks[1].fix
    (down,) = broker_checks("redis://127.0.0.1:1/0")
    assert down.status is CheckStatus.FAIL
    assert "cannot reach the broker at redis://127.0.0.1:1/0" in down.detail
