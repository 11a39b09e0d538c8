"""Each flow's prints, and the threads a flow leaves behind, told apart while flows run in parallel.

While flows run, ``sys.stdout`` and ``sys.stderr`` are stand-ins that send what a
flow's thread writes into that flow's own buffer (it becomes the flow's output in
every report) and everything else to the real stream. A flow may start threads of
its own; their prints belong to the flow too, and one still running when the flow
returns is a leak the flow is told about. Python has no public way to learn which
thread started another (context variables reach new threads only from 3.14 on, and
neither audit events nor ``threading.setprofile`` name the parent), so while a run
is capturing, ``Thread.start`` passes the starting thread's flow mark on to the new
thread. Both changes last exactly as long as :func:`install_output_capture`'s undo
is pending: ``run_flows`` installs them around the flows and nowhere else.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable
from typing import TextIO

__all__ = ["capture_here", "install_output_capture", "mark_flow_thread", "threads_left_by"]


class _ThreadOutput(io.TextIOBase):
    """Stand-in for sys.stdout/stderr: prints made on a flow's thread go to that flow's buffer."""

    def __init__(self, real: TextIO) -> None:
        self.real = real
        self.local = threading.local()

    def write(self, text: str) -> int:
        buffer: io.StringIO | None = getattr(self.local, "buffer", None)
        if buffer is not None:
            return buffer.write(text)
        return self.real.write(text)

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return self.real.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # delegate to the real stream
        return getattr(self.real, "encoding", "utf-8")

    def fileno(self) -> int:
        return self.real.fileno()


_capture_lock = threading.Lock()
_installed: tuple[_ThreadOutput, _ThreadOutput] | None = None


_original_thread_start = threading.Thread.start
_FLOW_MARK = "_nocrud_flow"


def _start_marked(self: threading.Thread) -> None:
    """Thread.start that lets a thread inherit the flow mark of the thread starting it."""
    mark = getattr(threading.current_thread(), _FLOW_MARK, None)
    if mark is not None:
        setattr(self, _FLOW_MARK, mark)
    _original_thread_start(self)


def threads_left_by(mark: object) -> list[threading.Thread]:
    """Threads, started by a flow (or by its threads), still running."""
    return [
        t for t in threading.enumerate() if getattr(t, _FLOW_MARK, None) is mark and t.is_alive()
    ]


def install_output_capture() -> Callable[[], None]:
    """Route prints made on flow threads into their flows' output and mark threads flows start.

    Returns:
        A function undoing both.
    """
    global _installed  # noqa: PLW0603 - sys.stdout itself is process-global
    with _capture_lock:
        if _installed is None:
            _installed = (_ThreadOutput(sys.stdout), _ThreadOutput(sys.stderr))
            sys.stdout, sys.stderr = _installed
            threading.Thread.start = _start_marked  # type: ignore[method-assign]

    def undo() -> None:
        global _installed  # noqa: PLW0603
        with _capture_lock:
            if _installed is not None:
                sys.stdout, sys.stderr = _installed[0].real, _installed[1].real
                threading.Thread.start = _original_thread_start  # type: ignore[method-assign]
                _installed = None

    return undo


def capture_here(buffer: io.StringIO | None) -> None:
    if _installed is not None:
        for stream in _installed:
            stream.local.buffer = buffer


def mark_flow_thread(thread: threading.Thread) -> object:
    """Mark a flow's own thread; threads it starts inherit the mark. Returns the mark."""
    mark = object()
    setattr(thread, _FLOW_MARK, mark)
    return mark
