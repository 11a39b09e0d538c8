"""Celery workers on two Docker hosts, for real: the rig of benchmarks/workers.py.

One rig for the module (starting it is the expensive part: two Docker-in-Docker
daemons, the project's images exported once and imported into both): Debian's
``redis-server`` on loopback, two DinD daemons from images/dind, a ``nocrud worker``
(``-j 2``) in each daemon's network namespace, the coordinator (``nocrud up --broker``)
on this machine. The tests, in this order (the last one kills a daemon for good):

* 16 quick flows spread over both workers, every one passing, named with its host;
* a worker SIGKILLed mid-flow: every flow reported exactly once, the interrupted ones
  as attempt 2 with the reason, nothing left on the killed worker's daemon;
* the coordinator SIGKILLed mid-run: the workers tear their flows down, and nothing
  is left on either daemon within the 60 s docs/workers.md promises;
* a DinD daemon killed mid-flow (``docker kill``): that flow's attempt is ERROR with
  the cause, and the flow runs again on the other worker.

"Mid-flow" is exact: the slow and long flows leave a marker when their pause begins
(after their first request), and the tests strike only then.

Every object carries ``nocrud.e2e=<project>`` and the rig removes it all.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import benchmark_module

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

#: docs/workers.md: "Nothing of the run is left on any worker within 60 s of the
#: coordinator's death."
ORPHAN_TEARDOWN = 60.0
RUN_TIMEOUT = 300


#: benchmarks/workers.py, whose Rig these tests share with the benchmark.
bench = benchmark_module("workers")


@pytest.fixture(scope="module")
def rig(
    docker_client: Any, base_images: None, project: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    import shutil

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server (.ci/run does)")
    if shutil.which("nsenter") is None:
        pytest.skip("nsenter is not installed (util-linux): the workers run in the daemons' netns")
    built = bench.build_dind_image(docker_client)
    directory = tmp_path_factory.mktemp("rig")
    started = time.monotonic()
    try:
        with bench.Rig(
            docker_client,
            project,
            directory,
            concurrency=2,
            quick=16,
            slow=6,
            pause=6.0,
            long=6,
            say=lambda line: print(line, flush=True),
        ) as the_rig:
            print(f"rig ready in {time.monotonic() - started:.0f} s", flush=True)
            yield the_rig
    finally:
        if built:
            docker_client.images.remove(bench.DIND_IMAGE, force=True)


def _wait(what: str, check: Callable[[], Any], timeout: float, proc: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the coordinator exited {proc.returncode} first")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


def _flows(results: Path) -> list[dict[str, Any]]:
    return list(json.loads(results.read_text())["flows"])


def _selected(*names: str) -> list[str]:
    return [arg for name in names for arg in ("-f", name)]


def _nothing_left(rig: Any, hosts: list[Any], timeout: float) -> float:
    """Seconds until no labelled object of the project is left on ``hosts``' daemons."""
    started = time.monotonic()
    _wait(
        f"nothing left on {', '.join(h.name for h in hosts)} "
        f"(left: {[rig.leftovers(h) for h in hosts]})",
        lambda: all(not rig.leftovers(h) for h in hosts),
        timeout,
    )
    return time.monotonic() - started


def test_sixteen_flows_spread_over_both_workers_and_leave_nothing(rig: Any) -> None:
    results = rig.dir / "spread.json"
    names = [f"quick_{i:02d}" for i in range(16)]
    started = time.monotonic()
    proc = rig.up(*_selected(*names), "--json", str(results), timeout=RUN_TIMEOUT)
    print(f"\n16 flows on 2 workers: {time.monotonic() - started:.1f} s")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    flows = _flows(results)
    assert sorted(f["name"] for f in flows) == names
    assert {f["status"] for f in flows} == {"passed"}, out
    hosts = {h.name for h in rig.hosts}
    assert {f["host"] for f in flows} == hosts, "both workers got work"
    assert {f["attempt"] for f in flows} == {1}
    for name in hosts:  # the terminal names each flow's worker host too
        assert f" on {name}" in out
    # A worker removes an environment in the background once its result is sent.
    took = _nothing_left(rig, rig.hosts, 15)
    print(f"both daemons clean {took:.1f} s after the run")


def test_a_worker_killed_mid_flow_runs_its_flows_again_once_each(rig: Any) -> None:
    first, second = rig.hosts
    results = rig.dir / "killed-worker.json"
    names = [f"slow_{i:02d}" for i in range(6)]
    rig.clear_markers()
    proc = rig.start_up(*_selected(*names), "--json", str(results), output=rig.dir / "k.out")
    try:
        victims = _wait(
            "a flow in its pause on the first worker", lambda: rig.pausing_on(first), 120, proc
        )
        assert first.worker is not None
        first.worker.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        code = proc.wait(RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = (rig.dir / "k.out").read_text()
    print(f"\nworker SIGKILLed: the run ended {time.monotonic() - killed:.1f} s later\n{out}")
    assert code == 0, out
    flows = _flows(results)
    assert sorted(f["name"] for f in flows) == names, "every flow exactly once"
    assert {f["status"] for f in flows} == {"passed"}, out
    again = {f["name"]: f for f in flows if f["attempt"] == 2}
    assert set(victims) <= set(again), out
    for flow in again.values():
        assert flow["host"] == second.name
        assert f"attempt 1 on {first.name} did not finish: its worker was lost" in flow["retried"]
    assert all(f["attempt"] == 1 for f in flows if f["name"] not in again)
    assert "its worker is lost; sending the flow again" in out
    # The killed worker's reaper removes its environments.
    took = _nothing_left(rig, [first, second], 60)
    print(f"the killed worker's daemon was clean {took:.1f} s after the run")
    rig.stop_worker(first)
    rig.start_worker(first)
    rig.wait_for_worker(first)


def test_a_killed_coordinator_leaves_nothing_on_the_workers(rig: Any) -> None:
    results = rig.dir / "orphan.json"
    names = [f"long_{i:02d}" for i in range(6)]  # four run, two wait in the queue
    rig.clear_markers()
    proc = rig.start_up(*_selected(*names), "--json", str(results), output=rig.dir / "o.out")
    try:
        _wait(
            "two long flows in their pause on each worker",
            lambda: all(len(rig.pausing_on(h)) == 2 for h in rig.hosts),
            120,
            proc,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The long flows pause 100 s: only the teardown on the lapsed heartbeat ends them in time.
    took = _nothing_left(rig, rig.hosts, ORPHAN_TEARDOWN)
    print(f"\ncoordinator SIGKILLed: nothing left on either daemon {took:.1f} s later")
    queue = rig.redis()
    try:
        # The queued flows were dropped unrun, not left for the next coordinator.
        _wait(
            "the run's queued tasks dropped",
            lambda: queue.llen(f"nocrud.{rig.project}") == 0,
            ORPHAN_TEARDOWN - took,
        )
    finally:
        queue.close()
    time.sleep(2)
    assert [rig.leftovers(h) for h in rig.hosts] == [[], []]
    assert not results.exists()


def test_a_dead_docker_daemon_is_an_error_with_its_cause_then_runs_elsewhere(
    docker_client: Any, rig: Any
) -> None:
    first, second = rig.hosts
    results = rig.dir / "dead-daemon.json"
    names = [f"slow_{i:02d}" for i in range(4)]
    rig.clear_markers()
    proc = rig.start_up(*_selected(*names), "--json", str(results), output=rig.dir / "d.out")
    try:
        victims = _wait(
            "a flow in its pause on the second worker", lambda: rig.pausing_on(second), 120, proc
        )
        docker_client.api.kill(second.container.id)
        code = proc.wait(RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = (rig.dir / "d.out").read_text()
    print(f"\nDinD daemon killed:\n{out}")
    assert code == 0, out
    flows = {f["name"]: f for f in _flows(results)}
    assert sorted(flows) == names
    assert {f["status"] for f in flows.values()} == {"passed"}, out
    down = f"the Docker daemon of worker {second.name}"
    for name in victims:
        flow = flows[name]
        assert (flow["attempt"], flow["host"]) == (2, first.name), out
        assert flow["retried"].startswith(f"attempt 1 on {second.name}: ERROR: "), flow["retried"]
        assert down in flow["retried"]
        assert f"{name}: attempt 1 on {second.name} did not count: ERROR: " in out
    _nothing_left(rig, [first], 15)
