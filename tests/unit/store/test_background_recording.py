"""The recorder ``nocrud up`` uses: made and fed on its own thread, complete at close."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

from nocrud.results import FlowResult, RunResult
from nocrud.store import InBackground, RunStart

START = RunStart(
    project="demo",
    flow_names=("a", "b"),
    parallel=2,
    strategy="image",
    nocrud_run_id="run1",
    nocrud_version="0",
    selection={},
)


class _Recorder:
    """Notes each event with the thread it came on; blocks its first event until told."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.events: list[tuple[str, Any]] = []
        self.threads: set[str] = set()
        self._gate = gate

    def _note(self, event: str, value: Any) -> None:
        if self._gate is not None:
            assert self._gate.wait(10)
        self.threads.add(threading.current_thread().name)
        self.events.append((event, value))

    def run_started(self, start: RunStart) -> None:
        self._note("run_started", start.git.commit)

    def flow_started(self, name: str, worker: int) -> None:
        self._note("flow_started", (name, worker))

    def flow_finished(self, result: FlowResult) -> None:
        self._note("flow_finished", result)

    def log(self, lines: Sequence[str]) -> None:
        self._note("log", list(lines))

    def run_finished(
        self,
        result: RunResult | None,
        exit_code: int,
        message: str = "",
        *,
        cancelled: bool = False,
    ) -> None:
        self._note("run_finished", (exit_code, message, cancelled))

    def close(self) -> None:
        self._note("close", None)


def test_events_reach_the_recorder_in_order_on_its_thread_and_close_waits_for_them() -> None:
    gate = threading.Event()
    inner = _Recorder(gate)
    made_on: list[str] = []

    def make() -> _Recorder:
        made_on.append(threading.current_thread().name)
        return inner

    def complete(start: RunStart) -> RunStart:
        import dataclasses

        from nocrud.store import GitInfo

        return dataclasses.replace(start, git=GitInfo(commit="abc", branch="main"))

    recorder = InBackground(make, complete)
    recorder.run_started(START)
    recorder.flow_started("a", 0)  # a worker only queues: the store is still busy
    recorder.log(["line"])
    recorder.run_finished(None, 1, "one failed")
    assert inner.events == []
    gate.set()
    recorder.close()
    assert [e for e, _ in inner.events] == [
        "run_started",
        "flow_started",
        "log",
        "run_finished",
        "close",
    ]
    assert inner.events[0] == ("run_started", "abc"), "completed on the recorder's thread"
    assert inner.events[3] == ("run_finished", (1, "one failed", False))
    assert made_on == ["nocrud-record"]
    assert inner.threads == {"nocrud-record"}


def test_no_recorder_or_one_that_cannot_be_made_drops_the_events_and_closes() -> None:
    for make in (lambda: None, lambda: 1 / 0):
        recorder = InBackground(make)  # type: ignore[arg-type]
        recorder.run_started(START)
        recorder.flow_started("a", 0)
        recorder.close()


def test_a_failing_event_does_not_stop_the_next_ones() -> None:
    inner = _Recorder()

    def broken(_name: str, _worker: int) -> None:
        raise RuntimeError("database is locked")

    inner.flow_started = broken  # type: ignore[method-assign]
    recorder = InBackground(lambda: inner)
    recorder.flow_started("a", 0)
    recorder.log(["after"])
    recorder.close()
    assert inner.events == [("log", ["after"]), ("close", None)]


def test_the_recorders_names_import_no_sqlalchemy() -> None:
    """What `nocrud up` imports on its main thread before the flows start."""
    code = (
        "import sys\n"
        "from nocrud.store import InBackground, Recording, RunStart\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
