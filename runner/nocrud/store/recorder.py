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

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from nocrud.errors import UsageError
from nocrud.masking import mask_text
from nocrud.results import FlowResult, RunResult
from nocrud.store.core import RunStatus, RunStore, StoreError

__all__ = [
    "STORE_ENV",
    "Fanout",
    "GitInfo",
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
    """A run's final status from ``nocrud up``'s exit code."""
    if cancelled:
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


class Recorder(Protocol):
    """Hears a run from start to end. Every method may be called from a worker thread."""

    def run_started(self, start: RunStart) -> None: ...

    def flow_started(self, name: str, worker: int) -> None: ...

    def flow_finished(self, result: FlowResult) -> None: ...

    def log(self, lines: Sequence[str]) -> None: ...

    def run_finished(self, result: RunResult | None, exit_code: int, message: str = "") -> None: ...

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
    """Writes the run into the local store (``nocrud up`` without ``--no-record``)."""

    def __init__(
        self, store: RunStore, *, say: Callable[[str], None], trigger: str = "cli"
    ) -> None:
        super().__init__(say, f"could not record this run in {mask_text(store.url)}")
        self._store = store
        self._trigger = trigger
        self.run_id = ""

    def run_started(self, start: RunStart) -> None:
        try:
            self.run_id, _ = self._store.create_run(
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

    def run_finished(self, result: RunResult | None, exit_code: int, message: str = "") -> None:
        if self.run_id:
            try:
                self._store.finish_run(
                    self.run_id,
                    status=status_for(exit_code),
                    result=result,
                    exit_code=exit_code,
                    message=message,
                )
            except Exception as exc:  # noqa: BLE001 - recording must not fail the run
                self._failed(exc)

    def close(self) -> None:
        self._store.close()


class RemoteRecorder(_Guarded):
    """Streams the run's events to a ``nocrud serve`` (``nocrud up --report-to URL``).

    Events are queued and posted in batches by one background thread, so a slow
    console never slows a flow. When the console does not answer, events are kept
    and sent at the end; if it still does not answer they are dropped with one warning.

    Args:
        url: The console's base URL.
        say: Prints one line for the user.
        run_id: The console's id for this run, when the console started it (it passes
            ``NOCRUD_REPORT_RUN``); otherwise the run registers itself on start.
        token: The run's token (``NOCRUD_REPORT_TOKEN``) when the console started it.
        serve_token: The console's own token, needed to register a run with a console
            that listens beyond loopback (``NOCRUD_SERVE_TOKEN``).
    """

    interval = 0.5

    def __init__(
        self,
        url: str,
        *,
        say: Callable[[str], None],
        run_id: str = "",
        token: str = "",
        serve_token: str = "",
        timeout: float = 5.0,
    ) -> None:
        super().__init__(say, f"console at {url} did not take this run's events")
        import requests

        self._url = url.rstrip("/")
        self._session = requests.Session()
        self._run_id = run_id
        self._token = token
        self._serve_token = serve_token
        self._timeout = timeout
        self._start: RunStart | None = None
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._down_since: float | None = None
        self._thread = threading.Thread(target=self._loop, name="nocrud-report", daemon=True)
        self._thread.start()

    @property
    def run_id(self) -> str:
        return self._run_id

    def _event(self, kind: str, **data: Any) -> None:
        with self._lock:
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

    def run_finished(self, result: RunResult | None, exit_code: int, message: str = "") -> None:
        self._event(
            "run_finished",
            result=result.to_dict() if result is not None else None,
            exit_code=exit_code,
            message=message,
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
        if not batch:
            return
        try:
            if not self._run_id:
                self._register()
            answer = self._session.post(
                f"{self._url}/api/runs/{self._run_id}/events",
                json={"events": batch},
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._timeout,
            )
            answer.raise_for_status()
        except (requests.RequestException, RuntimeError, ValueError):
            if self._down_since is None:
                self._down_since = time.time()
            return
        self._down_since = None
        with self._lock:
            del self._pending[: len(batch)]

    def _register(self) -> None:
        start = self._start
        headers = {"Authorization": f"Bearer {self._serve_token}"} if self._serve_token else {}
        answer = self._session.post(
            f"{self._url}/api/reports",
            json={
                "project": start.project if start else "unknown",
                "run_id": start.nocrud_run_id if start else "",
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

    def run_finished(self, result: RunResult | None, exit_code: int, message: str = "") -> None:
        for r in self.recorders:
            r.run_finished(result, exit_code, message)

    def close(self) -> None:
        for r in self.recorders:
            r.close()


#: Environment variables of the run store (the CLI's flags win over them).
STORE_ENV: dict[str, str] = {
    "NOCRUD_STORE_URL": "the history database (default: sqlite under .nocrud/)",
    "NOCRUD_STORE_KEEP_RUNS": "runs kept (default 1000)",
    "NOCRUD_STORE_KEEP_DAYS": "days runs are kept (default 90)",
}


@dataclass(frozen=True)
class StoreSettings:
    """Where the history lives and how much of it is kept."""

    url: str
    keep_runs: int = 1000
    keep_days: float = 90.0


def store_settings(root: Path, env: Mapping[str, str], url: str | None = None) -> StoreSettings:
    """The store of the project in ``root``: ``url``, else ``NOCRUD_STORE_URL``, else SQLite.

    Raises:
        UsageError: A retention variable is not a positive number (named, with the fix).
    """
    from nocrud.store.core import default_url

    def number(var: str, default: float, kind: type[float] | type[int]) -> float:
        raw = env.get(var, "").strip()
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            value = -1
        if value <= 0:
            raise UsageError(f"{var}={raw!r}: must be a positive {kind.__name__}, e.g. {var}=30")
        return value

    return StoreSettings(
        url=url or env.get("NOCRUD_STORE_URL", "").strip() or default_url(root),
        keep_runs=int(number("NOCRUD_STORE_KEEP_RUNS", 1000, int)),
        keep_days=number("NOCRUD_STORE_KEEP_DAYS", 90.0, float),
    )


def recorder_for(
    root: Path,
    *,
    record: bool,
    report_to: str | None,
    say: Callable[[str], None],
    env: Mapping[str, str],
) -> Recorder | None:
    """The recorders ``nocrud up`` asked for: the local store, a console, both or none.

    A store that cannot be opened is one warning, never a failed run.
    """
    recorders: list[Recorder] = []
    if record:
        settings = store_settings(root, env)
        try:
            store = RunStore(settings.url)
            store.retain(keep_runs=settings.keep_runs, keep_days=settings.keep_days)
        except StoreError as exc:
            say(f"warning: this run is not recorded: {exc}")
        else:
            recorders.append(StoreRecorder(store, say=say))
    if report_to:
        recorders.append(
            RemoteRecorder(
                report_to,
                say=say,
                run_id=env.get("NOCRUD_REPORT_RUN", ""),
                token=env.get("NOCRUD_REPORT_TOKEN", ""),
                serve_token=env.get("NOCRUD_SERVE_TOKEN", ""),
            )
        )
    if not recorders:
        return None
    return recorders[0] if len(recorders) == 1 else Fanout(*recorders)


class Recording:
    """Brackets one ``nocrud up``: started before it, finished with its exit code after.

    The final results are read back from the results file the run wrote (``results``)
    when it wrote one; a run that ended in an error (a build that failed, Ctrl-C) is
    finished with that error's exit code and message, and the error goes on.
    """

    def __init__(self, recorder: Recorder | None, start: RunStart, results: Path) -> None:
        self._recorder = recorder
        self._start = start
        self._results = results
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
        try:
            self._recorder.run_finished(self._read_results(), code, message)
        finally:
            self._recorder.close()

    def _read_results(self) -> RunResult | None:
        try:
            if self._results.stat().st_mtime < self._t0 - 1:
                return None  # an older run's file: this one ended before reporting
            return RunResult.from_dict(json.loads(self._results.read_text()))
        except (OSError, ValueError, KeyError):
            return None
