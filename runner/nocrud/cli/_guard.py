"""The one guard every command runs under: what went wrong becomes a line and an exit code.

:class:`Command` (and :class:`Group` for groups of commands) invoke their callback
inside :func:`guarded`, which maps an error nocrud expects (:class:`~nocrud.errors.NocrudError`)
to one ``error:`` line and the exit code its class carries, the Docker SDK failing
mid-run to exit 3 with the advice to run ``nocrud doctor``, and an interrupt to exit
130 (:data:`~nocrud.errors.EXIT_INTERRUPTED`, decided here and nowhere else in the CLI).
Anything else is a bug in nocrud and keeps its traceback. Every exit goes through
:func:`exit_now`, which does not wait for threads a flow left running.

Nothing here imports Docker: a Docker error can only exist once ``docker`` was imported,
so the guard looks for the SDK's exception class among the modules already loaded.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

import click

from nocrud.errors import (
    EXIT_CODES,
    EXIT_INFRASTRUCTURE,
    EXIT_INTERRUPTED,
    Interrupted,
    NocrudError,
    one_line,
)
from nocrud.masking import mask_text

__all__ = ["EXIT_CODES_HELP", "Command", "Group", "exit_now", "guarded"]

#: The exit codes for a help text's epilog (``\b`` keeps click from re-wrapping them).
EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(
    f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES
)


def _color() -> bool | None:
    """False under NO_COLOR; otherwise click decides (colour on a terminal only)."""
    return False if os.environ.get("NO_COLOR") else None


def _say(message: str) -> None:
    click.echo(message, err=True, color=_color())


def exit_now(code: int) -> NoReturn:
    """Exit with ``code``, even when a flow left a non-daemon thread running.

    Python would wait for such a thread at exit, forever if it never ends; the
    flow was already reported as ERROR for it, so we say so and do not wait.
    """
    stuck = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if stuck:
        names = ", ".join(t.name for t in stuck)
        _say(f"warning: not waiting for {len(stuck)} thread(s) that flows left running: {names}")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _docker_errors() -> tuple[type[Exception], ...]:
    """The Docker SDK's errors once the SDK is loaded; before that none can occur.

    The SDK lets a connection that fails mid-call (a daemon that went away) through as
    requests' ``ConnectionError``, so that one counts too once Docker is loaded.
    """
    errors = sys.modules.get("docker.errors")
    found = [getattr(errors, "DockerException", None)]
    if errors is not None:
        found.append(getattr(sys.modules.get("requests.exceptions"), "ConnectionError", None))
    return tuple(c for c in found if isinstance(c, type) and issubclass(c, Exception))


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Run a command's body; turn interrupts and expected errors into a message and an exit code."""
    try:
        yield
    except (KeyboardInterrupt, Interrupted):
        _say("interrupted")
        exit_now(EXIT_INTERRUPTED)
    except NocrudError as exc:
        # Masked like every report: a failed command may quote a URL with its password.
        _say(click.style("error:", fg="red", bold=True) + f" {mask_text(str(exc))}")
        exit_now(exc.exit_code)
    except _docker_errors() as exc:
        # The backstop for the daemon failing mid-run (out of disk, restarted, gone).
        _say(
            click.style("error:", fg="red", bold=True)
            + f" Docker failed: {mask_text(_short(exc))}; check the daemon with `nocrud doctor`"
        )
        exit_now(EXIT_INFRASTRUCTURE)


def _short(exc: Exception) -> str:
    """A Docker error as it reads, a connection error by its ``[Errno]`` part, not its URL."""
    return str(exc) if isinstance(exc, _docker_errors()[0]) else one_line(exc)


class Command(click.Command):
    """A click command whose callback runs under :func:`guarded`."""

    def invoke(self, ctx: click.Context) -> Any:
        with guarded():
            return super().invoke(ctx)


class Group(click.Group):
    """A group whose subcommands (and subgroups) are guarded :class:`Command` objects."""

    command_class = Command
    group_class = type  # subgroups are of this class too
