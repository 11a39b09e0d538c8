"""nocrud's preloading launcher for uvicorn, run inside the app's container.

A pool pair's app must be renewed between flows: no process that served the last flow
may serve the next. gunicorn does that cheaply (its master, which never serves, forks
new workers on SIGHUP); ``uvicorn`` (or ``fastapi run``, which runs uvicorn) can only be
restarted, and a restart imports the whole app again: a full boot for every flow. This
launcher gives uvicorn what gunicorn's ``--preload`` gives its workers:

* the parent has uvicorn's own command line (or FastAPI's) parse the same arguments,
  imports the app once and binds the listening socket, then never serves a request;
* it forks the servers (one, or uvicorn's ``--workers``) that run uvicorn's server on
  that socket (the app's lifespan start-up runs in each, as at any boot);
* on SIGHUP it kills them (SIGKILL, as a container restart would) and forks new ones
  from its own memory, which no request ever touched: the new servers start with the
  app exactly as imported, in tens of milliseconds instead of a boot;
* SIGTERM and SIGINT go to the servers, and the parent exits with them; if a server dies
  by itself, the parent stops the others and exits with its status, so the container
  stops as uvicorn's would.

What it cannot renew is what the import itself did (a module-level value computed at
import is the same in every server it forks): the same limit as gunicorn's ``--preload``.
An app that opens a connection while it is imported (a database, a broker) is not
preloaded at all: its forked servers would share that connection, so the launcher sees
the sockets the import opened and runs the command unchanged instead. Each fork prints a
line (``nocrud-preload: server pid … forked from the app as imported N s ago (renewal
K)``) that a failing flow's app log shows, and whose number tells nocrud that the servers
of its SIGHUP are the ones running now (the old ones were killed and reaped before).

The launcher is copied into the container (``/nocrud-preload/``) by nocrud, and run with
the interpreter that runs uvicorn: ``launch.py -- <the original command>``. Whatever it
does not understand (``--reload``, ``--uds``, ``--fd``, a uvicorn it cannot drive) it does
not touch: it says so on stderr and execs the original command unchanged,
so the app runs as before and nocrud restarts it. It imports nothing from nocrud, and
runs on the Python of the app's image (3.7 or later).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import sys
import time
from typing import Any

#: What the launcher prints before each of its lines (they end up in ``docker logs``).
PREFIX = "nocrud-preload: "
SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)


class Captured(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by the capturing server in place of its construction: carries uvicorn's config."""

    def __init__(self, config: Any) -> None:
        super().__init__("captured")
        self.config = config


def say(line: str) -> None:
    sys.stderr.write(PREFIX + line + "\n")
    sys.stderr.flush()


def server_args(command: list[str]) -> tuple[str, list[str]] | None:
    """``("uvicorn", args)`` or ``("fastapi", args)`` from the command line, or None.

    ``uvicorn ...``, ``python -m uvicorn ...``, and FastAPI's CLI ``fastapi run ...``
    (``fastapi dev`` reloads on changes: not for the launcher).
    """
    first = command[0].rpartition("/")[2]
    if first.startswith(("python", "pypy")):
        if "-m" not in command[:-1]:
            return None
        at = command.index("-m") + 1
        name, args = command[at], list(command[at + 1 :])
    else:
        name, args = first, list(command[1:])
    if name == "uvicorn" or (name == "fastapi" and args[:1] == ["run"]):
        return name, args
    return None


def why_not(config: Any) -> str | None:
    """Why uvicorn's parsed config is not for the launcher, or None when it is."""
    if config.should_reload:
        return "--reload restarts the server on file changes itself"
    if config.uds or config.fd is not None:
        return "uvicorn takes its socket from --uds or --fd"
    return None


def capture(kind: str, args: list[str]) -> tuple[Any, Any]:
    """The CLI parses ``args`` into uvicorn's config: (uvicorn's Server class, config).

    uvicorn's own command line (``uvicorn``) or FastAPI's (``fastapi run``, which calls
    ``uvicorn.run``): both build uvicorn's ``Server`` once its ``Config`` is complete and
    before they choose how to run it (reload, workers or one process), and that
    construction is where the config is taken.
    """
    import uvicorn  # noqa: F401 - imports uvicorn.main, whose name the package shadows

    cli: Any = sys.modules["uvicorn.main"]
    original: Any = cli.Server

    class CapturingServer(original):  # type: ignore[misc]
        def __init__(self, config: Any) -> None:
            raise Captured(config)

    cli.Server = CapturingServer
    try:
        if kind == "fastapi":
            fastapi = importlib.import_module("fastapi_cli.cli")
            fastapi.app(args=args, prog_name="fastapi", standalone_mode=False)
        else:
            cli.main.main(args=args, prog_name="uvicorn", standalone_mode=False)
    except Captured as found:
        return original, found.config
    finally:
        cli.Server = original
    return original, None


def listening_socket(config: Any) -> Any:
    """The socket uvicorn binds for ``config``, as its single process would serve on it.

    uvicorn's ``bind_socket`` makes a TCP socket with protocol 0, and asyncio sets
    TCP_NODELAY only on connections accepted from a socket whose protocol reads
    ``IPPROTO_TCP`` (what ``uvicorn app`` gets by letting asyncio bind). Without it a
    response written in two parts (headers, then body) waits for the client's delayed
    ACK: about 40 ms per request. Wrapped again from its descriptor, the socket reports
    the protocol the kernel knows (SO_PROTOCOL), so every connection gets TCP_NODELAY.
    """
    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    return sock


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def serve(server_class: Any, config: Any, sock: Any) -> int:
    """Fork a child that serves on ``sock`` with ``config`` (already loaded); its pid."""
    pid = os.fork()
    if pid:
        return pid
    for number in SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    code = 0
    try:
        server = server_class(config=config)
        server.run(sockets=[sock])
        if not server.started:
            code = 3
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the child's last word, then its exit
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def supervise(server_class: Any, config: Any, sock: Any) -> int:
    """Fork servers on SIGHUP until told to stop or one dies by itself; the exit code.

    As many servers as uvicorn's ``workers`` (one by default), all on the one socket.
    """
    count = max(1, int(config.workers or 1))
    imported = time.time()
    renewals = [0]

    def fork() -> set[int]:
        servers = {serve(server_class, config, sock) for _ in range(count)}
        # In the app's log after every reset: where a flow's server came from, and how old
        # the import it was forked from is (the state an import made is shared by all).
        # nocrud waits for this line's renewal number to grow after its SIGHUP: the old
        # servers are gone by then (killed and reaped before the fork).
        say(
            "server pid "
            + ", ".join(str(pid) for pid in sorted(servers))
            + " forked from the app as imported "
            + str(round(time.time() - imported))
            + " s ago (renewal "
            + str(renewals[0])
            + ")"
        )
        renewals[0] += 1
        return servers

    children = fork()
    while True:
        number = signal.sigwait(SIGNALS)
        if number == signal.SIGCHLD:
            died = _reap(children)
            if died is not None:  # a server died by itself: stop, as uvicorn would
                _stop(children, signal.SIGTERM)
                return died
        elif number == signal.SIGHUP:
            _stop(children, signal.SIGKILL)
            children = fork()
        else:
            codes = _stop(children, number)
            return codes[0] if codes else 0


def _reap(children: set[int]) -> int | None:
    """Collect exited processes; the exit code of a server among them (it is forgotten)."""
    died = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return died
        if pid == 0:
            return died
        if pid in children:
            children.discard(pid)
            died = exit_code(status)


def _stop(children: set[int], number: int) -> list[int]:
    """Send ``number`` to every server and wait for each; their exit codes."""
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)
    codes = []
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            codes.append(exit_code(os.waitpid(pid, 0)[1]))
    children.clear()
    return codes


def _sockets() -> set[str]:
    """This process's open sockets (``socket:[inode]``), from /proc; empty without /proc."""
    found: set[str] = set()
    try:
        names = os.listdir("/proc/self/fd")  # noqa: PTH208 - the app's Python may be 3.7
    except OSError:
        return found
    for name in names:
        with contextlib.suppress(OSError):
            target = os.readlink("/proc/self/fd/" + name)  # noqa: PTH115 - Python 3.7
            if target.startswith("socket:"):
                found.add(target)
    return found


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    if not command:
        say("no command given")
        return 2
    before = _sockets()
    found = server_args(command)
    reason = "it is neither uvicorn nor fastapi run" if found is None else None
    server_class: Any = None
    config: Any = None
    if found is not None:
        try:
            server_class, config = capture(*found)
        except SystemExit:
            raise
        except Exception as exc:  # noqa: BLE001 - any surprise: run the app as it was
            reason = (
                "this "
                + found[0]
                + " could not be driven ("
                + type(exc).__name__
                + ": "
                + str(exc)
                + ")"
            )
        else:
            reason = "uvicorn did not build its server" if config is None else why_not(config)
    if reason is not None:
        say("not preloading: " + reason + "; running the command as it was")
        os.execvp(command[0], command)  # noqa: S606 - the app's own command, as it was
    if not config.loaded:
        config.load()
    opened = _sockets() - before
    if opened:
        say(
            "not preloading: the app opened "
            + str(len(opened))
            + " connection(s) while it was imported (a database, a broker?), which forked "
            "servers would share; running the command as it was"
        )
        os.execvp(command[0], command)  # noqa: S606 - the app's own command, as it was
    sock = listening_socket(config)
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    say(
        "the app is imported once; each reset forks a new server from it (pid "
        + str(os.getpid())
        + ")"
    )
    return supervise(server_class, config, sock)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
