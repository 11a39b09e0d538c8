"""Recording a run as it happens: into the local store, or to a console over HTTP.

A :class:`Recorder` hears the run's life (started with its flows, each flow started and
finished, log lines, finished with its exit code) and is also a scheduler
``RunListener`` (``flow_started`` / ``flow_finished`` from worker threads).
:class:`StoreRecorder` writes into a :class:`~nocrud.store.RunStore`;
:class:`RemoteRecorder` (``nocrud up --report-to URL``) streams the same events to a
``nocrud serve`` authenticated by a token issued for this run alone. Neither may fail
the run: a problem is said once and the run goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nocrud.masking import mask_text
from nocrud.results import FlowResult, RunResult

if TYPE_CHECKING:
    from nocrud.config import Config
    from nocrud.store.core import RunStatus, RunStore

__all__ = [
    "Fanout",
    "GitInfo",
    "InBackground",
    "OnCancel",
    "Recorder",
    "Recording",
    "RemoteRecorder",
    "RunStart",
    "StoreRecorder",
    "StoreSettings",
    "git_info",
    "owner",
    "recorder_for",
    "status_for",
    "store_settings",
]


@dataclass(frozen=True)
class GitInfo:
    commit: str = ""
    branch: str = ""


def git_info(root: Path) -> GitInfo:
    """The commit and branch of the repository holding ``root``; empty outside one."""

    def ask(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    return GitInfo(commit=ask("rev-parse", "HEAD"), branch=ask("rev-parse", "--abbrev-ref", "HEAD"))


def owner() -> str:
    """``host:pid`` of this process, as the Docker labels spell it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def status_for(exit_code: int, *, cancelled: bool = False) -> RunStatus:
    """A run's final status from ``nocrud up``'s exit code.

    ``cancelled``: someone asked it to stop. A run that passed or failed all the same
    (it ended before it heard) keeps its own verdict.
    """
    from nocrud.store.core import RunStatus

    if cancelled and exit_code not in (0, 1):
        return RunStatus.CANCELLED
    return {0: RunStatus.PASSED, 1: RunStatus.FAILED, 130: RunStatus.INTERRUPTED}.get(
        exit_code, RunStatus.ERROR
    )


@dataclass(frozen=True)
class RunStart:
    """What is known when a run's flows are chosen."""

    project: str
    flow_names: tuple[str, ...]
    parallel: int
    strategy: str
    nocrud_run_id: str
    nocrud_version: str
    selection: dict[str, Any]
    git: GitInfo = GitInfo()


#: Called once when the console asks this run to stop; the argument says who asked.
OnCancel = Callable[[str], None]


class Recorder(Protocol):
    """Hears a run from start to end. Every method may be called from a worker thread.

    ``run_finished``'s ``cancelled`` says the run stopped because the console asked it
    to (its exit code is then 130, as for Ctrl-C).
    """

    def run_started(self, start: RunStart) -> None: ...

    def flow_started(self, name: str, worker: int) -> None: ...

    def flow_finished(self, result: FlowResult) -> None: ...

    def log(self, lines: Sequence[str]) -> None: ...

    def run_finished(
        self,
        result: RunResult | None,
        exit_code: int,
        message: str = "",
        *,
        cancelled: bool = False,
    ) -> None: ...

    def close(self) -> None: ...


class _Guarded:
    """Says the first failure once; a recorder never breaks the run it records."""

    def __init__(self, say: Callable[[str], None], what: str) -> None:
        self._say = say
        self._what = what
        self._warned = False
        self._lock = threading.Lock()

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        self._say(f"warning: {self._what}: {type(exc).__name__}: {exc} (the run goes on)")


class StoreRecorder(_Guarded):
    """Writes the run into the local store (``nocrud up`` without ``--no-record``).

    With ``on_cancel``, a thread asks the store every ``poll`` seconds whether the
    console was asked to cancel this run, and calls ``on_cancel`` once when it was.
    With ``keep`` (runs, days), the store's retention runs once the run is recorded,
    so the newest ``runs`` runs, this one included, are what is left.

    Attributes:
        run_id: The run's id in the store, once started (empty when recording failed).
        token: The run's own token there; proves to a console on the same store that
            this process recorded ``run_id`` (see :class:`RemoteRecorder`).
    """

    def __init__(
        self,
        store: RunStore,
        *,
        say: Callable[[str], None],
        trigger: str = "cli",
        on_cancel: OnCancel | None = None,
        poll: float = 1.0,
        keep: tuple[int, float] | None = None,
    ) -> None:
        super().__init__(say, f"could not record this run in {mask_text(store.url)}")
        self._store = store
        self._keep = keep
        self._trigger = trigger
        self._on_cancel = on_cancel
        self._poll = poll
        self._over = threading.Event()
        self._watcher: threading.Thread | None = None
        self.run_id = ""
        self.token = ""

    def run_started(self, start: RunStart) -> None:
        from nocrud.store.core import RunStatus

        try:
            self.run_id, self.token = self._store.create_run(
                project=start.project,
                trigger=self._trigger,
                run_id=start.nocrud_run_id,
                selection=start.selection,
                parallel=start.parallel,
                strategy=start.strategy,
                status=RunStatus.RUNNING,
                owner=owner(),
            )
            self._store.start_run(
                self.run_id,
                flow_names=start.flow_names,
                commit=start.git.commit,
                branch=start.git.branch,
                nocrud_run_id=start.nocrud_run_id,
                nocrud_version=start.nocrud_version,
            )
        except Exception as exc:  # noqa: BLE001 - recording must not fail the run
            self.run_id = ""
            self._failed(exc)
            return
        if self._on_cancel is not None:
            self._watcher = threading.Thread(
                target=self._watch, name="nocrud-cancel-watch", daemon=True
            )
            self._watcher.start()

    def _watch(self) -> None:
        while not self._over.wait(self._poll):
            try:
                asked = self._store.cancel_requested(self.run_id)
            except Exception:  # noqa: BLE001, S112 - a busy or lost store: ask again later
                continue
            if asked and self._on_cancel is not None and not self._over.is_set():
                self._on_cancel(f"the console (run {self.run_id})")
                return

    def flow_started(self, name: str, worker: int) -> None:
        if self.run_id:
            try:
                self._store.flow_started(self.run_id, name, worker)
                self._store.append_log(self.run_id, [f"started  {name}  (worker {worker})"])
            except Exception as exc:  # noqa: BLE001 - recording must not fail the run
                self._failed(exc)

    def flow_finished(self, result: FlowResult) -> None:
        if self.run_id:
            try:
                self._store.flow_finished(self.run_id, result)
                self._store.append_log(
                    self.run_id,
                    [
                        f"{result.status.value.upper():8} {result.name}"
                        f"  ({result.timings.total:.2f} s)"
                    ],
                )
            except Exception as exc:  # noqa: BLE001 - recording must not fail the run
                self._failed(exc)

    def log(self, lines: Sequence[str]) -> None:
        if self.run_id:
            try:
                self._store.append_log(self.run_id, lines)
            except Exception as exc:  # noqa: BLE001 - recording must not fail the run
                self._failed(exc)

    def run_finished(
        self,
        result: RunResult | None,
        exit_code: int,
        message: str = "",
        *,
        cancelled: bool = False,
    ) -> None:
        self._over.set()
        if self.run_id:
            try:
                self._store.finish_run(
                    self.run_id,
                    status=status_for(exit_code, cancelled=cancelled),
                    result=result,
                    exit_code=exit_code,
                    message=message,
                )
                if self._keep is not None:
                    self._store.retain(keep_runs=self._keep[0], keep_days=self._keep[1])
            except Exception as exc:  # noqa: BLE001 - recording must not fail the run
                self._failed(exc)

    def close(self) -> None:
        self._over.set()
        if self._watcher is not None:
            self._watcher.join(timeout=self._poll + 5)
        self._store.close()


class RemoteRecorder(_Guarded):
    """Streams the run's events to a ``nocrud serve`` (``nocrud up --report-to URL``).

    Events are queued and posted in batches by one background thread, so a slow
    console never slows a flow. When the console does not answer, events are kept
    and sent at the end; if it still does not answer they are dropped with one warning.
    Every answer says whether the console was asked to cancel the run; while nothing
    else is to be sent, an empty batch every :attr:`heartbeat` seconds asks.

    Args:
        url: The console's base URL.
        say: Prints one line for the user.
        run_id: The console's id for this run, when the console started it (it passes
            ``NOCRUD_REPORT_RUN``); otherwise the run registers itself on start.
        token: The run's token (``NOCRUD_REPORT_TOKEN``) when the console started it.
        serve_token: The console's own token, needed to register a run with a console
            that listens beyond loopback (``NOCRUD_SERVE_TOKEN``).
        local: The recorder writing this run into a local store. Registering shows the
            console its id and token there: a console reading that same store takes the
            run as it is (one run, not two) and needs none of its events.
        on_cancel: Called once when the console answers that the run is to stop.
    """

    interval = 0.5
    heartbeat = 2.0

    def __init__(
        self,
        url: str,
        *,
        say: Callable[[str], None],
        run_id: str = "",
        token: str = "",
        serve_token: str = "",
        timeout: float = 5.0,
        local: StoreRecorder | None = None,
        on_cancel: OnCancel | None = None,
    ) -> None:
        super().__init__(say, f"console at {url} did not take this run's events")
        import requests

        self._url = url.rstrip("/")
        self._session = requests.Session()
        self._run_id = run_id
        self._token = token
        self._serve_token = serve_token
        self._timeout = timeout
        self._local = local
        self._on_cancel = on_cancel
        self._cancel_heard = False
        #: The console reads this run from its own store: events are not sent.
        self.shared_store = False
        self._start: RunStart | None = None
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._down_since: float | None = None
        self._last_post = 0.0
        self._thread = threading.Thread(target=self._loop, name="nocrud-report", daemon=True)
        self._thread.start()

    @property
    def run_id(self) -> str:
        return self._run_id

    def _event(self, kind: str, **data: Any) -> None:
        with self._lock:
            if self.shared_store:
                return  # the console reads this run from the store it shares with us
            self._pending.append({"type": kind, "at": time.time(), **data})
        self._wake.set()

    def run_started(self, start: RunStart) -> None:
        self._start = start
        self._event(
            "run_started",
            flows=list(start.flow_names),
            parallel=start.parallel,
            strategy=start.strategy,
            commit=start.git.commit,
            branch=start.git.branch,
            nocrud_run_id=start.nocrud_run_id,
            nocrud_version=start.nocrud_version,
            owner=owner(),
        )

    def flow_started(self, name: str, worker: int) -> None:
        self._event("flow_started", name=name, worker=worker)

    def flow_finished(self, result: FlowResult) -> None:
        self._event("flow_finished", result=result.to_dict())

    def log(self, lines: Sequence[str]) -> None:
        self._event("log", lines=list(lines))

    def run_finished(
        self,
        result: RunResult | None,
        exit_code: int,
        message: str = "",
        *,
        cancelled: bool = False,
    ) -> None:
        self._event(
            "run_finished",
            result=result.to_dict() if result is not None else None,
            exit_code=exit_code,
            message=message,
            cancelled=cancelled,
        )

    def close(self) -> None:
        """Send what is left (a last try when the console was down), then stop."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=self._timeout * 3)
        with self._lock:
            left = len(self._pending)
        if left:
            self._failed(RuntimeError(f"unreachable; {left} event(s) dropped"))
        self._session.close()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            closing = self._closed.is_set()
            # While the console is down, retry every few seconds rather than every batch.
            if not closing and self._down_since and time.time() - self._down_since < 3:
                continue
            self._flush()
            if closing:
                return

    def _flush(self) -> None:
        import requests

        with self._lock:
            batch = list(self._pending)
        asking = (
            self._run_id
            and not self.shared_store  # then the local recorder asks the store itself
            and self._on_cancel is not None
            and not self._cancel_heard
            and not self._closed.is_set()
            and time.time() - self._last_post >= self.heartbeat
        )
        if not batch and not asking:
            return
        try:
            if not self._run_id:
                recorded = self._register()
                with self._lock:
                    self.shared_store = recorded
                    if recorded:  # nothing to send: the console reads our store
                        self._pending.clear()
                        self._down_since = None
                        return
            answer = self._session.post(
                f"{self._url}/api/runs/{self._run_id}/events",
                json={"events": batch},
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._timeout,
            )
            answer.raise_for_status()
            cancel = answer.status_code == 200 and bool(answer.json().get("cancel"))
        except (requests.RequestException, RuntimeError, ValueError):
            if self._down_since is None:
                self._down_since = time.time()
            return
        self._down_since = None
        self._last_post = time.time()
        with self._lock:
            del self._pending[: len(batch)]
        if cancel and self._on_cancel is not None and not self._cancel_heard:
            self._cancel_heard = True
            self._on_cancel(f"the console at {self._url}")

    def _register(self) -> bool:
        """Get an id and token from the console; True when it shares our local store."""
        start = self._start
        local = self._local
        headers = {"Authorization": f"Bearer {self._serve_token}"} if self._serve_token else {}
        answer = self._session.post(
            f"{self._url}/api/reports",
            json={
                "project": start.project if start else "unknown",
                # The run's own id: the console records it under that id when it is free.
                "run_id": (local.run_id if local else "") or (start.nocrud_run_id if start else ""),
                "token": local.token if local else "",
                "selection": start.selection if start else {},
                "parallel": start.parallel if start else 1,
                "strategy": start.strategy if start else "",
            },
            headers=headers,
            timeout=self._timeout,
        )
        answer.raise_for_status()
        data = answer.json()
        self._run_id, self._token = str(data["run_id"]), str(data["token"])
        return bool(data.get("recorded"))


class Fanout:
    """Hands every event to several recorders (and the run's terminal reporter)."""

    def __init__(self, *recorders: Recorder) -> None:
        self.recorders = recorders

    def run_started(self, start: RunStart) -> None:
        for r in self.recorders:
            r.run_started(start)

    def flow_started(self, name: str, worker: int) -> None:
        for r in self.recorders:
            r.flow_started(name, worker)

    def flow_finished(self, result: FlowResult) -> None:
        for r in self.recorders:
            r.flow_finished(result)

    def log(self, lines: Sequence[str]) -> None:
        for r in self.recorders:
            r.log(lines)

    def run_finished(
        self,
        result: RunResult | None,
        exit_code: int,
        message: str = "",
        *,
        cancelled: bool = False,
    ) -> None:
        for r in self.recorders:
            r.run_finished(result, exit_code, message, cancelled=cancelled)

    def close(self) -> None:
        for r in self.recorders:
            r.close()


class InBackground:
    """A recorder made, fed and closed on a thread of its own, so nobody waits for the store.

    ``make`` builds the real recorder (opening the store imports SQLAlchemy and may
    migrate it: a tenth of a second or more) on that thread, while the run gets ready;
    every event is then handed to it in the order it came, and worker threads only
    queue theirs. :meth:`close` waits until everything queued is written, so the run's
    record is complete when ``nocrud up`` exits. A recorder that cannot be made (None)
    drops the events; the recorders say their own problems once.

    Args:
        make: Builds the recorder (e.g. :func:`recorder_for`), or returns None.
        complete: Fills in the run's start on that thread before it is recorded (e.g.
            its git commit and branch, two ``git`` processes).
    """

    def __init__(
        self,
        make: Callable[[], Recorder | None],
        complete: Callable[[RunStart], RunStart] | None = None,
    ) -> None:
        self._complete = complete
        self._jobs: queue.SimpleQueue[Callable[[Recorder], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._serve, args=(make,), name="nocrud-record", daemon=True
        )
        self._thread.start()

    def _serve(self, make: Callable[[], Recorder | None]) -> None:
        try:
            recorder = make()
        except Exception:  # noqa: BLE001 - recording must not fail the run
            recorder = None
        while (job := self._jobs.get()) is not None:
            if recorder is not None:
                # Each recorder says its own failures; none may stop the others' events.
                with contextlib.suppress(Exception):
                    job(recorder)
        if recorder is not None:
            recorder.close()

    def run_started(self, start: RunStart) -> None:
        complete = self._complete
        self._jobs.put(lambda r: r.run_started(complete(start) if complete else start))

    def flow_started(self, name: str, worker: int) -> None:
        self._jobs.put(lambda r: r.flow_started(name, worker))

    def flow_finished(self, result: FlowResult) -> None:
        self._jobs.put(lambda r: r.flow_finished(result))

    def log(self, lines: Sequence[str]) -> None:
        lines = list(lines)
        self._jobs.put(lambda r: r.log(lines))

    def run_finished(
        self,
        result: RunResult | None,
        exit_code: int,
        message: str = "",
        *,
        cancelled: bool = False,
    ) -> None:
        self._jobs.put(lambda r: r.run_finished(result, exit_code, message, cancelled=cancelled))

    def close(self) -> None:
        """Write what is queued, close the recorder, end the thread. Call once."""
        self._jobs.put(None)
        self._thread.join()


@dataclass(frozen=True)
class StoreSettings:
    """Where the history lives and how much of it is kept (nocrud.yaml's ``store`` section)."""

    url: str
    keep_runs: int = 1000
    keep_days: float = 90.0


def store_settings(config: Config) -> StoreSettings:
    """The store settings of a loaded configuration (its precedence already applied)."""
    return StoreSettings(
        url=config.store_url, keep_runs=config.store.keep_runs, keep_days=config.store.keep_days
    )


def recorder_for(
    settings: StoreSettings | None,
    *,
    report_to: str | None,
    say: Callable[[str], None],
    env: Mapping[str, str],
    on_cancel: OnCancel | None = None,
) -> Recorder | None:
    """The recorders ``nocrud up`` asked for: the local store, a console, both or none.

    Args:
        settings: The store to record into; None with ``--no-record``.
        report_to: The console to stream to (``--report-to``), or None.
        say: Prints one line for the user.
        env: The environment (a console that started this run passes its id and token).
        on_cancel: Called once when the console asks the run to stop. Not for a run a
            console started itself: that console stops its process directly.

    A store that cannot be opened is one warning, never a failed run.
    """
    recorders: list[Recorder] = []
    local: StoreRecorder | None = None
    started_by_console = bool(env.get("NOCRUD_REPORT_RUN", ""))
    listen = None if started_by_console else on_cancel
    if settings is not None:
        from nocrud.store.core import RunStore, StoreError

        try:
            store = RunStore(settings.url)
        except StoreError as exc:
            say(f"warning: this run is not recorded: {exc}")
        else:
            local = StoreRecorder(
                store,
                say=say,
                on_cancel=listen,
                keep=(settings.keep_runs, settings.keep_days),
            )
            recorders.append(local)
    if report_to:
        recorders.append(
            RemoteRecorder(
                report_to,
                say=say,
                run_id=env.get("NOCRUD_REPORT_RUN", ""),
                token=env.get("NOCRUD_REPORT_TOKEN", ""),
                serve_token=env.get("NOCRUD_SERVE_TOKEN", ""),
                local=local,
                on_cancel=listen,
            )
        )
    if not recorders:
        return None
    return recorders[0] if len(recorders) == 1 else Fanout(*recorders)


class Recording:
    """Brackets one ``nocrud up``: started before it, finished with its exit code after.

    The final results are read back from the results file the run wrote (``results``)
    when it wrote one; a run that ended in an error (a build that failed, Ctrl-C) is
    finished with that error's exit code and message, and the error goes on. A run
    stopped (exit 130) after ``cancelled`` was set is recorded as cancelled.
    """

    def __init__(
        self,
        recorder: Recorder | None,
        start: RunStart,
        results: Path,
        cancelled: threading.Event | None = None,
    ) -> None:
        self._recorder = recorder
        self._start = start
        self._results = results
        self._cancelled = cancelled or threading.Event()
        self._t0 = time.time()
        self.exit_code = 0

    def __enter__(self) -> Recording:
        if self._recorder is not None:
            self._recorder.run_started(self._start)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> None:
        if self._recorder is None:
            return
        code, message = self.exit_code, ""
        if isinstance(exc, KeyboardInterrupt):
            code, message = 130, "interrupted"
        elif isinstance(exc, SystemExit):
            code = exc.code if isinstance(exc.code, int) else 1
        elif exc is not None:
            code = int(getattr(exc, "exit_code", 1))
            message = str(exc)
        cancelled = self._cancelled.is_set() and code == 130
        if cancelled:
            message = "cancelled from the console"
        try:
            self._recorder.run_finished(self._read_results(), code, message, cancelled=cancelled)
        finally:
            self._recorder.close()

    def _read_results(self) -> RunResult | None:
        try:
            if self._results.stat().st_mtime < self._t0 - 1:
                return None  # an older run's file: this one ended before reporting
            return RunResult.from_dict(json.loads(self._results.read_text()))
        except (OSError, ValueError, KeyError):
            return None
