"""Running one flow inside its own environment, and turning what happened into a FlowResult.

:class:`FlowExecutor` is the ``run_one`` the scheduler calls on worker threads. For
one flow it asks the run's :class:`~nocrud.environment.Provisioner` for an
environment, runs the flow function on a thread of its own (so a per-flow timeout
can abandon a flow that never returns, after tearing its environment down),
classifies the outcome (an ``AssertionError`` is FAILED, anything else ERROR),
keeps the app's log lines for flows that did not pass, and always hands the
environment back. It knows nothing of Docker: what an environment is, and how it
is killed on an interrupt, is the provisioner's business.

When a flow does not pass, :attr:`FlowExecutor.engine_check` (set by the workflow)
asks whether the infrastructure itself went away (the Docker daemon stopped
answering). Then the flow's own verdict does not stand: it was in flight when the
daemon went, so it is an ERROR whose message says so (a CI test view must not show a
run that lost flows as clean); the flows not started yet are SKIPPED as not run; the
run stops, and the workflow names the cause once.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from nocrud.environment import MisconfigurationError, Provisioner, ProvisionError, Target
from nocrud.errors import InfrastructureError
from nocrud.execute.capture import capture_here, mark_flow_thread, threads_left_by
from nocrud.execute.explain import explain_assertion
from nocrud.flows import Flow, FlowContext
from nocrud.flows.crud import CrudFailed
from nocrud.http.client import ApiClient, RequestRecorder
from nocrud.results import FlowResult, Status, Timings

__all__ = ["ENGINE_LOST_REASON", "IN_FLIGHT_MESSAGE", "FlowExecutor"]

#: Why flows did not run or finish once the infrastructure went away; completes "run ...".
ENGINE_LOST_REASON = "lost its Docker daemon"
#: Starts the message of a flow that was running when the infrastructure went away.
IN_FLIGHT_MESSAGE = "not finished: the run lost its Docker daemon while this flow ran"
#: Seconds a flow that did not pass waits before its app's logs are read (see _run).
LOG_SETTLE = 0.3


class FlowExecutor:
    """Runs flows one at a time per calling thread; safe to call from many threads.

    Args:
        provisioner: Gives each flow its environment (prepared by the workflow).
        flow_timeout: Seconds a flow may run unless it sets its own ``timeout``.
        keep_failed: Keep the environments of flows that did not pass.
        state_dir: Where the app's OpenAPI document is saved for ``nocrud coverage``
            (once per run, from the first environment that comes up); None: nowhere.
            Its parent is the project's root, against which a file ``openapi`` is read.
        openapi: ``app.openapi``: where the app serves its document, when not at the
            usual paths.
    """

    def __init__(
        self,
        provisioner: Provisioner,
        *,
        flow_timeout: float,
        keep_failed: bool = False,
        state_dir: Path | None = None,
        openapi: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.provisioner = provisioner
        self.headers = dict(headers or {})
        self.flow_timeout = flow_timeout
        self.keep_failed = keep_failed
        self._state_dir = state_dir
        self._openapi = openapi
        #: The first problem every flow would hit (see MisconfigurationError), once seen.
        self.configuration_problem: MisconfigurationError | None = None
        self._problem_flow = ""
        #: Called once with a reason when the run should start no more flows.
        self.stop_run: Callable[[str], None] | None = None
        #: Asked after a flow did not pass: the infrastructure's failure (the Docker daemon
        #: gone), or None when it is fine and the flow's result stands.
        self.engine_check: Callable[[], InfrastructureError | None] | None = None
        #: The infrastructure failure that stopped the run, once seen, and how many flows
        #: had finished before it.
        self.engine_problem: InfrastructureError | None = None
        self.finished_before_problem = 0
        self._finished = 0
        self._openapi_lock = threading.Lock()
        self._openapi_done = state_dir is None
        #: The app's OpenAPI document once read (None: it has none), for ``ctx.openapi()``.
        self._document: dict[str, Any] | None = None
        self._document_read = False
        self._stopping = threading.Event()

    # The scheduler's run_one.
    def __call__(self, flow: Flow, worker: int) -> FlowResult:
        return self.run(flow, worker)

    def kill_all(self) -> int:
        """Tear down every live environment now (interrupt path). Returns how many there were."""
        self._stopping.set()
        return self.provisioner.kill_all()

    def run(self, flow: Flow, worker: int) -> FlowResult:
        try:
            result = self._run(flow, worker)
        except Exception:
            # Evidence gathering itself failed (a container's state, its logs): when the
            # daemon is gone that is the cause, else the scheduler reports the bug.
            if self.engine_check is None or (self.engine_problem or self.engine_check()) is None:
                raise
            result = FlowResult(name=flow.name, kind=flow.kind, status=Status.ERROR, worker=worker)
        if result.status.ok or self.engine_check is None:
            self._count_finished()
            return result
        problem = self.engine_problem or self.engine_check()
        if problem is None:
            self._count_finished()
            return result
        self._stop_for_engine(problem)
        # Its environment went away under it: an error of the run, not a failure of the
        # flow's assertions, and the message says why instead of the symptom it met. The
        # cause itself is said once, by the workflow (the run's ``stopped``).
        return replace(
            result,
            status=Status.ERROR,
            message=IN_FLIGHT_MESSAGE,
            traceback="",
            app_logs="",
        )

    def _count_finished(self) -> None:
        with self._openapi_lock:
            self._finished += 1

    def _stop_for_engine(self, problem: InfrastructureError) -> None:
        with self._openapi_lock:
            first = self.engine_problem is None
            if first:
                self.engine_problem = problem
                self.finished_before_problem = self._finished
        if first and self.stop_run is not None:
            self.stop_run(ENGINE_LOST_REASON)

    def _run(self, flow: Flow, worker: int) -> FlowResult:
        base = FlowResult(name=flow.name, kind=flow.kind, status=Status.ERROR, worker=worker)
        if self._stopping.is_set():
            return replace(base, status=Status.SKIPPED, message="not run: run interrupted")
        if self.engine_problem is not None:
            return replace(
                base, status=Status.SKIPPED, message=f"not run: run {ENGINE_LOST_REASON}"
            )
        t0 = time.monotonic()
        with contextlib.ExitStack() as stack:
            try:
                target = stack.enter_context(self.provisioner.acquire(flow.name, fresh=flow.fresh))
            except Exception as exc:  # noqa: BLE001 - any provisioning failure is this flow's ERROR
                provisioned = time.monotonic()
                message = self._not_started(exc, flow)
                known = isinstance(exc, ProvisionError)
                return replace(
                    base,
                    message=message,
                    traceback="" if known else traceback.format_exc(),
                    timings=Timings(provision=provisioned - t0),
                    app_logs=exc.app_logs if isinstance(exc, ProvisionError) else "",
                )
            provisioned = time.monotonic()
            self._capture_openapi(target)
            result = self._run_flow(flow, target, base)
            ran = time.monotonic()
            if not result.status.ok:
                # The app writes the access log line of the request that failed after it
                # sent the response, and Docker copies it into the log a moment later.
                time.sleep(LOG_SETTLE)
                result = replace(result, app_logs=target.app_logs())
                if self.keep_failed:
                    result = replace(result, message=f"{result.message}\n{target.keep()}")
            teardown_error = ""
            try:
                stack.close()
            except Exception as exc:  # noqa: BLE001 - a failed teardown is reported, not raised
                teardown_error = f"teardown failed: {type(exc).__name__}: {exc}"
        done = time.monotonic()
        if teardown_error:
            status = Status.ERROR if result.status is Status.PASSED else result.status
            result = replace(result, status=status, message=f"{result.message}\n{teardown_error}")
        timings = Timings(provision=provisioned - t0, run=ran - provisioned, teardown=done - ran)
        return replace(result, message=result.message.strip(), timings=timings)

    def _not_started(self, exc: Exception, flow: Flow) -> str:
        """The message of a flow whose environment did not start."""
        if self._stopping.is_set():
            return "environment torn down while starting (run interrupted)"
        if isinstance(exc, MisconfigurationError):
            first = self._stop_for(exc, flow.name)
            # A schema step's output is long: said once, with the run's verdict. The advice
            # of any other is said by the first flow that met it, not again by each flow
            # that had started beside it.
            if exc.infrastructure:
                return "environment did not start: its schema step failed (shown below)"
            if first:
                return str(exc)
            exc.app_logs = ""
            return (
                f"environment did not start: the same configuration problem as "
                f"{self._problem_flow} (its block says what it is and how to fix it)"
            )
        if isinstance(exc, ProvisionError):
            return f"environment did not start: {exc}"
        return f"environment did not start: {type(exc).__name__}: {exc}"

    def _stop_for(self, problem: MisconfigurationError, flow: str) -> bool:
        """Start no more flows: each would hit the same configuration problem.

        Returns:
            Whether this is the run's first such problem (``flow`` met it).
        """
        with self._openapi_lock:
            first = self.configuration_problem is None
            if first:
                self.configuration_problem = problem
                self._problem_flow = flow
        if first and self.stop_run is not None:
            self.stop_run("stopped by a configuration problem (see the first error)")
        return first

    def _capture_openapi(self, target: Target) -> None:
        """Save the app's OpenAPI document for ``nocrud coverage``: once per run, not per flow."""
        if self._openapi_done:
            return
        with self._openapi_lock:
            if self._openapi_done:
                return
            self._openapi_done = True
        from nocrud.analysis.coverage import capture_openapi

        assert self._state_dir is not None
        document = capture_openapi(
            target.base_url, self._state_dir, self._openapi, headers=self.headers
        )
        if document is not None:  # what ctx.openapi() would fetch again
            with self._openapi_lock:
                self._document, self._document_read = document, True

    def openapi_document(self, base_url: str) -> dict[str, Any] | None:
        """The app's OpenAPI document (``ctx.openapi()``), read once per run, or None.

        ``app.openapi`` when it is a file (relative to the project) or a URL; else what
        the app at ``base_url`` serves there or at the usual paths.
        """
        with self._openapi_lock:
            if self._document_read:
                return self._document
        from nocrud.http.openapi import OpenApiError, fetch_from_app, load_openapi

        where = self._openapi
        document: dict[str, Any] | None = None
        if where is not None and not where.startswith("/"):
            is_url = where.startswith(("http://", "https://"))
            root = self._state_dir.parent if self._state_dir is not None else Path.cwd()
            with contextlib.suppress(OpenApiError):
                document = load_openapi(where if is_url else root / where, headers=self.headers)
        else:
            document, _ = fetch_from_app(base_url, where, headers=self.headers)
        with self._openapi_lock:
            self._document, self._document_read = document, True
        return document

    def _run_flow(self, flow: Flow, target: Target, base: FlowResult) -> FlowResult:
        recorder = RequestRecorder()
        buffer = io.StringIO()
        outcome: dict[str, Any] = {}
        context = _context(flow, target, recorder, self)

        thread = threading.Thread(
            target=_flow_body,
            args=(flow, context, buffer, outcome),
            name=f"flow:{flow.name}",
            daemon=True,
        )
        mark = mark_flow_thread(thread)  # threads this flow starts inherit it
        thread.start()
        timeout = flow.timeout if flow.timeout is not None else self.flow_timeout
        _join_unless_killed(thread, target, timeout)
        evidence = replace(
            base,
            output=_output(context, buffer),
            requests=recorder.records,
            steps=tuple(context.steps),
        )
        if thread.is_alive():
            # Removing the containers makes pending requests fail, so the thread can end; a
            # flow that never returns (a sleep, a busy loop) is abandoned: it is a daemon thread.
            target.kill()
            thread.join(2)
            message = (
                "flow abandoned: run interrupted"
                if self._stopping.is_set()
                else f"timed out after {timeout:g} s"
            )
            return replace(evidence, status=Status.ERROR, message=message)
        status: Status = outcome["status"]
        exc = outcome.get("exc")
        evidence = replace(evidence, traceback=outcome.get("tb", ""))
        if target.killed and status is not Status.PASSED:
            message = "environment torn down while the flow ran (run interrupted)"
            return replace(evidence, status=Status.ERROR, message=message)
        message = outcome.get("explained") or ("" if exc is None else _describe(exc))
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
        dead = target.casualties() if status is not Status.PASSED else []
        if dead:
            # The flow's own complaint (a 503, a refused connection) is a symptom: name the cause.
            cause = "; ".join(dead)
            status, message = Status.ERROR, f"{cause} during the flow\nthe flow saw: {message}"
        return replace(evidence, status=status, message=message)


def _flow_body(
    flow: Flow, context: FlowContext, buffer: io.StringIO, outcome: dict[str, Any]
) -> None:
    """The flow's own thread: run it, capture its prints, record how it ended."""
    capture_here(buffer)
    try:
        flow.func(context)
        outcome["status"] = Status.PASSED
    except AssertionError as exc:
        # A CRUD flow's traceback is the crud machinery's: its steps' messages say it all.
        shown = "" if isinstance(exc, CrudFailed) else traceback.format_exc()
        outcome.update(status=Status.FAILED, exc=exc, tb=shown)
        if not str(exc).strip():  # a bare assert: say what it compared, as pytest does
            outcome["explained"] = explain_assertion(exc)
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a flow must not end the run
        outcome.update(status=Status.ERROR, exc=exc, tb=traceback.format_exc())
    finally:
        capture_here(None)
        try:
            context.api.close()
            context.close()
        except Exception:  # noqa: BLE001, S110 - the flow's own result matters more
            pass


def _context(
    flow: Flow, target: Target, recorder: RequestRecorder, executor: FlowExecutor
) -> FlowContext:
    """The flow's context: its app's client, its own database, more users, a log."""
    holder: list[FlowContext] = []

    def log(line: str) -> None:
        if holder:
            holder[0].log(line)

    def new_client(**kwargs: Any) -> ApiClient:
        kwargs.setdefault("recorder", recorder)
        kwargs.setdefault("log", log)
        kwargs["headers"] = {**executor.headers, **(kwargs.get("headers") or {})}
        return ApiClient(target.base_url, **kwargs)

    context = FlowContext(
        name=flow.name,
        base_url=target.base_url,
        api=ApiClient(target.base_url, recorder=recorder, log=log, headers=executor.headers),
        _connect_db=target.database.connect,
        _new_client=new_client,
        _openapi=lambda: executor.openapi_document(target.base_url),
    )
    holder.append(context)
    return context


def _join_unless_killed(thread: threading.Thread, target: Target, timeout: float) -> None:
    """Wait for a flow's thread until it ends, times out, or its environment is killed."""
    deadline = time.monotonic() + timeout
    while thread.is_alive():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        thread.join(min(0.1, remaining))
        if target.killed:
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
