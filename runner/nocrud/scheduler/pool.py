"""The thread pool that runs flows: ordering, the concurrency cap, fail-fast, interrupts.

The scheduler knows nothing about Docker. It takes a ``run_one(flow, worker)``
callable that turns one flow into a :class:`~nocrud.results.FlowResult` and calls
it on at most ``parallel`` threads at once, starting flows in input order. It
owns what happens around those calls: a crash of ``run_one`` becomes an ERROR
result instead of a lost flow, ``--fail-fast`` and :meth:`Scheduler.stop` keep
new flows from starting and turn them into SKIPPED results, and listeners
(reporters) hear about every flow as it starts and finishes. Because
``run_one`` is just a callable, all of this is unit-tested with fakes.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

from nocrud.results import FlowResult, Status, Timings

__all__ = [
    "FAIL_FAST_MESSAGE",
    "FlowLike",
    "RunListener",
    "Schedule",
    "Scheduler",
]

#: Message of the SKIPPED results of flows that ``--fail-fast`` kept from starting.
FAIL_FAST_MESSAGE = "not run: stopped after the first failure (--fail-fast)"

#: How long the main thread blocks at a time while waiting for workers. Short, so
#: that a SIGINT handler (which Python runs between bytecodes of the main thread)
#: gets to run promptly.
_POLL_SECONDS = 0.1

_log = logging.getLogger(__name__)


class FlowLike(Protocol):
    """What the scheduler needs from a flow: a name for its result."""

    @property
    def name(self) -> str: ...


class RunListener(Protocol):
    """Hears about flows as they run. Every method may be called from a worker thread."""

    def flow_started(self, name: str, worker: int) -> None: ...

    def flow_finished(self, result: FlowResult) -> None: ...


@dataclass(frozen=True)
class Schedule:
    """What :meth:`Scheduler.run` returns.

    Attributes:
        results: One result per input flow, in input order. Flows that never
            started are SKIPPED with a message saying why.
        interrupted: :meth:`Scheduler.stop` was called, or an interrupt
            (``KeyboardInterrupt``, ``SystemExit``) reached a worker or ``run()``.
        stopped_by_fail_fast: A FAILED or ERROR result stopped the run under
            ``fail_fast``.
    """

    results: tuple[FlowResult, ...]
    interrupted: bool
    stopped_by_fail_fast: bool


F = TypeVar("F", bound=FlowLike)


class Scheduler(Generic[F]):
    """Runs flows through ``run_one`` on a fixed number of worker threads.

    A scheduler runs once: build a new one for another run.

    Args:
        run_one: Turns one flow into its result; called as ``run_one(flow, worker)``
            where ``worker`` is the index (``0..parallel-1``) of the calling
            thread, stable for the thread's lifetime. It should not raise; if it
            does, the flow gets an ERROR result and the run goes on.
        parallel: Most flows running at once; at least 1.
        fail_fast: After the first FAILED or ERROR result, start no new flow.
        listener: Told when each flow starts and finishes (from worker threads).

    Raises:
        ValueError: ``parallel`` is less than 1.
    """

    def __init__(
        self,
        run_one: Callable[[F, int], FlowResult],
        *,
        parallel: int,
        fail_fast: bool = False,
        listener: RunListener | None = None,
    ) -> None:
        if parallel < 1:
            raise ValueError(
                f"parallel must be at least 1, got {parallel}: pass --parallel 1 or more"
            )
        self._run_one = run_one
        self._parallel = parallel
        self._fail_fast = fail_fast
        self._listener = listener
        self._lock = threading.Lock()
        self._used = False
        self._flows: Sequence[F] = ()
        self._results: list[FlowResult | None] = []
        self._next = 0
        # Written without a lock so that stop() is safe in a signal handler:
        # one attribute store is atomic, and a handler that waited for a lock
        # the interrupted main thread holds would deadlock.
        self._stop_reason: str | None = None
        self._fail_fast_tripped = False
        # Why the first not-started flow did not start; the first cause wins.
        self._halt_message: str | None = None

    def stop(self, reason: str = "interrupted") -> None:
        """Start no new flow; flows already running finish.

        Thread-safe, idempotent (the first reason wins) and safe to call from a
        signal handler. May be called before or during :meth:`run`.

        Args:
            reason: Completes "run ..." in the message of the flows that never
                started, e.g. ``"interrupted"`` gives ``"not run: run interrupted"``.
        """
        if self._stop_reason is not None:
            return
        self._stop_reason = reason
        if self._halt_message is None:
            self._halt_message = f"not run: run {reason}"

    def run(self, flows: Sequence[F]) -> Schedule:
        """Run ``flows`` and return once every started flow has finished.

        The calling thread only waits, in short slices, so signal handlers of
        the main thread keep running. A ``KeyboardInterrupt`` raised in the
        calling thread while waiting acts like :meth:`stop`: running flows
        still finish and the schedule comes back ``interrupted``; a second one
        propagates. Worker threads are daemons, so abandoning them exits the
        process (Docker objects left behind carry labels for the reaper).

        Args:
            flows: The flows, in the order they should start.

        Returns:
            One result per flow in input order, and why the run stopped early.

        Raises:
            RuntimeError: The scheduler already ran.
        """
        with self._lock:
            if self._used:
                raise RuntimeError("a Scheduler runs once: create a new one for another run")
            self._used = True
            self._flows = flows
            self._results = [None] * len(flows)
        threads = [
            threading.Thread(
                target=self._work, args=(worker,), name=f"nocrud-worker-{worker}", daemon=True
            )
            for worker in range(min(self._parallel, len(flows)))
        ]
        try:
            for thread in threads:
                thread.start()
            _wait_for(threads)
        except KeyboardInterrupt:
            self.stop("interrupted")
            _wait_for(threads)
        return self._collect()

    def _halted(self) -> bool:
        return self._stop_reason is not None or self._fail_fast_tripped

    def _work(self, worker: int) -> None:
        """Body of one worker thread: claim the next flow in order until none is left."""
        while True:
            with self._lock:
                if self._halted() or self._next >= len(self._flows):
                    return
                index = self._next
                self._next += 1
                flow = self._flows[index]
                # Notified under the lock so listeners see starts in input order.
                self._notify("flow_started", flow.name, worker)
            result = self._call(flow, worker)
            with self._lock:
                self._results[index] = result
                if self._fail_fast and result.status in (Status.FAILED, Status.ERROR):
                    self._fail_fast_tripped = True
                    if self._halt_message is None:
                        self._halt_message = FAIL_FAST_MESSAGE
            self._notify("flow_finished", result)

    def _call(self, flow: F, worker: int) -> FlowResult:
        """Call ``run_one``, turning anything it raises into an ERROR result."""
        started = time.perf_counter()
        try:
            result = self._run_one(flow, worker)
        except Exception as exc:  # noqa: BLE001 - a runner bug must not lose the run
            return _error(flow.name, worker, f"internal error: {exc!r}", started)
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt, SystemExit: stop
            self.stop("interrupted")
            return _error(flow.name, worker, f"interrupted: {exc!r}", started)
        # The scheduler is the authority on which worker ran the flow.
        return result if result.worker == worker else replace(result, worker=worker)

    def _notify(self, method: str, *args: object) -> None:
        """Call a listener method; a reporter's bug is logged, never fatal to the run."""
        if self._listener is None:
            return
        try:
            getattr(self._listener, method)(*args)
        except Exception:  # noqa: BLE001 - a broken reporter must not stop the flows
            _log.exception("run listener failed in %s", method)

    def _collect(self) -> Schedule:
        """Fill in the flows that never ran and build the schedule."""
        with self._lock:
            results = list(self._results)
            halt_message = self._halt_message
        skipped: list[FlowResult] = []
        for index, result in enumerate(results):
            if result is not None:
                continue
            name = self._flows[index].name
            if index < self._next:
                # Claimed but no result: the worker thread died, which _call prevents.
                results[index] = FlowResult(
                    name=name,
                    status=Status.ERROR,
                    message="internal error: the worker ended without a result",
                )
                continue
            skip = FlowResult(
                name=name,
                status=Status.SKIPPED,
                message=halt_message or "not run: run interrupted",
            )
            results[index] = skip
            skipped.append(skip)
        for result in skipped:
            self._notify("flow_finished", result)
        return Schedule(
            results=tuple(r for r in results if r is not None),
            interrupted=self._stop_reason is not None,
            stopped_by_fail_fast=self._fail_fast_tripped,
        )


def _error(name: str, worker: int, message: str, started: float) -> FlowResult:
    """The ERROR result of a flow whose ``run_one`` raised; call inside ``except``."""
    return FlowResult(
        name=name,
        status=Status.ERROR,
        message=message,
        traceback=traceback.format_exc(),
        timings=Timings(run=time.perf_counter() - started),
        worker=worker,
    )


def _wait_for(threads: Sequence[threading.Thread]) -> None:
    """Join ``threads`` in short slices, so the main thread stays able to run signal handlers."""
    for thread in threads:
        while thread.is_alive():
            thread.join(_POLL_SECONDS)
