"""Starting, cancelling and recovering console runs: each run is a ``nocrud up`` process.

A run started from the console is ``nocrud -c CONFIG up --no-record --report-to URL``
with the run's own id and token in its environment: it streams its flows back through
the same endpoint a CI job's ``--report-to`` uses, its output becomes the run's log,
cancelling is SIGTERM (the workflow tears its environments down and exits 130), and the
console's memory never holds Docker or a run. A run started anywhere else is cancelled
through the store: it polls its cancel request (``nocrud up`` in
:mod:`nocrud.cli._record`) and stops like Ctrl-C. The one-active-run rule is the store's
unique index, so two racing requests cannot both start one.

On start-up, :meth:`Launcher.recover` marks runs whose process is gone as interrupted
and sweeps what they left with ``nocrud clean`` (which spares runs still going).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, Final

from nocrud.console.forms import StartRequest
from nocrud.console.settings import ConsoleSettings
from nocrud.store import RunStatus, RunStore, status_for

__all__ = ["Launcher", "NotCancellable"]

log = logging.getLogger("nocrud.console")

#: A remote run that sent nothing for this long is taken for dead on start-up.
REMOTE_SILENCE: Final = 3600.0
#: Log lines are written in batches this often.
LOG_FLUSH: Final = 0.3


class NotCancellable(Exception):  # noqa: N818 - reads as the answer
    """The run cannot be cancelled (it is over); the message says why."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: SIGTERM the run if the console dies (even by SIGKILL), so it tears down."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Launcher:
    """The runs this console started, as processes."""

    def __init__(self, store: RunStore, settings: ConsoleSettings) -> None:
        self._store = store
        self._settings = settings
        self._procs: dict[str, subprocess.Popen[str]] = {}
        self._cancelled: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nocrud-spawn")

    def start(self, request: StartRequest, *, trigger: str = "console") -> str:
        """Start a run; returns its id.

        Raises:
            ActiveRunError: The project already has an active console run.
        """
        run_id, token = self._store.create_run(
            project=self._settings.project,
            trigger=trigger,
            selection=request.shown(),
            parallel=request.parallel,
            strategy=request.strategy,
            lock=True,
        )
        argv = [
            *self._settings.command,
            "-c",
            str(self._settings.config_path),
            "up",
            "--no-record",
            "--report-to",
            self._settings.public_url,
            *request.argv(),
        ]
        env = {
            **os.environ,
            **self._settings.extra_env,
            "NOCRUD_REPORT_RUN": run_id,
            "NOCRUD_REPORT_TOKEN": token,
            "NOCRUD_STRATEGY": request.strategy,
            "NO_COLOR": "1",
            "COLUMNS": "160",
        }
        self._store.append_log(run_id, [f"$ nocrud up {' '.join(request.argv())}"])
        try:
            # Spawned from the launcher's one long-lived thread: Linux sends the parent-death
            # signal when the *thread* that forked the child ends, and request threads do.
            proc = self._spawner.submit(
                subprocess.Popen,
                argv,
                cwd=self._settings.config_path.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                preexec_fn=_die_with_parent,  # only a prctl: safe between fork and exec
            ).result()
        except OSError as exc:
            self._store.finish_run(
                run_id, status=RunStatus.ERROR, message=f"could not start nocrud: {exc}"
            )
            return run_id
        self._store.set_owner(run_id, f"{socket.gethostname()}:{proc.pid}")
        with self._lock:
            self._procs[run_id] = proc
        thread = threading.Thread(
            target=self._follow, args=(run_id, proc), name=f"nocrud-run-{run_id}", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        return run_id

    def cancelled(self, run_id: str) -> bool:
        return run_id in self._cancelled

    def cancel(self, run_id: str) -> str:
        """Stop an active run, wherever it runs; returns what happens now, in a few words.

        A run this console started gets SIGTERM, so it tears its environments down. Any
        other run (``nocrud up`` on this machine or elsewhere, recording into this store
        or reporting here) is asked through the store: it checks every second or two and
        stops like Ctrl-C. A run whose process on this machine is gone is over at once.

        Raises:
            NotCancellable: The run is already over.
        """
        self._cancelled.add(run_id)
        with self._lock:
            proc = self._procs.get(run_id)
        if proc is not None and proc.poll() is None:
            self._store.request_cancel(run_id)
            self._store.append_log(run_id, ["nocrud serve: cancelled; tearing down environments"])
            proc.send_signal(signal.SIGTERM)
            return "cancelling: tearing down its environments"
        run = self._store.get_run(run_id)
        where, _, pid = str(run["owner"] if run else "").rpartition(":")
        # A run recorded into this store from this machine (not one reporting over HTTP,
        # whose host name may be anyone's) can be told dead by its pid.
        here = (
            run is not None
            and run["trigger"] != "remote"
            and where == socket.gethostname()
            and pid.isdigit()
        )
        if here and not _alive(int(pid)):
            self._store.append_log(run_id, ["nocrud serve: cancelled; its process was gone"])
            self._store.finish_run(
                run_id, status=RunStatus.CANCELLED, message="its process was gone"
            )
            return "cancelled: its process was gone"
        if not self._store.request_cancel(run_id):
            raise NotCancellable(f"run {run_id} is already over")
        self._store.append_log(
            run_id, ["nocrud serve: cancel requested; the run stops within seconds and tears down"]
        )
        return "cancelling: the run was asked to stop and tear down"

    def _follow(self, run_id: str, proc: subprocess.Popen[str]) -> None:
        """Copy the run's output into its log, then record how it ended."""
        last = ""
        try:
            last = self._pump(run_id, proc.stdout)
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            code = proc.wait()
            with self._lock:
                self._procs.pop(run_id, None)
            self._ended(run_id, code, last)

    def _pump(self, run_id: str, stream: IO[str] | None) -> str:
        if stream is None:
            return ""
        batch: list[str] = []
        flushed = time.monotonic()
        last = ""
        for raw in stream:
            line = raw.rstrip("\n")
            if line.strip():
                last = line
            batch.append(line)
            # Write when the process has nothing more to say right now, or every so often
            # while it says a lot: a quiet run's last line is never held back.
            idle = not select.select([stream], [], [], 0)[0]
            if idle or len(batch) >= 200 or time.monotonic() - flushed > LOG_FLUSH:
                self._store.append_log(run_id, batch)
                batch, flushed = [], time.monotonic()
        if batch:
            self._store.append_log(run_id, batch)
        return last

    def _ended(self, run_id: str, code: int, last_line: str) -> None:
        run = self._store.get_run(run_id)
        cancelled = run_id in self._cancelled
        if run is None:
            return
        if run["status"] in (RunStatus.QUEUED, RunStatus.RUNNING):
            self._store.finish_run(
                run_id,
                status=status_for(code, cancelled=cancelled),
                exit_code=code,
                message=last_line if code not in (0, 1) else "",
            )
        elif cancelled and run["status"] == RunStatus.INTERRUPTED:
            self._store.finish_run(run_id, status=RunStatus.CANCELLED, exit_code=code)

    def recover(self) -> list[str]:
        """Runs left active by a process that is gone are interrupted; their objects swept."""
        host = socket.gethostname()
        gone: list[str] = []
        now = time.time()
        for run in self._store.active_runs():
            where, _, pid = str(run["owner"]).rpartition(":")
            if where == host and pid.isdigit():
                dead = not _alive(int(pid))
            elif run["trigger"] == "console":
                dead = True  # queued by a console that died before starting it
            else:
                dead = now - float(run["updated_at"]) > REMOTE_SILENCE
            if dead:
                gone.append(str(run["id"]))
        if gone:
            self._store.mark_interrupted(
                gone, "interrupted: its process ended without finishing (console restart?)"
            )
            sweep = threading.Thread(target=self._sweep, args=(gone,), name="nocrud-sweep")
            sweep.daemon = True
            self._threads.append(sweep)
            sweep.start()
        return gone

    def _sweep(self, run_ids: list[str]) -> None:
        """``nocrud clean``: remove what dead runs left (it spares runs still going)."""
        try:
            done = subprocess.run(
                [*self._settings.command, "clean"],
                cwd=self._settings.config_path.parent,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
                env={**os.environ, **self._settings.extra_env, "NO_COLOR": "1"},
            )
            said = (done.stdout + done.stderr).strip().splitlines()
            line = f"swept its environments: {said[0] if said else 'nothing left'}"
        except (OSError, subprocess.SubprocessError) as exc:
            line = f"could not sweep its environments ({exc}): run `nocrud clean`"
        for run_id in run_ids:
            self._store.append_log(run_id, [f"nocrud serve: {line}"])

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every run this console started (they tear down) and wait for them."""
        with self._lock:
            procs = list(self._procs.items())
        for _run_id, proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        self._spawner.shutdown(wait=False)

    def wait(self, timeout: float = 60.0) -> None:
        """Wait for the runs and sweeps started so far (tests)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def running(self) -> dict[str, Any]:
        with self._lock:
            return {run_id: proc.pid for run_id, proc in self._procs.items()}
