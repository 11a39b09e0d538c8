"""`nocrud up --broker` is recorded in the run store like a local run, flow by flow as it goes,
and the console's Cancel stops it like Ctrl-C.

The real CLI is the coordinator, on a real Redis (Debian's ``redis-server``); the worker is
the real task body (:meth:`WorkerService.run_task`) fed the Celery messages from the broker's
queue, with a provisioner stand-in: the one Docker seam. No Docker.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nocrud.config import load_config
from nocrud.scheduler.celery_backend import queue_name, redis_client
from nocrud.store import RunStore
from nocrud.worker.service import WorkerOptions, WorkerService
from tests.unit.scheduler.test_celery_backend import FakeProvisioner

NOCRUD = str(Path(sys.executable).parent / "nocrud")

FLOWS = '''
from nocrud import flow


@flow
def quick(ctx):
    """Passes."""


@flow
def failing(ctx):
    assert 1 == 2, "one is not two"
'''


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server (.ci/run does)")
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [server, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"unix://{sock}?db=0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    package = f"brokerflows_{uuid.uuid4().hex[:8]}"  # flows are imported by name
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "two.py").write_text(FLOWS)
    (tmp_path / "nocrud.yaml").write_text(
        'project: demo\napp:\n  image: demo/app:1\ndatabase:\n  migrate: ["true"]\n'
        f"flows:\n  path: {package}\ntimeouts:\n  db_ready: 5\n  app_ready: 5\n  flow: 20\n"
    )
    return tmp_path


class Daemon:
    def ping(self) -> bool:
        return True


def serve_tasks(project: Path, redis_url: str, stop: threading.Event) -> None:
    """A worker without Docker: the real task body for every task the broker queues."""
    from nocrud.flows import discover

    config = load_config(project / "nocrud.yaml")
    options = WorkerOptions(broker=redis_url, name="w1@test", concurrency=1, visibility_timeout=60)
    service = WorkerService(config, options, say=lambda _line: None)
    service._redis = redis_client(redis_url)
    service._provisioner = FakeProvisioner()  # type: ignore[assignment]
    service._engine = type("Engine", (), {"client": Daemon()})()
    service.flows = {f.name: f for f in discover(config.flows.path)}
    broker = redis_client(redis_url)
    while not stop.is_set():
        popped = broker.brpop(queue_name(config.project), timeout=1)
        if popped is None:
            continue
        message = json.loads(popped[1])
        _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        time.sleep(0.3)  # the run is seen running before each flow ends
        service.run_task(**kwargs)


def test_a_broker_run_is_recorded_flow_by_flow(project: Path, redis_url: str) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=serve_tasks, args=(project, redis_url, stop), daemon=True)
    worker.start()
    try:
        done = subprocess.run(
            [NOCRUD, "up", "--broker", redis_url, "-j", "1"],
            cwd=project,
            env={**os.environ, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        stop.set()
        worker.join(10)
    assert done.returncode == 1, done.stdout + done.stderr  # one flow fails on purpose

    store = RunStore(f"sqlite:///{project / '.nocrud' / 'history.db'}")
    (run,), total = store.list_runs()
    assert total == 1
    assert (run["trigger"], run["status"], run["exit_code"]) == ("cli", "failed", 1)
    assert (run["total"], run["passed"], run["failed"]) == (2, 1, 1)
    flows = {f["name"]: f for f in store.run_flows(run["id"])}
    assert {n: f["status"] for n, f in flows.items()} == {"quick": "passed", "failing": "failed"}
    assert flows["failing"]["message"].startswith("one is not two")
    # Heard live, as a local run is: each flow's start was recorded when it started, and
    # its result line went into the run's log when it finished (not only at the end).
    assert all(f["started_at"] is not None for f in flows.values())
    log = [line for _, line in store.log_lines(run["id"])]
    assert [line.split()[0] for line in log] == ["started", "PASSED", "started", "FAILED"], log
    assert store.flow_history("failing")[0]["run_id"] == run["id"]
    store.close()


def test_a_broker_run_cancelled_from_the_console_stops_like_ctrl_c(
    project: Path, redis_url: str
) -> None:
    # No worker takes the tasks: the run waits, as one whose flows are queued does.
    up = subprocess.Popen(
        [NOCRUD, "up", "--broker", redis_url],
        cwd=project,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        store = RunStore(f"sqlite:///{project / '.nocrud' / 'history.db'}")
        deadline = time.monotonic() + 60
        while not (runs := store.list_runs()[0]):
            assert up.poll() is None and time.monotonic() < deadline, "the run was not recorded"
            time.sleep(0.1)
        run_id = runs[0]["id"]
        assert store.request_cancel(run_id)  # what the console's Cancel does for a CLI run
        out, _ = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()
    assert up.returncode == 130, out
    assert f"cancelled by the console (run {run_id}): stopping like Ctrl-C" in out, out
    assert "queued flows revoked" in out, out
    run = store.get_run(run_id)
    assert run is not None
    assert (run["status"], run["exit_code"], run["skipped"]) == ("cancelled", 130, 2)
    store.close()
