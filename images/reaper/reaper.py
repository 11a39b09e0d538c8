"""nocrud's reaper: a Ryuk-compatible server that removes a dead process's Docker objects.

This module owns the reaper that runs inside the ``nocrud/reaper:1`` image. It is a
stand-in for testcontainers' Ryuk (``testcontainers/ryuk``, github.com/testcontainers/moby-ryuk)
for machines that cannot pull it, and speaks the same protocol:

- it listens on TCP port 8080 (``RYUK_PORT``) and logs ``Started!`` once it is ready;
- a client sends filter lines such as ``label=org.testcontainers.session-id=ID\\r\\n``; a line
  is a URL query (Go's ``url.ParseQuery``), so ``label=a=b&label=c=d`` is one filter set
  whose parts must all match, as in ``docker ps --filter``; every line is answered ``ACK\\n``;
- while a client is connected nothing happens. When the last connection closes and none
  arrives within ``RYUK_RECONNECTION_TIMEOUT`` (default ``10s``), or when nobody connects
  within ``RYUK_CONNECTION_TIMEOUT`` (default ``60s``), or on SIGTERM/SIGINT once no client
  is left (at the latest after ``RYUK_SHUTDOWN_TIMEOUT``, default ``10m``), it stops
  listening, removes the containers (forced, with their volumes), networks, volumes and
  images matching any filter set (disconnecting containers still attached to a network
  first, such as the job container of a process killed under Docker-outside-of-Docker),
  retrying what is still in use, logs what it removed and exits.

It runs with Debian's ``python3`` and ``python3-docker`` only. The Docker client is imported
after the port is bound: testcontainers connects as soon as the container starts, and a
connection that reaches Docker's port proxy before anybody listens is silently dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol
from urllib.parse import parse_qsl

ACK = b"ACK\n"
#: Containers carrying this label are reapers themselves and are never removed (as in Ryuk).
RYUK_LABEL = "org.testcontainers.ryuk"
#: Longest filter line accepted (bufio.Scanner's limit in Ryuk); longer ones drop the client.
MAX_LINE = 64 * 1024
#: Removal order matters: networks and volumes are only free once their containers are gone.
KINDS = ("container", "network", "volume", "image")

#: One filter set, e.g. ``{"label": ("a=b", "c=d")}``, in a hashable canonical form.
FilterSet = tuple[tuple[str, tuple[str, ...]], ...]
Log = Callable[[str], None]


# --------------------------------------------------------------------------- protocol


def parse_filter_line(line: str) -> FilterSet:
    """Parse one protocol line into a filter set, like Ryuk's ``url.ParseQuery``.

    Args:
        line: One line as received, with or without its ``\\r\\n``.

    Returns:
        The filter set, keys and values sorted, so the same set sent twice is one entry.

    Raises:
        ValueError: The line holds no filter at all. Ryuk would accept it and then match
            every object on the daemon; an empty set is refused here instead.
    """
    pairs = parse_qsl(line.strip(), keep_blank_values=True, separator="&")
    grouped: dict[str, set[str]] = {}
    for key, value in pairs:
        if key:
            grouped.setdefault(key, set()).add(value)
    if not grouped:
        raise ValueError(f"no filter in line {line.strip()!r}")
    return tuple((key, tuple(sorted(values))) for key, values in sorted(grouped.items()))


def as_docker_filters(filter_set: FilterSet) -> dict[str, list[str]]:
    """A filter set as the ``filters`` argument of the Docker API's list calls."""
    return {key: list(values) for key, values in filter_set}


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    # Go accepts both micro signs, so do we.
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Parse a Go duration (``10s``, ``500ms``, ``1m30s``, ``1.5h``, ``0``) into seconds.

    Raises:
        ValueError: ``text`` is not a Go duration (a bare number other than 0 is not one).
    """
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return 0.0
    position, total = 0, 0.0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if match is None:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise ValueError(f"invalid duration {text!r} (expected e.g. 10s, 500ms, 1m)")
    return sign * total


@dataclass(frozen=True)
class Config:
    """Ryuk's settings, read from the same environment variables with the same defaults."""

    port: int = 8080
    connection_timeout: float = 60.0
    reconnection_timeout: float = 10.0
    request_timeout: float = 10.0
    shutdown_timeout: float = 600.0
    remove_retries: int = 10

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        """Read ``RYUK_*`` variables; unset or empty ones keep their default.

        Raises:
            ValueError: A variable is set to something unusable; the message names it.
        """
        values: dict[str, Any] = {}
        for spec in fields(cls):
            name = f"RYUK_{spec.name.upper()}"
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            try:
                is_count = (
                    type(spec.default) is int
                )  # the port and the retries; the rest are durations
                values[spec.name] = int(raw) if is_count else parse_duration(raw)
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r}: {exc}") from None
            if values[spec.name] < 0:
                raise ValueError(f"{name}={raw!r}: must not be negative")
        return cls(**values)


class Lifecycle:
    """When to prune: Ryuk's rules about connections, timeouts and signals, without I/O.

    Args:
        config: The timeouts.
        now: The current time (``time.monotonic()``) when listening started.
    """

    def __init__(self, config: Config, now: float) -> None:
        self.config = config
        self.clients = 0
        self.signalled = False
        self.reason = "nobody connected within the connection timeout"
        self._deadline: float | None = now + config.connection_timeout

    def connected(self) -> None:
        """A client connected: nothing is pruned while it stays."""
        self.clients += 1
        if not self.signalled:
            self._deadline = None

    def disconnected(self, now: float) -> None:
        """A client went away; the last one starts the reconnection timeout."""
        self.clients -= 1
        if self.clients == 0:
            if self.signalled:
                self._deadline = now
            else:
                self.reason = "no client reconnected within the reconnection timeout"
                self._deadline = now + self.config.reconnection_timeout

    def signal(self, now: float) -> None:
        """SIGTERM/SIGINT: prune once no client is left, at the latest after shutdown_timeout."""
        if self.signalled:
            return
        self.signalled = True
        self.reason = "signal received"
        self._deadline = now + (self.config.shutdown_timeout if self.clients else 0.0)

    def wait(self, now: float) -> float | None:
        """Seconds until the prune is due (``None``: not before something happens)."""
        return None if self._deadline is None else max(0.0, self._deadline - now)

    def due(self, now: float) -> bool:
        """True when it is time to prune and exit."""
        return self._deadline is not None and now >= self._deadline


# --------------------------------------------------------------------------- server


@dataclass
class _Client:
    sock: socket.socket
    address: str
    buffer: bytes = b""


class Server:
    """Accepts clients, records their filters and tells when to prune (single-threaded).

    Args:
        listener: A listening socket.
        config: The timeouts.
        log: Where log lines go.
        clock: Monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        listener: socket.socket,
        config: Config,
        log: Log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.listener = listener
        self.log = log
        self.clock = clock
        self.lifecycle = Lifecycle(config, clock())
        self.filters: dict[FilterSet, None] = {}  # insertion-ordered set
        self._selector = selectors.DefaultSelector()
        self._wakeup_read, self._wakeup_write = socket.socketpair()

    def serve(self) -> list[FilterSet]:
        """Serve until the prune is due; then stop listening and return the filter sets."""
        self.listener.setblocking(False)
        self._wakeup_read.setblocking(False)
        self._wakeup_write.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ, self._accept)
        self._selector.register(self._wakeup_read, selectors.EVENT_READ, self._signals)
        previous = signal.set_wakeup_fd(self._wakeup_write.fileno(), warn_on_full_buffer=False)
        handlers = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not self.lifecycle.due(self.clock()):
                for key, _ in self._selector.select(self.lifecycle.wait(self.clock())):
                    key.data(key.fileobj)
            self.log(f"{self.lifecycle.reason} ({self.lifecycle.clients} client(s) connected)")
        finally:
            signal.set_wakeup_fd(previous)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            self.close()
        return list(self.filters)

    def close(self) -> None:
        """Stop listening, drop every client (a late one gets no ACK, so it retries elsewhere)."""
        for key in list(self._selector.get_map().values()):
            self._selector.unregister(key.fileobj)
            if isinstance(key.fileobj, socket.socket) and key.fileobj is not self._wakeup_read:
                key.fileobj.close()
        self._selector.close()
        self.listener.close()
        self._wakeup_read.close()
        self._wakeup_write.close()

    def _accept(self, _listener: Any) -> None:
        try:
            sock, peer = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        client = _Client(sock, f"{peer[0]}:{peer[1]}")
        self._selector.register(sock, selectors.EVENT_READ, lambda _s: self._read(client))
        self.lifecycle.connected()
        self.log(f"New client connected: {client.address} ({self.lifecycle.clients} connected)")

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        client.buffer += data
        *lines, client.buffer = client.buffer.split(b"\n")
        if not data:  # EOF: like bufio.Scanner, a last line without newline still counts
            lines.append(client.buffer)
        for line in lines:
            self._line(client, line)
        if not data or len(client.buffer) > MAX_LINE:
            if data:
                self.log(f"Client {client.address} sent a line over {MAX_LINE} bytes; dropped")
            self._drop(client)

    def _line(self, client: _Client, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return
        try:
            filter_set = parse_filter_line(text)
        except ValueError as exc:
            self.log(f"Ignoring line from {client.address}: {exc}")
        else:
            if filter_set not in self.filters:
                self.filters[filter_set] = None
                self.log(f"Adding filter {as_docker_filters(filter_set)}")
        # Ryuk acknowledges every line, even one it could not use.
        try:
            client.sock.sendall(ACK)
        except OSError as exc:
            self.log(f"Could not send ACK to {client.address}: {exc}")

    def _drop(self, client: _Client) -> None:
        self._selector.unregister(client.sock)
        client.sock.close()
        self.lifecycle.disconnected(self.clock())
        self.log(f"Client disconnected: {client.address} ({self.lifecycle.clients} connected)")

    def _signals(self, _wakeup: Any) -> None:
        try:
            received = self._wakeup_read.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        for number in received:
            self.log(f"Signal received: {signal.Signals(number).name}")
        if self.listener.fileno() != -1:
            # As Ryuk: no new clients once shutting down; a late one gets no ACK and retries.
            self._selector.unregister(self.listener)
            self.listener.close()
        self.lifecycle.signal(self.clock())


def _ignore(_signum: int, _frame: object) -> None:
    """Python-level handler so SIGTERM/SIGINT only wake the loop (through the wakeup fd)."""


# --------------------------------------------------------------------------- pruning


class Docker(Protocol):
    """The few Docker calls the reaper makes; :class:`DockerApi` is the real one."""

    def find(self, kind: str, filters: dict[str, list[str]]) -> list[str]:
        """Ids of the objects of ``kind`` matching ``filters`` (reaper containers excluded)."""
        ...

    def remove(self, kind: str, ident: str) -> bool:
        """Remove one object; False if it was already gone. Other failures raise."""
        ...


class DockerApi:
    """:class:`Docker` on the docker SDK's low-level client (one request per call).

    Args:
        api: A ``docker.APIClient``.
    """

    def __init__(self, api: Any) -> None:
        self.api = api

    @classmethod
    def from_env(cls, timeout: float) -> DockerApi:
        """Connect as Ryuk does: ``DOCKER_HOST`` or the mounted ``/var/run/docker.sock``."""
        import docker

        return cls(docker.from_env(timeout=max(1, round(timeout))).api)

    def ping(self) -> None:
        """Raise if the daemon does not answer."""
        self.api.ping()

    def find(self, kind: str, filters: dict[str, list[str]]) -> list[str]:
        """Ids (names for volumes) of the objects of ``kind`` matching ``filters``."""
        if kind == "container":
            found = self.api.containers(all=True, filters=filters)
            return [c["Id"] for c in found if (c.get("Labels") or {}).get(RYUK_LABEL) != "true"]
        if kind == "network":
            return [n["Id"] for n in self.api.networks(filters=filters)]
        if kind == "volume":
            return [v["Name"] for v in self.api.volumes(filters=filters).get("Volumes") or []]
        return [i["Id"] for i in self.api.images(filters=filters)]

    def remove(self, kind: str, ident: str) -> bool:
        """Remove one object the way Ryuk does (forced containers with volumes, forced volumes)."""
        import docker.errors

        try:
            if kind == "container":
                self.api.remove_container(ident, v=True, force=True)
            elif kind == "network":
                self._disconnect_all(ident)
                self.api.remove_network(ident)
            elif kind == "volume":
                self.api.remove_volume(ident, force=True)
            else:
                self.api.remove_image(ident)
        except docker.errors.NotFound:
            return False
        return True

    def _disconnect_all(self, network: str) -> None:
        """Disconnect every container still attached: one keeps the network in use.

        Under Docker-outside-of-Docker the dead process's own job container (still
        running) joined each network it made; Ryuk would retry and give up on them.
        """
        import docker.errors

        attached = self.api.inspect_network(network).get("Containers") or {}
        for container in attached:
            # NotFound: it left (or was removed) meanwhile.
            with contextlib.suppress(docker.errors.NotFound):
                self.api.disconnect_container_from_network(container, network, force=True)

    def close(self) -> None:
        """Close the client's connection pool."""
        self.api.close()


def prune(
    docker: Docker,
    filter_sets: Iterable[FilterSet],
    *,
    retries: int,
    log: Log,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """Remove everything matching any filter set: containers, then networks, volumes, images.

    Errors are logged and the rest carries on: removing most of it beats removing none.

    Args:
        docker: The Docker seam.
        filter_sets: What the clients registered.
        retries: Attempts per object; objects still in use (a network whose container is
            still being removed) are retried a second later.
        log: Where log lines go.
        sleep: Replaceable in tests.

    Returns:
        How many objects of each kind were removed.
    """
    sets = list(filter_sets)
    removed = dict.fromkeys(KINDS, 0)
    for kind in KINDS:
        targets: dict[str, None] = {}
        for filter_set in sets:
            try:
                targets.update(dict.fromkeys(docker.find(kind, as_docker_filters(filter_set))))
            except Exception as exc:  # noqa: BLE001 - best effort: log, go on with the rest
                log(f"Listing {kind}s for {as_docker_filters(filter_set)} failed: {exc}")
        removed[kind] = _remove_all(
            docker, kind, list(targets), retries=retries, log=log, sleep=sleep
        )
    return removed


def _remove_all(
    docker: Docker,
    kind: str,
    idents: list[str],
    *,
    retries: int,
    log: Log,
    sleep: Callable[[float], None],
) -> int:
    count = 0
    for attempt in range(1, max(1, retries) + 1):
        failed: list[str] = []
        for ident in idents:
            try:
                if docker.remove(kind, ident):
                    count += 1
                    log(f"Removed {kind} {ident[:12]}")
            except Exception as exc:  # noqa: BLE001 - in use now, maybe free in a second
                log(f"Removing {kind} {ident[:12]} failed (attempt {attempt}/{retries}): {exc}")
                failed.append(ident)
        idents = failed
        if not idents:
            break
        if attempt < retries:
            sleep(1.0)
    if idents:
        log(f"Gave up on {len(idents)} {kind}(s): {', '.join(i[:12] for i in idents)}")
    return count


# --------------------------------------------------------------------------- main


def log_line(message: str) -> None:
    """Log like Go's ``log`` package (``2006/01/02 15:04:05 message``), as Ryuk did."""
    sys.stdout.write(f"{time.strftime('%Y/%m/%d %H:%M:%S')} {message}\n")
    sys.stdout.flush()


def main() -> int:
    """Listen, serve until the prune is due, prune, exit. Returns the exit code."""
    try:
        config = Config.from_env(os.environ)
    except ValueError as exc:
        log_line(f"Bad configuration: {exc}")
        return 2
    listener = socket.create_server(("", config.port), backlog=128)
    log_line(f"Starting on port {config.port}...")
    try:
        docker = DockerApi.from_env(config.request_timeout)
        docker.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no usable daemon
        listener.close()
        log_line(f"Docker daemon is not available: {exc}")
        return 1
    log_line("Docker daemon is available!")
    log_line("Started!")
    try:
        filter_sets = Server(listener, config, log_line).serve()
        # A second SIGTERM while pruning must not cut the removal short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for filter_set in filter_sets:
            log_line(f"Deleting {as_docker_filters(filter_set)}")
        removed = prune(docker, filter_sets, retries=config.remove_retries, log=log_line)
    finally:
        docker.close()
    log_line(
        f"Removed {removed['container']} container(s), {removed['network']} network(s), "
        f"{removed['volume']} volume(s) {removed['image']} image(s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
