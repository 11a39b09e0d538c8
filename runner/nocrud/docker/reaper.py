"""The reaper: what removes a run's containers and networks when nocrud itself is SIGKILLed.

This module owns starting testcontainers' Ryuk reaper once per process (before any
worker thread: testcontainers-python#746) and handing over to it at exit. Ryuk holds a
TCP connection from this process; when the connection drops (the process died, however)
and no new one arrives within ``RYUK_RECONNECTION_TIMEOUT``, it removes every container,
network, volume and image labelled ``org.testcontainers.session-id=<this process's
session>``. testcontainers puts that label on everything made through ``DockerContainer``
and ``Network``; :func:`session_labels` gives it to objects made with the plain docker SDK.

The image is ``RYUK_CONTAINER_IMAGE`` when set, else testcontainers' own Ryuk when present
or pullable, else ``nocrud/reaper:1`` (built from Debian packages by ``images/build-all.sh``,
for machines without a registry). Without any, the reaper stays off and the startup sweep
and ``nocrud clean`` remain the backstop.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nocrud.docker.engine import Connection

#: nocrud's Ryuk-compatible reaper image (images/reaper).
REAPER_IMAGE = "nocrud/reaper:1"
#: Ryuk's port inside its container (testcontainers/core/container.py, ``Reaper``).
RYUK_PORT = 8080
#: How long after nocrud's death the reaper starts removing, unless the user chose.
RECONNECTION_TIMEOUT = "2s"
#: Longest wait for a registry when the default Ryuk image is missing.
PULL_TIMEOUT = 30.0
#: How long the reaper gets to register our filter, and to finish its work at exit.
CONFIRM_TIMEOUT = 10.0
HANDOVER_TIMEOUT = 15.0
#: testcontainers' truthy spellings (testcontainers/core/config.py, ``ENABLE_FLAGS``).
ENABLE_FLAGS = ("yes", "true", "t", "y", "1")

#: What happens instead when there is no reaper.
BACKSTOP = "a killed run's containers are removed by the next run or `nocrud clean`"
NO_IMAGE = f"no reaper image (build it with images/build-all.sh): {BACKSTOP}"


class ReaperError(Exception):
    """The reaper container started but would not take our filter."""


@dataclass
class _Started:
    """What :func:`start_reaper` set up in this process."""

    description: str
    sockets: list[socket.socket] = field(default_factory=list)


_started: _Started | None = None


def session_labels() -> dict[str, str]:
    """The label the reaper looks for; put it on Docker objects made without testcontainers.

    Never leave it on an image meant to outlive the run: Ryuk removes matching images too,
    and ``docker commit`` copies the container's labels into the image (override it with
    an empty value in the commit's ``Labels``).
    """
    from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID

    return {LABEL_SESSION_ID: SESSION_ID}


def disabled_by_user(environ: Mapping[str, str], properties: Mapping[str, str]) -> bool:
    """``TESTCONTAINERS_RYUK_DISABLED`` (or ``ryuk.disabled`` in ~/.testcontainers.properties)."""
    value = environ.get("TESTCONTAINERS_RYUK_DISABLED")
    if value is None:
        value = properties.get("ryuk.disabled", "")
    return value.lower() in ENABLE_FLAGS


def default_ryuk_image() -> str:
    """The Ryuk image testcontainers would use on its own (``testcontainers/ryuk:<version>``)."""
    from testcontainers.core.config import TestcontainersConfiguration

    spec = {f.name: f for f in dataclasses.fields(TestcontainersConfiguration)}["ryuk_image"]
    return str(spec.default)


def choose_image(
    environ: Mapping[str, str],
    *,
    default: str,
    present: Callable[[str], bool],
    pull: Callable[[str], bool],
) -> str | None:
    """Pick the reaper image: the user's, testcontainers' Ryuk, nocrud's, or a pulled Ryuk.

    Args:
        environ: The environment (``RYUK_CONTAINER_IMAGE`` wins when set).
        default: testcontainers' Ryuk image.
        present: Whether an image exists locally.
        pull: Try to pull an image; True when it worked.

    Returns:
        The image, or None when there is none to be had.
    """
    chosen = environ.get("RYUK_CONTAINER_IMAGE", "").strip()
    if chosen:
        return chosen  # testcontainers pulls it if needed, and says so if it cannot
    for image in (default, REAPER_IMAGE):
        if present(image):
            return image
    return default if pull(default) else None


def start_reaper(
    *,
    say: Callable[[str], None],
    disabled: bool = False,
    connection: Connection | None = None,
) -> str | None:
    """Start the reaper for this process, or explain why there is none. Call once, early.

    Call it in the main thread before any worker thread creates containers: testcontainers
    starts Ryuk lazily from the first ``DockerContainer.start()``, which races when
    several threads do that first (testcontainers-python#746). Afterwards every
    ``DockerContainer.start()`` reuses this reaper.

    At a normal exit the reaper is told to clean up now (SIGTERM, it removes what is
    left and exits) instead of being force-removed as testcontainers does, so leftovers
    of a normal exit are removed too.

    Args:
        say: Prints one line for the user.
        disabled: No reaper (``--keep-failed``: kept containers must outlive the process).
        connection: How this process reaches containers (detected when omitted).

    Returns:
        A one-line description of the reaper, or None when it is off.
    """
    global _started  # noqa: PLW0603 - one reaper per process, like testcontainers' own
    from testcontainers.core.config import testcontainers_config as tc

    if _started is not None:
        return _started.description
    if disabled or disabled_by_user(os.environ, tc.tc_properties):
        tc.ryuk_disabled = True
        return None
    try:
        image = _choose_with_docker(say)
    except Exception as exc:  # noqa: BLE001 - no reaper is a degraded mode, not an error
        tc.ryuk_disabled = True
        say(f"could not look for a reaper image ({_short(exc)}): {BACKSTOP}")
        return None
    if image is None:
        tc.ryuk_disabled = True
        say(NO_IMAGE)
        return None

    tc.ryuk_image = image
    tc.ryuk_disabled = False
    if not os.environ.get("RYUK_RECONNECTION_TIMEOUT", "").strip():
        tc.ryuk_reconnection_timeout = RECONNECTION_TIMEOUT
    try:
        started = _start(image, tc.ryuk_reconnection_timeout, connection)
    except Exception as exc:  # noqa: BLE001 - same: carry on with the sweep as backstop
        _force_remove()
        tc.ryuk_disabled = True
        say(f"reaper {image} did not start ({_short(exc)}): {BACKSTOP}")
        return None
    _started = started
    return started.description


def _choose_with_docker(say: Callable[[str], None]) -> str | None:
    import docker
    import docker.errors

    client = docker.from_env(timeout=PULL_TIMEOUT)
    try:

        def present(image: str) -> bool:
            try:
                client.images.get(image)
            except docker.errors.ImageNotFound:
                return False
            return True

        def pull(image: str) -> bool:
            try:
                client.api.pull(image)
            except Exception:  # noqa: BLE001 - no registry, no image: both mean "no"
                return False
            say(f"pulled {image}")
            return True

        return choose_image(os.environ, default=default_ryuk_image(), present=present, pull=pull)
    finally:
        client.close()


def _start(image: str, reconnection_timeout: str, connection: Connection | None) -> _Started:
    """Start the reaper ourselves, register our filter (ACKed), and hand it to testcontainers.

    testcontainers' own ``Reaper`` publishes the reaper's port on every interface, and
    the Ryuk protocol has no authentication: anyone who can reach it could register
    filters. So nocrud starts the same container with the port bound like every other
    port it publishes (127.0.0.1 for a local daemon) or, when this process runs in a
    container, not published at all and reached on the network both share. It also
    waits for the reaper's ``ACK`` (testcontainers does not, and can lose its filter if
    Docker's port proxy accepts the connection before the reaper listens), then installs
    the container as testcontainers' reaper, so every ``DockerContainer.start()`` reuses it.
    """
    from testcontainers.core.config import testcontainers_config as tc
    from testcontainers.core.container import DockerContainer, Reaper
    from testcontainers.core.labels import SESSION_ID

    from nocrud.docker.engine import detect_connection

    link = connection or detect_connection()
    container = (
        DockerContainer(image)
        .with_name(f"testcontainers-ryuk-{SESSION_ID}")
        .with_volume_mapping(tc.ryuk_docker_socket, "/var/run/docker.sock", "rw")
        .with_env("RYUK_RECONNECTION_TIMEOUT", reconnection_timeout)
    )
    container.ports.update(link.ports(RYUK_PORT))
    kwargs: dict[str, object] = {"privileged": tc.ryuk_privileged, "auto_remove": True}
    if link.uses_published_ports:
        # Not the network testcontainers would pick for a process in a container: that
        # may be the host's, where published ports are refused.
        kwargs["network"] = "bridge"
    container.with_kwargs(**kwargs)
    container.start()
    try:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        network = next(iter(wrapped.attrs["NetworkSettings"].get("Networks") or {"bridge": {}}))
        host, port = link.address(wrapped, RYUK_PORT, network)
        sock = _register(host, port, session_labels())
    except BaseException:
        with contextlib.suppress(Exception):
            container.stop()
        raise
    Reaper._container = container
    Reaper._instance = Reaper()
    started = _Started(
        description=(
            f"reaper {image} (container testcontainers-ryuk-{SESSION_ID[:8]}…) removes this run's "
            f"containers and networks {reconnection_timeout} after nocrud ends, even if killed"
        ),
        sockets=[sock],
    )
    atexit.register(_hand_over, started)
    return started


def _register(host: str, port: int, labels: Mapping[str, str]) -> socket.socket:
    """Open a connection to the reaper, send the label filter and wait for its ``ACK``.

    The connection stays open for the life of the process: its end is the signal.
    """
    line = "&".join(f"label={key}={value}" for key, value in labels.items()) + "\r\n"
    deadline = time.monotonic() + CONFIRM_TIMEOUT
    while True:
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection((host, port), timeout=2.0)
            sock.sendall(line.encode())
            if _read_line(sock) == b"ACK\n":
                sock.settimeout(None)
                return sock
            last = "connection closed without ACK"
        except OSError as exc:
            last = _short(exc)
        if sock is not None:
            sock.close()
        if time.monotonic() >= deadline:
            raise ReaperError(f"no ACK from {host}:{port} within {CONFIRM_TIMEOUT:.0f}s ({last})")
        time.sleep(0.2)


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < 64:
        chunk = sock.recv(64)
        if not chunk:
            break
        data += chunk
    return data


def _hand_over(started: _Started) -> None:
    """At exit: drop our connections, then ask the reaper to clean up now and wait for it.

    SIGTERM makes Ryuk (and nocrud's reaper) remove what matches at once when no client
    is left, then exit; ``auto_remove`` removes its container. If it does not finish in
    time, it is force-removed, as testcontainers would have done.
    """
    from testcontainers.core.container import Reaper

    for sock in started.sockets:
        sock.close()
    if Reaper._socket is not None:
        Reaper._socket.close()
        Reaper._socket = None
    container = Reaper._container
    Reaper._container = None
    Reaper._instance = None
    if container is None or container._container is None:
        return
    import docker.errors

    try:
        container._container.kill(signal="SIGTERM")
        container._container.wait(timeout=HANDOVER_TIMEOUT, condition="removed")
    except docker.errors.NotFound:
        pass  # already gone: it finished before we asked
    except Exception:  # noqa: BLE001 - fall back to what testcontainers does
        with contextlib.suppress(Exception):
            container.stop()
    finally:
        with contextlib.suppress(Exception):
            container.get_docker_client().client.close()


def _force_remove() -> None:
    """testcontainers' own teardown of its reaper, tolerating one that is already gone."""
    from testcontainers.core.container import Reaper

    with contextlib.suppress(Exception):
        Reaper.delete_instance()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
