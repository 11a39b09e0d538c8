"""Unit tests of nocrud.scheduler.pool with fake ``run_one`` callables: no Docker, milliseconds.

Ordering between threads is forced with Events and Barriers, never with sleeps, so
the tests are deterministic. Every wait has a timeout so a regression fails instead
of hanging.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from nocrud.results import FlowResult, Status
from nocrud.scheduler.pool import FAIL_FAST_MESSAGE, Scheduler

WAIT = 5.0  # seconds; only reached when something is broken


@dataclass(frozen=True)
class Flow:
    name: str


def flows(*names: str) -> list[Flow]:
    return [Flow(n) for n in names]


def passed(flow: Flow, worker: int) -> FlowResult:
    return FlowResult(name=flow.name, status=Status.PASSED)


class Recorder:
    """A RunListener that records every call, thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, str, object]] = []
        self.finished: dict[str, threading.Event] = {}

    def finished_event(self, name: str) -> threading.Event:
        with self.lock:
            return self.finished.setdefault(name, threading.Event())

    def flow_started(self, name: str, worker: int) -> None:
        with self.lock:
            self.events.append(("started", name, worker))

    def flow_finished(self, result: FlowResult) -> None:
        with self.lock:
            self.events.append(("finished", result.name, result.status))
        self.finished_event(result.name).set()


def test_parallel_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="parallel must be at least 1, got 0"):
        Scheduler(passed, parallel=0)


def test_no_flows_gives_an_empty_schedule() -> None:
    schedule = Scheduler(passed, parallel=4).run([])
    assert schedule.results == ()
    assert not schedule.interrupted
    assert not schedule.stopped_by_fail_fast


def test_a_scheduler_runs_once() -> None:
    scheduler = Scheduler(passed, parallel=1)
    scheduler.run(flows("a"))
    with pytest.raises(RuntimeError, match="runs once"):
        scheduler.run(flows("a"))


def test_results_come_back_in_input_order_when_flows_finish_in_reverse() -> None:
    names = ["a", "b", "c", "d"]
    all_started = threading.Barrier(len(names), timeout=WAIT)
    done = {n: threading.Event() for n in names}

    def run_one(flow: Flow, worker: int) -> FlowResult:
        all_started.wait()
        later = names[names.index(flow.name) + 1 :]
        if later:  # finish only after every later flow finished
            assert done[later[0]].wait(WAIT)
        done[flow.name].set()
        return FlowResult(name=flow.name, status=Status.PASSED, message=f"w{worker}")

    schedule = Scheduler(run_one, parallel=len(names)).run(flows(*names))

    assert [r.name for r in schedule.results] == names
    assert all(r.status is Status.PASSED for r in schedule.results)


def test_concurrency_cap_is_reached_and_never_exceeded() -> None:
    lock = threading.Lock()
    running = 0
    most = 0
    first_three = threading.Barrier(3, timeout=WAIT)

    def run_one(flow: Flow, worker: int) -> FlowResult:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        if flow.name in ("f0", "f1", "f2"):
            first_three.wait()  # the first three flows are provably running together
        else:
            time.sleep(0.001)
        with lock:
            running -= 1
        return passed(flow, worker)

    schedule = Scheduler(run_one, parallel=3).run(flows(*(f"f{i}" for i in range(12))))

    assert most == 3
    assert {r.worker for r in schedule.results} <= {0, 1, 2}
    assert all(r.status is Status.PASSED for r in schedule.results)


def test_worker_index_is_stable_per_thread_and_stamped_on_results() -> None:
    seen: dict[int, set[int]] = {}
    lock = threading.Lock()

    def run_one(flow: Flow, worker: int) -> FlowResult:
        with lock:
            seen.setdefault(threading.get_ident(), set()).add(worker)
        time.sleep(0.001)
        return FlowResult(name=flow.name, status=Status.PASSED, worker=99)

    schedule = Scheduler(run_one, parallel=2).run(flows(*"abcdef"))

    assert all(len(workers) == 1 for workers in seen.values())
    assert set().union(*seen.values()) <= {0, 1}
    assert {r.worker for r in schedule.results} <= {0, 1}


def test_parallel_one_runs_strictly_serially_in_order() -> None:
    log: list[str] = []

    def run_one(flow: Flow, worker: int) -> FlowResult:
        log.append(f"start {flow.name} w{worker}")
        log.append(f"end {flow.name}")
        return passed(flow, worker)

    Scheduler(run_one, parallel=1).run(flows("a", "b", "c"))

    assert log == ["start a w0", "end a", "start b w0", "end b", "start c w0", "end c"]


def test_flows_start_in_input_order_with_many_workers() -> None:
    recorder = Recorder()
    names = [f"f{i}" for i in range(20)]

    Scheduler(passed, parallel=4, listener=recorder).run(flows(*names))

    assert [name for kind, name, _ in recorder.events if kind == "started"] == names


def failing(name: str, status: Status) -> Callable[[Flow, int], FlowResult]:
    """A run_one under which flow ``name`` ends with ``status`` and every other flow passes."""

    def run_one(flow: Flow, worker: int) -> FlowResult:
        if flow.name == name:
            return FlowResult(name=flow.name, status=status, message="nope")
        return passed(flow, worker)

    return run_one


def test_without_fail_fast_every_flow_runs() -> None:
    schedule = Scheduler(failing("b", Status.FAILED), parallel=1).run(flows("a", "b", "c"))

    assert [r.status for r in schedule.results] == [Status.PASSED, Status.FAILED, Status.PASSED]
    assert not schedule.stopped_by_fail_fast


@pytest.mark.parametrize("status", [Status.FAILED, Status.ERROR])
def test_fail_fast_skips_flows_not_started(status: Status) -> None:
    recorder = Recorder()
    scheduler = Scheduler(failing("b", status), parallel=1, fail_fast=True, listener=recorder)

    schedule = scheduler.run(flows("a", "b", "c", "d"))

    assert [r.status for r in schedule.results[:2]] == [Status.PASSED, status]
    assert [(r.status, r.message) for r in schedule.results[2:]] == [
        (Status.SKIPPED, FAIL_FAST_MESSAGE)
    ] * 2
    assert schedule.stopped_by_fail_fast
    assert not schedule.interrupted
    assert ("started", "c", 0) not in recorder.events
    assert recorder.events[-2:] == [
        ("finished", "c", Status.SKIPPED),
        ("finished", "d", Status.SKIPPED),
    ]


def test_fail_fast_lets_running_flows_finish() -> None:
    recorder = Recorder()
    both_running = threading.Barrier(2, timeout=WAIT)

    def run_one(flow: Flow, worker: int) -> FlowResult:
        if flow.name in ("a", "b"):
            both_running.wait()
        if flow.name == "a":
            return FlowResult(name="a", status=Status.FAILED)
        if flow.name == "b":  # still running when a fails; returns only after that
            assert recorder.finished_event("a").wait(WAIT)
        return passed(flow, worker)

    scheduler = Scheduler(run_one, parallel=2, fail_fast=True, listener=recorder)
    schedule = scheduler.run(flows("a", "b", "c", "d", "e"))

    assert [r.status for r in schedule.results] == [
        Status.FAILED,
        Status.PASSED,
        Status.SKIPPED,
        Status.SKIPPED,
        Status.SKIPPED,
    ]
    assert schedule.stopped_by_fail_fast


def test_stop_from_another_thread_skips_flows_not_started() -> None:
    recorder = Recorder()
    both_running = threading.Barrier(3, timeout=WAIT)  # two workers + the stopping thread
    release = threading.Event()

    def run_one(flow: Flow, worker: int) -> FlowResult:
        if flow.name in ("a", "b"):
            both_running.wait()
            assert release.wait(WAIT)  # stands for "the runner tore the environment down"
        return passed(flow, worker)

    scheduler = Scheduler(run_one, parallel=2, listener=recorder)

    def interrupt() -> None:
        both_running.wait()
        scheduler.stop()
        scheduler.stop("cancelled")  # idempotent: the first reason wins
        release.set()

    stopper = threading.Thread(target=interrupt)
    stopper.start()
    schedule = scheduler.run(flows("a", "b", "c", "d"))
    stopper.join(WAIT)

    assert [(r.name, r.status) for r in schedule.results[:2]] == [
        ("a", Status.PASSED),
        ("b", Status.PASSED),
    ]
    assert [(r.status, r.message) for r in schedule.results[2:]] == [
        (Status.SKIPPED, "not run: run interrupted")
    ] * 2
    assert schedule.interrupted
    assert not schedule.stopped_by_fail_fast
    assert {name for kind, name, _ in recorder.events if kind == "started"} == {"a", "b"}


def test_stop_before_run_skips_everything_with_the_reason() -> None:
    scheduler = Scheduler(passed, parallel=2)
    scheduler.stop("cancelled by SIGTERM")

    schedule = scheduler.run(flows("a", "b"))

    assert [r.message for r in schedule.results] == ["not run: run cancelled by SIGTERM"] * 2
    assert schedule.interrupted


def test_exception_in_run_one_becomes_error_and_the_run_goes_on() -> None:
    def run_one(flow: Flow, worker: int) -> FlowResult:
        if flow.name == "b":
            raise RuntimeError("boom")
        return passed(flow, worker)

    schedule = Scheduler(run_one, parallel=2).run(flows("a", "b", "c", "d"))

    assert [r.status for r in schedule.results] == [
        Status.PASSED,
        Status.ERROR,
        Status.PASSED,
        Status.PASSED,
    ]
    error = schedule.results[1]
    assert error.message == "internal error: RuntimeError('boom')"
    assert "Traceback (most recent call last)" in error.traceback
    assert "RuntimeError: boom" in error.traceback
    assert not schedule.interrupted


def test_keyboard_interrupt_in_a_worker_is_an_interrupt() -> None:
    def run_one(flow: Flow, worker: int) -> FlowResult:
        if flow.name == "b":
            raise KeyboardInterrupt
        return passed(flow, worker)

    schedule = Scheduler(run_one, parallel=1).run(flows("a", "b", "c"))

    assert [r.status for r in schedule.results] == [Status.PASSED, Status.ERROR, Status.SKIPPED]
    assert schedule.results[1].message == "interrupted: KeyboardInterrupt()"
    assert schedule.results[2].message == "not run: run interrupted"
    assert schedule.interrupted


def test_listener_hears_start_before_and_finish_after_each_flow() -> None:
    recorder = Recorder()

    def run_one(flow: Flow, worker: int) -> FlowResult:
        with recorder.lock:
            recorder.events.append(("run", flow.name, worker))
        return passed(flow, worker)

    Scheduler(run_one, parallel=1, listener=recorder).run(flows("a", "b"))

    assert recorder.events == [
        ("started", "a", 0),
        ("run", "a", 0),
        ("finished", "a", Status.PASSED),
        ("started", "b", 0),
        ("run", "b", 0),
        ("finished", "b", Status.PASSED),
    ]


def test_a_broken_listener_is_logged_and_does_not_stop_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def flow_started(self, name: str, worker: int) -> None:
            raise ValueError("reporter bug")

        def flow_finished(self, result: FlowResult) -> None:
            raise ValueError("reporter bug")

    schedule = Scheduler(passed, parallel=2, listener=Broken()).run(flows("a", "b", "c"))

    assert all(r.status is Status.PASSED for r in schedule.results)
    assert "run listener failed in flow_started" in caplog.text


posix_signals = pytest.mark.skipif(
    sys.platform == "win32", reason="sends SIGINT to its own process (POSIX only)"
)


@posix_signals
def test_sigint_handler_in_the_main_thread_runs_while_run_waits() -> None:
    release = threading.Event()
    scheduler: Scheduler[Flow]

    def on_sigint(signum: int, frame: object) -> None:
        scheduler.stop()
        release.set()  # the runner would tear environments down here

    def run_one(flow: Flow, worker: int) -> FlowResult:
        if flow.name == "a":
            os.kill(os.getpid(), signal.SIGINT)
            assert release.wait(WAIT)
        return passed(flow, worker)

    scheduler = Scheduler(run_one, parallel=1)
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        schedule = scheduler.run(flows("a", "b"))
    finally:
        signal.signal(signal.SIGINT, previous)

    assert [r.status for r in schedule.results] == [Status.PASSED, Status.SKIPPED]
    assert schedule.interrupted


@posix_signals
def test_keyboard_interrupt_in_the_main_thread_acts_like_stop() -> None:
    stopped = threading.Event()

    class Observed(Scheduler[Flow]):
        def stop(self, reason: str = "interrupted") -> None:
            super().stop(reason)
            stopped.set()

    def run_one(flow: Flow, worker: int) -> FlowResult:
        if flow.name == "a":
            os.kill(os.getpid(), signal.SIGINT)  # default handler: KeyboardInterrupt in main
            assert stopped.wait(WAIT)
        return passed(flow, worker)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        schedule = Observed(run_one, parallel=1).run(flows("a", "b"))
    finally:
        signal.signal(signal.SIGINT, previous)

    assert [r.status for r in schedule.results] == [Status.PASSED, Status.SKIPPED]
    assert schedule.interrupted
