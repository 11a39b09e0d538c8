"""nocrud's exit codes and the errors that carry them, in one place.

Every error nocrud expects to meet derives from :class:`NocrudError` and says
with its class which exit code it ends a command with: :class:`UsageError` (2)
for the user's own mistakes (a bad option or config key, a missing or foreign
file, a flow package that does not import), :class:`InfrastructureError` (3)
when the environment flows need could not be built (an image build or the
migrate command failed, a base image is missing, the Docker daemon cannot be
reached or went away). Exit 1 is kept for what the tests found (a flow failed
or errored), so CI can tell a broken test from a broken pipeline. The messages
are written for people and end with what to do; the CLI prints them as one
``error:`` line, never with a traceback. This module imports nothing, so the
CLI can use it without slowing ``nocrud --help``.
"""

from __future__ import annotations

import re
from typing import ClassVar, Final

__all__ = [
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_INFRASTRUCTURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "InfrastructureError",
    "Interrupted",
    "NocrudError",
    "UsageError",
    "one_line",
]

#: Every selected flow passed (and ``nocrud perf`` / ``coverage`` found nothing wrong).
EXIT_OK: Final = 0
#: A flow failed or errored (or a perf regression, coverage under ``--fail-under``).
EXIT_FAILED: Final = 1
#: A usage or config error: the user's mistake, the message says how to fix it.
EXIT_USAGE: Final = 2
#: The environment could not be built: image build or migrate failed, Docker unreachable.
EXIT_INFRASTRUCTURE: Final = 3
#: Interrupted by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED: Final = 130

#: What each exit code means, as ``nocrud --help`` and the README list them.
EXIT_CODES: Final = (
    (EXIT_OK, "all flows passed"),
    (EXIT_FAILED, "a flow failed or errored"),
    (EXIT_USAGE, "usage or config error"),
    (
        EXIT_INFRASTRUCTURE,
        "the environment could not be built (build, migrate, Docker unreachable)",
    ),
    (EXIT_INTERRUPTED, "interrupted"),
)


class NocrudError(Exception):
    """An error nocrud expects; ``str()`` is the whole message for the user.

    Attributes:
        exit_code: What the command exits with when this error ends it.
    """

    exit_code: ClassVar[int] = EXIT_USAGE


class UsageError(NocrudError):
    """The user's mistake: an option, a config key, a file or a flow; exit 2."""

    exit_code: ClassVar[int] = EXIT_USAGE


class InfrastructureError(NocrudError):
    """The environment could not be built (image, migrate, base image, Docker); exit 3.

    Not the flows' fault: CI should report a broken pipeline, not a failing test.
    """

    exit_code: ClassVar[int] = EXIT_INFRASTRUCTURE


class Interrupted(NocrudError):  # noqa: N818 - it names what happened, like KeyboardInterrupt
    """The run was interrupted (SIGINT/SIGTERM) and stopped cleanly; exit 130."""

    exit_code: ClassVar[int] = EXIT_INTERRUPTED


# "[Errno 111] Connection refused", the part of a nested requests/urllib3 error that helps.
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")\]]+")


def one_line(exc: BaseException) -> str:
    """An exception as one short line for a message: what it says, never its traceback.

    The one rule for every message that quotes an exception: a Docker API error's own
    explanation; for a connection error nested inside requests and urllib3, its
    ``[Errno N] ...`` part; an ``AssertionError``'s text (or "assertion failed"); else
    ``Type: first line``.
    """
    text = str(getattr(exc, "explanation", None) or exc).strip()
    errno: list[str] = _ERRNO.findall(text)
    if errno:
        return errno[-1].strip()
    line = text.splitlines()[0].strip() if text else ""
    if isinstance(exc, AssertionError):
        return line or "assertion failed"
    name = type(exc).__name__
    return f"{name}: {line}" if line else name
