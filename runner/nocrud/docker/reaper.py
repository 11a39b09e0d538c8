"""The reaper: what removes a run's containers and networks when nocrud itself is SIGKILLed.

This module owns starting a Ryuk reaper (testcontainers' protocol) once per process,
before any worker thread, and handing over to it at exit. The reaper holds a TCP
connection from this process; when the connection drops (the process died, however)
and no new one arrives within ``RYUK_RECONNECTION_TIMEOUT``, it removes every container,
network, volume and image labelled ``org.testcontainers.session-id=<this process's
session>``: :func:`session_labels` is put on every object nocrud makes.

Starting it costs about half a second (its container, then its Python listening), so
``nocrud up`` begins it on a background thread as soon as its configuration is read
(:func:`start_early`) and gets its imports, flow discovery and run store ready meanwhile;
:func:`start_reaper`, called before anything else touches Docker, waits for that start's
``ACK``, so the reaper still watches before the run's first container or network exists.

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
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nocrud.docker import shared_reaper
from nocrud.errors import one_line

if TYPE_CHECKING:
    import docker

    from nocrud.docker.engine import Connection

#: nocrud's Ryuk-compatible reaper image (images/reaper).
REAPER_IMAGE = "nocrud/reaper:1"
#: Ryuk's port inside its container (testcontainers/core/container.py, ``Reaper``).
RYUK_PORT = 8080
#: How long after nocrud's death the reaper starts removing, unless the user chose.
RECONNECTION_TIMEOUT = "2s"
#: Longest wait for a registry when the default Ryuk image is missing.
PULL_TIMEOUT = 30.0
#: How long the reaper gets to register our filter, and to finish its work at exit. A shared
#: CI runner under load may take well over 10 s to start a Python process in a container.
CONFIRM_TIMEOUT = 45.0
HANDOVER_TIMEOUT = 15.0
#: testcontainers' truthy spellings (testcontainers/core/config.py, ``ENABLE_FLAGS``).
ENABLE_FLAGS = ("yes", "true", "t", "y", "1")

#: Marks a reaper's own container, which reapers never remove (as in Ryuk).
LABEL_RYUK = "org.testcontainers.ryuk"

#: What happens instead when there is no reaper.
BACKSTOP = "a killed run's containers are removed by the next run or `nocrud clean`"
NO_IMAGE = f"no reaper image yet (`nocrud build` builds it): {BACKSTOP}"


class ReaperError(Exception):
    """The reaper container started but would not take our filter."""


@dataclass
class _Started:
    """What :func:`start_reaper` set up in this process."""

    description: str
    sockets: list[socket.socket] = field(default_factory=list)
    container: Any = None
    handed_over: bool = False
    #: Where this process reaches it.
    address: tuple[str, int] = ("", 0)
    #: Set when this process shares the reaper with others (:func:`share_with`).
    share: shared_reaper.Share | None = None
    #: A Docker client, for a joined reaper this process may have to stop at exit.
    client: Any = None


_started: _Started | None = None
#: The session whose processes share one reaper (:func:`share_with`); None: a reaper of its own.
_share_key: str | None = None
#: How long a process waits for a recorded shared reaper to take its filter before it
#: starts one of its own (a running reaper answers at once; a gone one refuses at once).
JOIN_TIMEOUT = 2.0


class _EarlyStart:
    """A reaper being started on a background thread (see :func:`start_early`).

    It goes only as far as it can without deciding anything the run must hear about:
    when Docker cannot be reached or no reaper image is here, it stops and leaves it to
    :func:`start_reaper` to find that out again, say so, and build or pull the image.
    Once it has an image its outcome is final: a started reaper, or the line saying why
    none started.
    """

    def __init__(self) -> None:
        self.said: list[str] = []
        #: The outcome is final: ``started``, or the reason none started in ``said``.
        self.final = False
        self.started: _Started | None = None
        #: Set at exit: stop waiting for an ``ACK`` (the container is then removed).
        self.abandon = threading.Event()
        self.thread = threading.Thread(target=self._run, name="nocrud-reaper-start", daemon=True)

    def _run(self) -> None:
        from testcontainers.core.config import testcontainers_config as tc

        from nocrud.docker.engine import open_engine

        try:
            if disabled_by_user(os.environ, tc.tc_properties):
                return
            engine = open_engine()
        except Exception:  # noqa: BLE001 - the run's own connection says what is wrong
            return
        try:
            image = _choose_with_docker(engine.client, self.said.append, pull=False)
        except Exception:  # noqa: BLE001 - the same
            image = None
        if image is None or self.abandon.is_set():
            engine.close()
            return
        timeout = os.environ.get("RYUK_RECONNECTION_TIMEOUT", "").strip() or RECONNECTION_TIMEOUT
        try:
            self.started = _launch(engine.client, image, timeout, engine.connection, self.abandon)
        except Exception as exc:  # noqa: BLE001 - the sweep stays the backstop
            self.said.append(f"reaper {image} did not start ({one_line(exc)}): {BACKSTOP}")
            engine.close()
        self.final = True


_early: _EarlyStart | None = None


def start_early() -> None:
    """Begin starting this process's reaper on a background thread; returns at once.

    For a run that knows it will want a reaper (not ``--keep-failed``) and has other
    work to do before it touches Docker: :func:`start_reaper` then waits for this start
    instead of making its own, and says what it would have said. Whatever this start
    made is handed over at exit even when :func:`start_reaper` is never called.
    """
    global _early  # noqa: PLW0603 - one reaper per process
    if _started is not None or _early is not None:
        return
    _early = _EarlyStart()
    atexit.register(_early_at_exit, _early)
    _early.thread.start()


def _early_at_exit(early: _EarlyStart) -> None:
    """At exit: let an early start finish (or give up waiting for its ``ACK``), hand it over."""
    early.abandon.set()
    early.thread.join(CONFIRM_TIMEOUT)
    if early.started is not None:
        _hand_over(early.started)


def _join_early(say: Callable[[str], None]) -> _EarlyStart | None:
    """Wait for the early start, if any, and repeat what it had to say; forget it after."""
    global _early
    early, _early = _early, None
    if early is None:
        return None
    early.thread.join()
    for line in early.said:
        say(line)
    return early


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
    client: docker.DockerClient,
    *,
    say: Callable[[str], None],
    disabled: bool = False,
    connection: Connection | None = None,
    build: Callable[[str], object] | None = None,
) -> str | None:
    """Start the reaper for this process, or explain why there is none. Call once, early.

    At a normal exit the reaper is told to clean up now (SIGTERM: it removes what is
    left and exits), so leftovers of a normal exit are removed too.

    After :func:`start_early`, this waits for that start's ``ACK`` (or its failure)
    instead of starting another: when it returns, the reaper watches.

    Args:
        client: The run's Docker client.
        say: Prints one line for the user.
        disabled: No reaper (``--keep-failed``: kept containers must outlive the process).
        connection: How this process reaches containers (detected when omitted).
        build: Builds an image of nocrud's own by reference; when no reaper image is
            here or pullable, ``nocrud/reaper:1`` is built with it (once per engine), so
            a fresh engine's first run has its backstop too.

    Returns:
        A one-line description of the reaper, or None when it is off.
    """
    global _started  # noqa: PLW0603 - one reaper per process, like testcontainers' own
    from testcontainers.core.config import testcontainers_config as tc

    if _started is not None:
        return _started.description
    if disabled or disabled_by_user(os.environ, tc.tc_properties):
        early = _join_early(lambda _line: None)
        if early is not None and early.started is not None:
            _hand_over(early.started)  # kept environments must outlive this process
        return None
    early = _join_early(say)
    if early is not None and early.final:
        started = early.started
    else:
        started = _start_here(client, say, connection, build)
    if started is None:
        return None
    _started = started
    atexit.register(_hand_over, started)
    return started.description


def _start_here(
    client: docker.DockerClient,
    say: Callable[[str], None],
    connection: Connection | None,
    build: Callable[[str], object] | None,
) -> _Started | None:
    """Find (or build) the image and start the reaper on this thread; None after saying why."""
    image = _find_or_build(client, say, build)
    if image is None:
        return None
    timeout = os.environ.get("RYUK_RECONNECTION_TIMEOUT", "").strip() or RECONNECTION_TIMEOUT
    try:
        return _launch(client, image, timeout, connection)
    except Exception as exc:  # noqa: BLE001 - same: carry on with the sweep as backstop
        say(f"reaper {image} did not start ({one_line(exc)}): {BACKSTOP}")
        return None


def _find_or_build(
    client: docker.DockerClient,
    say: Callable[[str], None],
    build: Callable[[str], object] | None,
) -> str | None:
    """The reaper image to start, or None after saying why there is none."""
    try:
        image = _choose_with_docker(client, say)
    except Exception as exc:  # noqa: BLE001 - no reaper is a degraded mode, not an error
        say(f"could not look for a reaper image ({one_line(exc)}): {BACKSTOP}")
        return None
    if image is None and build is not None:
        try:
            build(REAPER_IMAGE)
        except Exception as exc:  # noqa: BLE001 - same: the sweep stays the backstop
            say(f"could not build {REAPER_IMAGE} ({one_line(exc)}): {BACKSTOP}")
            return None
        image = REAPER_IMAGE
    if image is None:
        say(NO_IMAGE)
    return image


def _choose_with_docker(
    client: docker.DockerClient, say: Callable[[str], None], *, pull: bool = True
) -> str | None:
    """The reaper image here (or pulled, unless ``pull`` is False), else None."""
    from nocrud.docker.resources import image_id

    def pull_one(image: str) -> bool:
        if not pull:
            return False
        try:
            client.api.pull(image)
        except Exception:  # noqa: BLE001 - no registry, no image: both mean "no"
            return False
        # Podman's compat API answers a failed pull with 200 and the error in the
        # stream: only an image now present counts.
        if image_id(client, image) is None:
            return False
        say(f"pulled {image}")
        return True

    return choose_image(
        os.environ,
        default=default_ryuk_image(),
        present=lambda image: image_id(client, image) is not None,
        pull=pull_one,
    )


def share_with(key: str) -> None:
    """Share one reaper with the other processes that call this with the same ``key``.

    For pytest-xdist's workers (the key: the session's ``testrunuid``): the first to
    start one starts it, the others register on it (see :mod:`nocrud.docker.shared_reaper`).
    Call before :func:`start_early` or :func:`start_reaper`.
    """
    global _share_key  # noqa: PLW0603 - one reaper per process
    _share_key = key


def _launch(
    client: docker.DockerClient,
    image: str,
    reconnection_timeout: str,
    connection: Connection | None,
    abandon: threading.Event | None = None,
) -> _Started:
    """Start this process's reaper (:func:`_start`), or join its session's (:func:`share_with`)."""
    if _share_key is None:
        return _start(client, image, reconnection_timeout, connection, abandon)
    made: list[_Started] = []

    def start() -> tuple[socket.socket, str, int, str]:
        started = _start(client, image, reconnection_timeout, connection, abandon)
        made.append(started)
        return started.sockets[0], *started.address, str(started.container.id)

    def register(host: str, port: int) -> socket.socket:
        return _register(host, port, session_labels(), abandon, timeout=JOIN_TIMEOUT)

    key = f"{_share_key}\0{getattr(client.api, 'base_url', '')}"
    sock, share = shared_reaper.join(key, start=start, register=register)
    if made:
        made[0].share = share
        return made[0]
    return _Started(
        description=(
            f"reaper (container {share.container[:12]}), shared with this session's other "
            f"processes, removes this process's containers and networks "
            f"{reconnection_timeout} after the last of them ends, even if killed"
        ),
        sockets=[sock],
        share=share,
        client=client,
    )


def _start(
    client: docker.DockerClient,
    image: str,
    reconnection_timeout: str,
    connection: Connection | None,
    abandon: threading.Event | None = None,
) -> _Started:
    """Start the reaper, register our filter and wait for its ``ACK``.

    testcontainers' own ``Reaper`` publishes the reaper's port on every interface, and
    the Ryuk protocol has no authentication: anyone who can reach it could register
    filters. So nocrud starts the container with the port bound like every other port
    it publishes (127.0.0.1 for a local daemon) or, when this process runs in a
    container, not published at all and reached on the network both share. It also
    waits for the reaper's ``ACK`` (Docker's port proxy may accept the connection before
    the reaper listens, and a filter sent then is lost).
    """
    from testcontainers.core.config import testcontainers_config as tc
    from testcontainers.core.labels import SESSION_ID

    from nocrud.docker.engine import detect_connection
    from nocrud.docker.resources import Container, image_id

    link = connection or detect_connection(client)
    if image_id(client, image) is None:
        client.images.pull(image)  # RYUK_CONTAINER_IMAGE may name one not here yet
    # Not the network testcontainers would pick for a process in a container: that may
    # be the host's, where published ports are refused.
    container = Container(
        client,
        image,
        what="reaper",
        name=f"testcontainers-ryuk-{SESSION_ID}",
        labels={LABEL_RYUK: "true"},
        network="bridge" if link.uses_published_ports else None,
        ports=link.ports(RYUK_PORT),
        volumes={tc.ryuk_docker_socket: {"bind": "/var/run/docker.sock", "mode": "rw"}},
        environment={"RYUK_RECONNECTION_TIMEOUT": reconnection_timeout},
        privileged=tc.ryuk_privileged,
        auto_remove=True,
    )
    container.start()
    try:
        container.obj.reload()
        network = next(
            iter(container.obj.attrs["NetworkSettings"].get("Networks") or {"bridge": {}})
        )
        host, port = container.address(link, RYUK_PORT, network)
        sock = _register(host, port, session_labels(), abandon)
    except BaseException:
        with contextlib.suppress(Exception):
            container.obj.kill()
        raise
    return _Started(
        description=(
            f"reaper {image} (container testcontainers-ryuk-{SESSION_ID[:8]}…) removes this run's "
            f"containers and networks {reconnection_timeout} after nocrud ends, even if killed"
        ),
        sockets=[sock],
        container=container.obj,
        address=(host, port),
    )


def _register(
    host: str,
    port: int,
    labels: Mapping[str, str],
    abandon: threading.Event | None = None,
    *,
    timeout: float | None = None,
) -> socket.socket:
    """Open a connection to the reaper, send the label filter and wait for its ``ACK``.

    The connection stays open for the life of the process: its end is the signal.
    ``abandon`` set (the process is exiting) ends the wait at the next try. ``timeout``:
    how long to keep trying (default ``CONFIRM_TIMEOUT``).
    """
    line = "&".join(f"label={key}={value}" for key, value in labels.items()) + "\r\n"
    timeout = CONFIRM_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    # The reaper listens a few tens of milliseconds after its container starts; until then
    # Docker's port proxy accepts and drops the connection. Look again every 50 ms at most:
    # every run waits for this before its first flow, and a try costs one local connect.
    pause = 0.02
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
            last = one_line(exc)
        if sock is not None:
            sock.close()
        if abandon is not None and abandon.is_set():
            raise ReaperError(f"gave up on {host}:{port}: this process is exiting")
        if time.monotonic() >= deadline:
            raise ReaperError(f"no ACK from {host}:{port} within {timeout:.0f}s ({last})")
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < 64:
        chunk = sock.recv(64)
        if not chunk:
            break
        data += chunk
    return data


def _hand_over(started: _Started) -> None:
    """At exit (once): drop our connection, then let the reaper remove what is left.

    SIGTERM makes Ryuk (and nocrud's reaper) remove what matches at once, no client
    being left, then exit; ``auto_remove`` removes its container. When something of this
    process is still there, this waits until the reaper's container is gone (if it does
    not finish in time, it is force-removed). When nothing is (the usual end: the run
    removed its own), it does not wait: the reaper has nothing to remove and exits
    within a few hundred milliseconds, its reconnection timeout ends it too if the
    signal were lost, and Docker removes its container, whether or not this process is
    still there. A SIGKILL would not return before the container is gone.
    """
    import docker.errors

    from nocrud.docker import cleanup

    if started.handed_over:
        return
    started.handed_over = True
    for sock in started.sockets:
        sock.close()
    if started.share is not None and not started.share.leave():
        return  # the others still use it: it ends after the last of them (see shared_reaper)
    container = started.container
    if container is None and started.share is not None:
        with contextlib.suppress(Exception):  # gone already: nothing to stop
            container = started.client.containers.get(started.share.container)
    if container is None:
        return
    try:
        left = _session_objects(container.client)
    except Exception:  # noqa: BLE001 - then wait, as if something were left
        left = ["unknown"]
    try:
        container.kill(signal="SIGTERM")
        if left:
            container.wait(timeout=HANDOVER_TIMEOUT, condition="removed")
    except docker.errors.NotFound:
        pass  # already gone: it finished before we asked
    except Exception:  # noqa: BLE001 - then remove it the hard way
        with contextlib.suppress(Exception):
            cleanup.ignore_gone(container.remove, force=True)


def _session_objects(client: docker.DockerClient) -> list[str]:
    """This process's containers and networks still there (nocrud labels no other kind).

    Two list calls that inspect nothing, so they cannot race a removal. Reapers are
    never counted: a reaper never removes one.
    """
    label = "=".join(next(iter(session_labels().items())))
    found = [
        str(c["Id"])
        for c in client.api.containers(all=True, filters={"label": label})
        if LABEL_RYUK not in (c.get("Labels") or {})
    ]
    found += [str(n["Id"]) for n in client.api.networks(filters={"label": label})]
    return found


def find_reaper_image(
    client: docker.DockerClient,
    say: Callable[[str], None],
    build: Callable[[str], object] | None = None,
) -> str | None:
    """The reaper image to start (building nocrud's with ``build`` when none is here), or None.

    Also used for a kept pool's keeper (:mod:`nocrud.environment.kept`).
    """
    return _find_or_build(client, say, build)


def register(host: str, port: int, labels: Mapping[str, str]) -> socket.socket:
    """Connect to a reaper, register the ``labels`` filter and wait for its ``ACK``.

    Keep the returned connection open for as long as the objects must live.
    """
    return _register(host, port, labels)
