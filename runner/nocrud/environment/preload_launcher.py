"""nocrud's preloading launcher for a single uvicorn process, run inside the app's container.

A pool pair's app must be renewed between flows: no process that served the last flow
may serve the next. gunicorn does that cheaply (its master, which never serves, forks
new workers on SIGHUP); a lone ``uvicorn`` can only be restarted, and a restart imports
the whole app again: a full boot for every flow. This launcher gives uvicorn what
gunicorn's ``--preload`` gives its workers:

* the parent parses the same uvicorn command line (uvicorn's own CLI does it), imports
  the app once and binds the listening socket, then never serves a request;
* it forks a child that runs uvicorn's server on that socket (the app's lifespan
  start-up runs in the child, as at any boot);
* on SIGHUP it kills that child (SIGKILL, as a container restart would) and forks a new
  one from its own memory, which no request ever touched: the new server starts with the
  app exactly as imported, in tens of milliseconds instead of a boot;
* SIGTERM and SIGINT go to the child, and the parent exits with it; if the child dies by
  itself, the parent exits with its status, so the container stops as uvicorn's would.

What it cannot renew is what the import itself did (a module that opens a connection
or starts a thread at import): the same limit as gunicorn's ``--preload``.

The launcher is copied into the container (``/nocrud-preload/``) by nocrud, and run with
the interpreter that runs uvicorn: ``launch.py -- <the original command>``. Whatever it
does not understand (``--reload``, ``--workers``, ``--uds``, ``--fd``, a uvicorn it cannot
drive) it does not touch: it says so on stderr and execs the original command unchanged,
so the app runs as before and nocrud restarts it. It imports nothing from nocrud, and
runs on the Python of the app's image (3.7 or later).
"""

from __future__ import annotations

import os
import signal
import sys
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


def uvicorn_args(command: list[str]) -> list[str] | None:
    """The arguments after ``uvicorn`` (``uvicorn ...``, ``python -m uvicorn ...``), or None."""
    for i, word in enumerate(command):
        if word.rpartition("/")[2] == "uvicorn" and (i == 0 or command[i - 1] != "-m"):
            return list(command[i + 1 :])
        if word == "uvicorn" and i > 0 and command[i - 1] == "-m":
            return list(command[i + 1 :])
    return None


def why_not(config: Any) -> str | None:
    """Why uvicorn's parsed config is not for the launcher, or None when it is."""
    if config.should_reload:
        return "uvicorn --reload runs its own processes"
    if config.workers > 1:
        return "uvicorn runs " + str(config.workers) + " worker processes"
    if config.uds or config.fd is not None:
        return "uvicorn takes its socket from --uds or --fd"
    return None


def capture(args: list[str]) -> tuple[Any, Any]:
    """uvicorn's own CLI parses ``args`` into its config: (uvicorn's Server class, config)."""
    import uvicorn  # noqa: F401 - imports uvicorn.main, whose name the package shadows

    cli: Any = sys.modules["uvicorn.main"]
    original: Any = cli.Server

    # Every version builds its Server once its Config is complete, before it chooses how
    # to run it (reload, workers or one process): that is the moment to take the config.
    class CapturingServer(original):  # type: ignore[misc]
        def __init__(self, config: Any) -> None:
            raise Captured(config)

    cli.Server = CapturingServer
    try:
        cli.main.main(args=args, prog_name="uvicorn", standalone_mode=False)
    except Captured as found:
        return original, found.config
    finally:
        cli.Server = original
    return original, None


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
    """Fork children on SIGHUP until told to stop or the child dies; the exit code."""
    child = serve(server_class, config, sock)
    while True:
        number = signal.sigwait(SIGNALS)
        if number == signal.SIGCHLD:
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                if pid == child:
                    return exit_code(status)
        elif number == signal.SIGHUP:
            try:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            child = serve(server_class, config, sock)
        else:
            try:
                os.kill(child, number)
                _, status = os.waitpid(child, 0)
            except (ProcessLookupError, ChildProcessError):
                return 0
            return exit_code(status)


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    if not command:
        say("no command given")
        return 2
    args = uvicorn_args(command)
    reason = "it is not uvicorn" if args is None else None
    server_class: Any = None
    config: Any = None
    if reason is None and args is not None:
        try:
            server_class, config = capture(args)
        except SystemExit:
            raise
        except Exception as exc:  # noqa: BLE001 - any surprise: run the app as it was
            reason = (
                "this uvicorn could not be driven (" + type(exc).__name__ + ": " + str(exc) + ")"
            )
        else:
            reason = "uvicorn did not build its server" if config is None else why_not(config)
    if reason is not None:
        say("not preloading: " + reason + "; running the command as it was")
        os.execvp(command[0], command)  # noqa: S606 - the app's own command, as it was
    if not config.loaded:
        config.load()
    sock = config.bind_socket()
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    say(
        "the app is imported once; each reset forks a new server from it (pid "
        + str(os.getpid())
        + ")"
    )
    return supervise(server_class, config, sock)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
