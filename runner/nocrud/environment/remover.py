"""Teardown off the critical path: a worker hands its finished environment over and moves on.

Removing a pair costs the daemon two or three operations (half a second or more on a
busy two-core machine); a worker that waits for them starts its next flow that much
later. The :class:`Remover` takes finished environments and removes them on a
background thread. :meth:`Remover.drain` waits until everything handed over is gone
(the end of a run, an interrupt). A SIGKILL leaves the queue to the reaper: every
object carries the run's session label.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable

__all__ = ["Remover"]


class Remover:
    """Runs teardown callables on ``threads`` background threads, in the order handed over."""

    def __init__(self, threads: int = 1) -> None:
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._threads = [
            threading.Thread(target=self._work, name=f"nocrud-remover-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()
        self._closed = False

    def submit(self, teardown: Callable[[], None]) -> None:
        """Run ``teardown`` in the background (at once, in this thread, after :meth:`close`)."""
        with self._idle:
            if self._closed:
                closed = True
            else:
                closed = False
                self._pending += 1
        if closed:
            with contextlib.suppress(Exception):
                teardown()
            return
        self._queue.put(teardown)

    @property
    def pending(self) -> int:
        """Teardowns handed over and not finished yet."""
        with self._idle:
            return self._pending

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every teardown handed over has run; False when ``timeout`` ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Stop taking work (later teardowns run in the caller), drain, stop the threads.

        Idempotent; False when ``timeout`` ran out before the queue was empty.
        """
        with self._idle:
            first = not self._closed
            self._closed = True
        if first:
            for _ in self._threads:
                self._queue.put(None)  # after everything queued: the queue is FIFO
        return self.drain(timeout)

    def _work(self) -> None:
        while True:
            teardown = self._queue.get()
            if teardown is None:
                return
            try:
                teardown()
            except Exception:  # noqa: BLE001, S110 - the label sweep removes what this missed
                pass
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
