"""What ``nocrud doctor`` reports: one :class:`Check` per thing looked at, and the
:class:`Host` facts the checks read (environment, clock, disk, commands on ``PATH``), so
tests drive every branch with fakes. The checks themselves live in
:mod:`nocrud.cli.doctor` (Docker, connection, config, disk, clock, leftovers) and
:mod:`nocrud.cli.doctor_images` (the images a run needs, and whether they can be had here).
"""

from __future__ import annotations

import enum
import os
import shutil
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nocrud.docker.engine import in_container

__all__ = ["Check", "CheckStatus", "Host"]


class CheckStatus(enum.StrEnum):
    """Outcome of one check. Only FAIL makes ``nocrud doctor`` exit non-zero."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report.

    Attributes:
        name: What was checked, e.g. ``docker`` or ``image debian:bookworm-slim``.
        status: ok, warn, fail (blocks every run) or skip (could not be checked here).
        detail: What was seen.
        fix: What to do about it; empty when there is nothing to do.
    """

    name: str
    status: CheckStatus
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


@dataclass(frozen=True)
class Host:
    """Facts about the machine the checks run on; :meth:`current` reads the real ones.

    Attributes:
        env: Environment variables.
        cwd: Where nocrud would run (config lookup, free disk).
        now: Wall clock, seconds since the epoch.
        in_container: Whether this process runs inside a container.
        hostname: This machine's (or container's) host name.
        free_bytes: Free bytes on the file system holding a path.
        path_exists: Whether a path exists on this machine.
        which: Where a command is on ``PATH``, or None (``shutil.which``).
        is_root: Whether this process runs as root (it may install packages).
    """

    env: Mapping[str, str]
    cwd: Path
    now: Callable[[], float] = time.time
    in_container: bool = False
    hostname: str = field(default_factory=socket.gethostname)
    free_bytes: Callable[[Path], int] = _free_bytes
    path_exists: Callable[[Path], bool] = Path.exists
    which: Callable[[str], str | None] = shutil.which
    is_root: bool = field(default_factory=lambda: os.geteuid() == 0)

    @classmethod
    def current(cls) -> Host:
        return cls(env=os.environ, cwd=Path.cwd(), in_container=in_container())
