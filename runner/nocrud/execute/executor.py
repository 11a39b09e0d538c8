"""Running one flow inside its own environment, and turning what happened into a FlowResult.

:class:`FlowExecutor` is the ``run_one`` the scheduler calls on worker threads.
For one flow it provisions an :class:`~nocrud.environment.Environment`, runs
the flow function on a thread of its own (so a per-flow timeout can abandon a
flow that never returns, after tearing its environment down), classifies the
outcome (an ``AssertionError`` is FAILED, anything else ERROR), keeps the app's
log lines for flows that did not pass, and always tears down. Live
environments are tracked so an interrupt can kill them all at once.
"""

from __future__ import annotations

import io
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from nocrud.analysis.coverage import capture_openapi
from nocrud.config import Config
from nocrud.docker.engine import Connection
from nocrud.environment.image import Environment, ProvisionError
from nocrud.flows import Flow, FlowContext
from nocrud.http.client import ApiClient, RequestRecorder
from nocrud.images.build import BuiltImages
from nocrud.results import FlowResult, RequestRecord, Status, StepResult, Timings


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


def _capture_here(buffer: io.StringIO | None) -> None:
    if _installed is not None:
        for stream in _installed:
            stream.local.buffer = buffer


@dataclass(frozen=True)
class _Outcome:
    """What running (or failing to provision) one flow produced, before teardown."""

    status: Status
    message: str
    traceback: str = ""
    output: str = ""
    requests: tuple[RequestRecord, ...] = ()
    steps: tuple[StepResult, ...] = ()


class FlowExecutor:
    """Runs flows one at a time per calling thread; safe to call from many threads."""

    def __init__(
        self,
        config: Config,
        images: BuiltImages,
        *,
        connection: Connection,
        run_id: str,
        keep_failed: bool = False,
        flow_timeout: float | None = None,
    ) -> None:
        self.config = config
        self.images = images
        self.connection = connection
        self.run_id = run_id
        self.keep_failed = keep_failed
        self.flow_timeout = flow_timeout if flow_timeout is not None else config.timeouts.flow
        self._live: set[Environment] = set()
        self._lock = threading.Lock()
        self._counter = 0
        self._stopping = threading.Event()

    # The scheduler's run_one.
    def __call__(self, flow: Flow, worker: int) -> FlowResult:
        return self.run(flow, worker)

    def kill_all(self) -> int:
        """Tear down every live environment now (interrupt path). Returns how many there were."""
        self._stopping.set()
        with self._lock:
            live = list(self._live)
        threads = [threading.Thread(target=env.kill, daemon=True) for env in live]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        return len(live)

    def run(self, flow: Flow, worker: int) -> FlowResult:
        with self._lock:
            self._counter += 1
            index = self._counter
        env = Environment(
            self.config,
            self.images,
            connection=self.connection,
            run_id=self.run_id,
            flow=flow.name,
            index=index,
            keep=self.keep_failed,
        )
        with self._lock:
            self._live.add(env)
        t0 = time.monotonic()
        try:
            if self._stopping.is_set():
                return FlowResult(
                    name=flow.name,
                    kind=flow.kind,
                    status=Status.SKIPPED,
                    message="not run: run interrupted",
                    worker=worker,
                )
            try:
                env.start()
            except Exception as exc:  # noqa: BLE001 - any provisioning failure is this flow's ERROR
                if env.killed:
                    message = "environment torn down while starting (run interrupted)"
                elif isinstance(exc, ProvisionError):
                    message = f"environment did not start: {exc}"
                else:
                    message = f"environment did not start: {type(exc).__name__}: {exc}"
                tb = "" if isinstance(exc, ProvisionError) else traceback.format_exc()
                outcome = _Outcome(Status.ERROR, message, tb)
                return self._finish(env, flow, worker, outcome, provisioned=time.monotonic(), t0=t0)
            t1 = time.monotonic()
            return self._finish(env, flow, worker, self._run_flow(flow, env), provisioned=t1, t0=t0)
        finally:
            with self._lock:
                self._live.discard(env)

    def _finish(
        self,
        env: Environment,
        flow: Flow,
        worker: int,
        outcome: _Outcome,
        *,
        t0: float,
        provisioned: float,
    ) -> FlowResult:
        ran = time.monotonic()
        status, message = outcome.status, outcome.message
        keep = self.keep_failed and not status.ok
        logs = env.app_logs() if not status.ok else ""
        env.keep = keep
        teardown_error = ""
        try:
            env.teardown()
        except Exception as exc:  # noqa: BLE001 - a failed teardown is reported, not raised
            teardown_error = f"teardown failed: {type(exc).__name__}: {exc}"
        done = time.monotonic()
        if keep:
            message += f"\nkept for inspection: docker ps --filter label=nocrud.flow={flow.name}"
        if teardown_error:
            message = f"{message}\n{teardown_error}"
            if status is Status.PASSED:
                status = Status.ERROR
        return FlowResult(
            name=flow.name,
            kind=flow.kind,
            status=status,
            message=message.strip(),
            traceback=outcome.traceback,
            timings=Timings(provision=provisioned - t0, run=ran - provisioned, teardown=done - ran),
            app_logs=logs,
            output=outcome.output,
            requests=outcome.requests,
            steps=outcome.steps,
            worker=worker,
        )

    def _run_flow(self, flow: Flow, env: Environment) -> _Outcome:
        recorder = RequestRecorder()
        buffer = io.StringIO()
        outcome: dict[str, Any] = {}
        context = self._context(flow, env, recorder, buffer)

        def target() -> None:
            _capture_here(buffer)
            try:
                flow.func(context)
                outcome["status"] = Status.PASSED
            except AssertionError as exc:
                outcome.update(status=Status.FAILED, exc=exc, tb=traceback.format_exc())
            except BaseException as exc:  # noqa: BLE001 - SystemExit from a flow must not end the run
                outcome.update(status=Status.ERROR, exc=exc, tb=traceback.format_exc())
            finally:
                _capture_here(None)
                try:
                    context.api.close()
                    context.close()
                except Exception:  # noqa: BLE001, S110 - the flow's own result matters more
                    pass

        thread = threading.Thread(target=target, name=f"flow:{flow.name}", daemon=True)
        mark = object()  # threads this flow starts inherit it (see _start_marked)
        setattr(thread, _FLOW_MARK, mark)
        thread.start()
        timeout = flow.timeout if flow.timeout is not None else self.flow_timeout
        _join_unless_killed(thread, env, timeout)
        output = _output(context, buffer)
        if thread.is_alive():
            # Removing the containers makes pending requests fail, so the thread can end; a
            # flow that never returns (a sleep, a busy loop) is abandoned: it is a daemon thread.
            env.kill()
            thread.join(2)
            return _Outcome(
                Status.ERROR,
                "flow abandoned: run interrupted"
                if self._stopping.is_set()
                else f"timed out after {timeout:g} s",
                "",
                output,
                recorder.records,
                tuple(context.steps),
            )
        status: Status = outcome["status"]
        exc = outcome.get("exc")
        tb = outcome.get("tb", "")
        if env.killed and status is not Status.PASSED:
            message = "environment torn down while the flow ran (run interrupted)"
            return _Outcome(
                Status.ERROR, message, tb, output, recorder.records, tuple(context.steps)
            )
        message = "" if exc is None else _describe(exc)
        left = [t for t in threads_left_by(mark) if t is not thread]
        for straggler in left:
            straggler.join(0.2)  # one that is just finishing is not a leak
        left = [t for t in left if t.is_alive()]
        if left:
            names = ", ".join(t.name for t in left)
            leak = (
                f"the flow left {len(left)} thread(s) running: {names}; join them before returning"
            )
            status, message = Status.ERROR, f"{message}\n{leak}".strip()
        dead = env.casualties() if status is not Status.PASSED else []
        if dead:
            # The flow's own complaint (a 503, a refused connection) is a symptom: name the cause.
            cause = "; ".join(dead)
            status, message = Status.ERROR, f"{cause} during the flow\nthe flow saw: {message}"
        return _Outcome(status, message, tb, output, recorder.records, tuple(context.steps))

    def _context(
        self, flow: Flow, env: Environment, recorder: RequestRecorder, buffer: io.StringIO
    ) -> FlowContext:
        database = env.database
        assert database is not None
        capture_openapi(env.base_url, self.config.root, run_id=self.run_id)  # for `nocrud coverage`
        holder: list[FlowContext] = []

        def log(line: str) -> None:
            if holder:
                holder[0].log(line)

        def new_client(**kwargs: Any) -> ApiClient:
            kwargs.setdefault("recorder", recorder)
            kwargs.setdefault("log", log)
            return ApiClient(env.base_url, **kwargs)

        context = FlowContext(
            name=flow.name,
            base_url=env.base_url,
            api=ApiClient(env.base_url, recorder=recorder, log=log),
            _connect_db=database.connect,
            _new_client=new_client,
        )
        holder.append(context)
        return context


def _join_unless_killed(thread: threading.Thread, env: Environment, timeout: float) -> None:
    """Wait for a flow's thread until it ends, times out, or its environment is killed."""
    deadline = time.monotonic() + timeout
    while thread.is_alive():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        thread.join(min(0.1, remaining))
        if env.killed:
            thread.join(2)  # a request failing on the removed containers ends the flow quickly
            return


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    if isinstance(exc, AssertionError):
        return text or "assertion failed"
    return f"{name}: {text}" if text else name


def _output(context: FlowContext, buffer: io.StringIO) -> str:
    printed = buffer.getvalue()
    logged = "\n".join(context.lines)
    return "\n".join(part for part in (logged, printed.rstrip()) if part)
