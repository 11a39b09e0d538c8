"""How a pool pair's app process is renewed between flows (``run.pool_app_reload``).

A reset must leave no process that served the last flow. A container restart does that
for any app, at the price of a full boot; a signal to a server's master that forks new
workers does it for much less, but only where the master really replaces its workers
on that signal. From outside a container, the one thing nocrud sees is its process table
(``docker top``: pid, parent pid, command line), so the choice reads that:

* the container's main process is **gunicorn** with workers (sync, gthread, uvicorn
  workers; with or without ``--preload``): ``HUP`` makes the master fork new workers and
  stop the old ones; the master itself never serves a request;
* the container's main process is **nocrud's preloading launcher**
  (:mod:`nocrud.environment.preload`, which a pool pair starts uvicorn or ``fastapi run``
  under when its command allows): ``HUP`` makes it kill the servers that served and fork
  new ones from the app as imported; the launcher itself never serves a request;
* anything else is restarted: one process serving requests (uvicorn alone, Django's
  ``runserver --noreload``, a compiled binary: a restart is a full boot), Django's
  autoreloader (it passes no signal on to the server it runs), a shell that started the
  server as its child (the signal reaches the shell, not the server), and every server
  not known to renew its workers on a signal.

An init that passes signals on to its one child (``tini``, Docker's ``--init``,
Podman's ``catatonit``) is looked through. This module only reads process tables: it
has no Docker in it, so every shape is unit-tested with tables.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType

__all__ = [
    "AUTO",
    "RESTART",
    "Process",
    "Reload",
    "ResetClock",
    "SignalRefusedError",
    "choose",
    "for_signal",
    "last_renewal",
    "reset_budget",
    "run_line",
    "workers",
]

AUTO = "auto"
RESTART = "restart"
#: Inits that forward the signals they get to their child (tini's documented behaviour).
FORWARDING_INITS = frozenset({"tini", "tini-static", "docker-init", "catatonit"})
SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox"})
#: Servers whose master forks new workers on SIGHUP and never serves a request itself.
HUP_MASTERS = frozenset({"gunicorn", "gunicorn3"})
#: The launcher's path in the app's container: the word ``auto`` knows it by (see preload.py).
PRELOADED = "/nocrud-preload/launch.py"
#: A reset may take this much longer than twice the pair's measured boot before it is
#: abandoned (and the pair rebuilt); a busy machine slows a boot down a few times.
RESET_SLACK = 5.0
#: How many of a dead app's last log lines the line of an abandoned reset shows.
GAVE_UP_LOG_LINES = 8
#: A reset still running this long after the pair's measured boot says what it waits for.
SLOW_MARGIN = 2.0
_PYTHON = re.compile(r"python[0-9.]*m?$|pypy[0-9.]*$")
#: Interpreter options that take the next argument as their value.
_PYTHON_VALUED = frozenset({"-X", "-W", "-Q"})


@dataclass(frozen=True)
class Process:
    """One row of ``docker top``: pid and parent pid as the host numbers them, command line."""

    pid: int
    ppid: int
    args: str

    @property
    def program(self) -> str:
        """The program's name: past an interpreter (``python3 -m gunicorn``, ``python3 manage.py``).

        gunicorn with setproctitle shows ``gunicorn: master [app]``: that is ``gunicorn`` too.
        """
        words = self.args.split()
        if not words:
            return ""
        first = words[0].rpartition("/")[2].removesuffix(":")
        if not _PYTHON.match(first):
            return first
        rest = iter(words[1:])
        for word in rest:
            if word == "-m":
                return next(rest, "")
            if word in _PYTHON_VALUED:
                next(rest, None)
            elif not word.startswith("-"):
                return word.rpartition("/")[2]
        return first

    @property
    def words(self) -> list[str]:
        return self.args.split()


@dataclass(frozen=True)
class Reload:
    """The reset chosen for an app: a container restart, or a signal to a server's master.

    Attributes:
        signal: The signal's name (``HUP``), or None for a container restart.
        master: The pid the signal reaches (its children are the workers it replaces).
        server: What was seen, for people: ``gunicorn, a master with 2 workers``.
        why: Why this reset, for people.
        overlap: The signal may go before the database's reset, so that both happen at
            once: the new workers run none of the app's code before a request (gunicorn's
            WSGI workers). Not where they run an ASGI lifespan start-up (uvicorn workers,
            nocrud's launcher), which may touch the database while it is being cloned.
        announced: The server says each renewal in its log (nocrud's launcher: a line
            with a growing renewal number, :func:`last_renewal`), so a reset waits for
            that line instead of listing the container's processes (a ``ps`` each).
    """

    signal: str | None
    master: int | None
    server: str
    why: str
    overlap: bool = False
    announced: bool = False

    @property
    def kind(self) -> str:
        """``restart`` or the signal's name (``HUP``): what ``pool_app_reload`` would say."""
        return self.signal or RESTART


class SignalRefusedError(ValueError):
    """A signal was configured for an app on which it is known not to renew the process."""


def choose(processes: Sequence[Process]) -> Reload:  # noqa: PLR0911 - a return per shape
    """The cheapest reset that still renews the app's process state (``auto``)."""
    main, served_by = _main(processes)
    if main is None:
        return Reload(None, None, "no process", "the container runs nothing nocrud can see")
    children = _children(processes, served_by.pid)
    program = served_by.program
    if main.program in SHELLS and served_by is main:
        inner = next((p.program for p in children), "")
        return Reload(
            None,
            main.pid,
            f"a shell ({main.program}) running {inner or 'the server'}",
            f"a signal would reach the shell, not {inner or 'the server'}: restarting the "
            f"container (start the server with exec, e.g. sh -c 'exec {inner or 'server'} …', "
            "and auto can renew its workers with a signal)",
        )
    if _is_runserver(served_by):
        if children:
            return Reload(
                None,
                served_by.pid,
                "Django's runserver with its autoreloader",
                "the autoreloader passes no signal on to the server it runs: restarting "
                "the container, a full boot",
            )
        return _single(served_by, "Django's runserver --noreload")
    if PRELOADED in served_by.words and children:
        return Reload(
            "HUP",
            served_by.pid,
            f"uvicorn under nocrud's preloading launcher ({len(children)} server "
            f"process{'es' if len(children) != 1 else ''})",
            "SIGHUP makes the launcher, which imported the app once and never serves, kill the "
            "servers that served and fork new ones from it: no re-import, no restart",
            announced=True,
        )
    if program in HUP_MASTERS and children:
        kind = _worker_class(served_by)
        return Reload(
            "HUP",
            served_by.pid,
            f"gunicorn, a master with {len(children)} {kind}worker"
            f"{'s' if len(children) != 1 else ''}",
            "SIGHUP makes the master fork new workers and stop the old ones, no restart",
            overlap=kind != "uvicorn ",
        )
    if not children:
        return _single(served_by, program or "the app")
    return Reload(
        None,
        served_by.pid,
        f"{program or 'the app'} with {len(children)} child process"
        f"{'es' if len(children) != 1 else ''}",
        "not a server known to renew its workers on a signal: restarting the container",
    )


def for_signal(processes: Sequence[Process], signal: str) -> Reload:
    """The reset for an explicit ``pool_app_reload: <signal>``, where it can work at all.

    Raises:
        SignalRefusedError: The signal is known not to renew the app's process: it would reach
            a shell, Django's autoreloader, or a process without workers. The message says
            why and what to use instead.
    """
    main, served_by = _main(processes)
    seen = choose(processes)
    if main is None or seen.signal is not None:
        return Reload(signal, seen.master, seen.server, seen.why, overlap=seen.overlap)
    children = _children(processes, served_by.pid)
    if main.program in SHELLS and served_by is main:
        raise SignalRefusedError(
            f"the app's main process is {seen.server}: SIG{signal} reaches the shell, "
            "which does not pass it on, so every reset would wait for workers that never "
            "change. Start the server with exec (sh -c 'exec gunicorn …'), or use "
            "run.pool_app_reload: auto"
        )
    if _is_runserver(served_by) and children:
        raise SignalRefusedError(
            f"the app is {seen.server}, which passes no SIG{signal} on to the server it "
            "runs: use run.pool_app_reload: auto (a restart)"
        )
    if not children:
        raise SignalRefusedError(
            f"the app's container runs a single process ({seen.server}: no workers to "
            "replace, so its state would pass from one flow to the next): use "
            "run.pool_app_reload: auto, or a server that forks workers (gunicorn)"
        )
    # A server nocrud does not know: the user's word, bounded by the reset's deadline.
    return Reload(signal, served_by.pid, seen.server, f"SIG{signal}, as configured")


def run_line(
    reload: Reload, *, configured: str, boot: float, warm: int, auto: Reload | None
) -> str:
    """The run's one line about its resets (empty: nothing worth saying).

    Args:
        reload: The reset the pair uses.
        configured: ``run.pool_app_reload``.
        boot: The pair's measured boot, in seconds.
        warm: ``run.warm``.
        auto: Under ``restart``, what ``auto`` would choose (None: unknown).
    """
    if configured == RESTART:
        if auto is None or auto.signal is None:
            return ""
        return (
            f"pool: the app is {auto.server}: run.pool_app_reload: auto would reset pairs with "
            f"SIG{auto.signal} instead of restarting the app's container, several times "
            "cheaper (see docs/config.md)"
        )
    how = f"SIG{reload.signal}" if reload.signal else "a restart of the app's container"
    line = f"pool: the app is {reload.server}: each reset renews it by {how} ({reload.why})"
    if reload.signal is None and warm == 0:
        line += (
            f"; a restart costs a full boot (about {boot:.1f} s here): --warm N (run.warm) "
            "overlaps those boots with other flows"
        )
    return line


#: The launcher's line after each fork of its servers (see preload_launcher.supervise).
_RENEWAL = re.compile(r"nocrud-preload: server pid [\d, ]+ forked .*\(renewal (\d+)\)")


def last_renewal(logs: str) -> int | None:
    """The number of the launcher's last renewal in ``logs`` (an app's log lines), if any."""
    found = _RENEWAL.findall(logs)
    return int(found[-1]) if found else None


def workers(processes: Iterable[Process], master: int | None) -> set[int]:
    """The pids of ``master``'s children: the workers a signal reset must see replaced."""
    return {p.pid for p in processes if master is not None and p.ppid == master}


def _main(processes: Sequence[Process]) -> tuple[Process | None, Process]:
    """The container's main process, and the one that serves: past an init that forwards."""
    pids = {p.pid for p in processes}
    roots = [p for p in processes if p.ppid not in pids]
    if not roots:
        return None, Process(0, 0, "")
    # `docker exec` processes are roots too: the main one is the one with most descendants.
    main = max(roots, key=lambda p: (_descendants(processes, p.pid), -p.pid))
    served_by = main
    children = _children(processes, main.pid)
    if main.program in FORWARDING_INITS and len(children) == 1:
        served_by = children[0]
    return main, served_by


def _children(processes: Iterable[Process], pid: int) -> list[Process]:
    return [p for p in processes if p.ppid == pid]


def _descendants(processes: Sequence[Process], pid: int) -> int:
    found, frontier = 0, [pid]
    while frontier:
        below = [p.pid for p in processes if p.ppid in frontier]
        found += len(below)
        frontier = below
    return found


def _is_runserver(process: Process) -> bool:
    return process.program in ("manage.py", "django-admin", "django") and (
        "runserver" in process.words
    )


def _single(process: Process, what: str) -> Reload:
    return Reload(
        None,
        process.pid,
        f"{what}, one process serving requests",
        "only a restart renews it: each reset is a full boot",
    )


def _worker_class(process: Process) -> str:
    """``uvicorn `` / ``gthread `` / ``''`` from gunicorn's ``-k``/``--worker-class`` argument."""
    words = process.words
    for i, word in enumerate(words):
        value = ""
        if word in ("-k", "--worker-class") and i + 1 < len(words):
            value = words[i + 1]
        elif word.startswith("--worker-class="):
            value = word.partition("=")[2]
        elif word.startswith("-k") and len(word) > 2:
            value = word[2:]
        if value:
            return "uvicorn " if "uvicorn" in value.lower() else f"{value.rsplit('.', 1)[-1]} "
    if "--threads" in words or any(w.startswith("--threads=") for w in words):
        return "gthread "
    return ""


def reset_budget(boot: float, limit: float) -> tuple[float, float]:
    """``(deadline, slow_after)`` of a reset, in seconds, from the pair's measured boot.

    The deadline is twice the boot plus :data:`RESET_SLACK`, at most ``limit`` (the
    configured ``timeouts.app_ready``); past ``slow_after`` (the boot plus
    :data:`SLOW_MARGIN`, and always before the deadline) the reset says what it waits for.
    """
    deadline = min(limit, 2 * boot + RESET_SLACK)
    return deadline, min(deadline / 2, boot + SLOW_MARGIN)


class ResetClock:
    """One reset's deadline, and a line for people when it runs long: what it waits for now.

    Used as a context manager around the reset: a timer says, once, what the reset is
    waiting for when it is still running ``slow_after`` seconds in; :meth:`left` is the
    time the current wait may take.

    Args:
        deadline: Seconds the whole reset may take.
        slow_after: Seconds after which the waiting line is said.
        say: Prints a line for the user.
        name: The pair, as the line names it.
    """

    def __init__(
        self,
        deadline: float,
        slow_after: float,
        say: Callable[[str], None],
        name: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deadline = deadline
        self.slow_after = slow_after
        self.name = name
        self.what = "the reset to begin"
        self._say = say
        self._clock = clock
        self._began = clock()
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self.said_slow = False

    def __enter__(self) -> ResetClock:
        self._began = self._clock()
        self._timer = threading.Timer(self.slow_after, self.slow)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def waiting_for(self, what: str) -> None:
        """What the reset waits for from now on (said if it runs long)."""
        with self._lock:
            self.what = what

    def elapsed(self) -> float:
        return self._clock() - self._began

    def left(self) -> float:
        """Seconds the reset may still take (never below a tenth: a last look is allowed)."""
        return max(0.1, self.deadline - self.elapsed())

    def slow(self) -> None:
        """Say what the reset is waiting for (the timer calls it once)."""
        with self._lock:
            what, self.said_slow = self.what, True
        self._say(
            f"pool: resetting {self.name} takes {self.elapsed():.1f} s: waiting for {what} "
            f"(rebuilt instead after {self.deadline:.0f} s)"
        )

    def gave_up(self, problem: str) -> str:
        """The line said when the reset failed or ran out of time: the pair is rebuilt."""
        first = problem.strip().splitlines()[0] if problem.strip() else "no reason given"
        line = (
            f"pool: reset of {self.name} abandoned after {self.elapsed():.1f} s while waiting "
            f"for {self.what} ({first}); rebuilding the pair"
        )
        # When the app died, the pair and its logs go with the rebuild: show their end now.
        _, found, logs = problem.partition(" log lines:\n")
        tail = [text for text in logs.splitlines() if text.strip()][-GAVE_UP_LOG_LINES:]
        if found and tail:
            line += "\n" + "\n".join(f"    {text}" for text in tail)
        return line
