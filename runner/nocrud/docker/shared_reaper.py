"""One reaper for the processes of one session (pytest-xdist's workers): started once, joined after.

Each pytest-xdist worker is a process of its own, and each would start a reaper of its
own: with ``-n 4``, four containers, each with a port published (a proxy process and
packet-filter rules) and a Python process in it, about a second of CPU each, spent while
the workers' first tests wait. Workers of one session share one instead. The Ryuk protocol
allows it: a reaper takes filters from any number of connections and prunes only when
the last one has been gone for its reconnection timeout; each process registers its own
filter (its own session label) on its own connection, so a SIGKILLed worker's objects are
removed when every worker is gone, within that timeout, as with a reaper of its own.

The sharing goes through a small record, ``nocrud-reaper-<key>.json`` in the system's
temporary directory, read and written under ``flock``: the reaper's address and container,
and how many processes use it.

- :func:`join`: the first process starts the reaper (the caller's ``start``) and records
  it; the others register on the recorded one, and start their own if it no longer
  answers (it ended when every earlier process left).
- :meth:`Share.leave`: at exit, each process closes its connection and counts itself out;
  the last one deletes the record and is told to stop the reaper (SIGTERM: it removes
  what is left and exits). A process that dies never counts itself out: then nobody
  stops the reaper, which prunes and exits by itself once the last connection has been
  gone for its reconnection timeout, as it does for one SIGKILLed process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["Share", "join", "record_path"]


def record_path(key: str) -> Path:
    """The record of the reaper shared under ``key`` (any text: it is hashed)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"nocrud-reaper-{digest}.json"


@dataclass
class Share:
    """This process's use of a shared reaper.

    Attributes:
        path: The record.
        started: This process started the reaper (the others joined it).
        container: The reaper's container id.
    """

    path: Path
    started: bool
    container: str
    _left: bool = False

    def leave(self) -> bool:
        """Count this process out (once); True when it was the last, and the reaper may stop.

        Call after closing this process's connection to the reaper.
        """
        if self._left:
            return False
        self._left = True
        with _record(self.path) as (handle, record):
            if record.get("container") != self.container:
                return False  # another reaper is recorded now: this one is not ours to stop
            clients = int(record.get("clients", 1)) - 1
            if clients > 0:
                _write(handle, {**record, "clients": clients})
                return False
            self.path.unlink(missing_ok=True)
            _write(handle, {"closed": True})  # a process waiting on this lock starts anew
            return True


def join(
    key: str,
    *,
    start: Callable[[], tuple[socket.socket, str, int, str]],
    register: Callable[[str, int], socket.socket],
) -> tuple[socket.socket, Share]:
    """This process's connection to the reaper shared under ``key``, started if need be.

    Args:
        key: Names the session (pytest-xdist's ``testrunuid`` and the Docker host).
        start: Starts a reaper and registers this process on it: (connection, host,
            port, container id). Raises when it cannot.
        register: Registers this process on a running reaper at (host, port) and returns
            the connection; raises ``OSError`` (or a subclass) when nothing answers.

    Returns:
        The connection (keep it open for the life of the process) and the share.
    """
    path = record_path(key)
    with _record(path) as (handle, record):
        if record.get("host") and record.get("container"):
            with contextlib.suppress(Exception):  # gone: start one below
                sock = register(str(record["host"]), int(record["port"]))
                clients = int(record.get("clients", 0)) + 1
                _write(handle, {**record, "clients": clients})
                return sock, Share(path, started=False, container=str(record["container"]))
        sock, host, port, container = start()
        _write(handle, {"host": host, "port": port, "container": container, "clients": 1})
        return sock, Share(path, started=True, container=container)


@contextlib.contextmanager
def _record(path: Path) -> Iterator[tuple[IO[str], dict[str, Any]]]:
    """The record, read under an exclusive lock held until the block ends."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            record = json.loads(handle.read() or "{}")
        except ValueError:
            record = {}
        yield handle, record if isinstance(record, dict) else {}


def _write(handle: IO[str], record: dict[str, Any]) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(record))
    handle.flush()
