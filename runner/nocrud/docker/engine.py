"""The Docker seam: connecting to the engine and knowing how to reach containers.

Every other module gets its Docker client from :func:`connect`, so there is one
place that turns "the daemon is not there" into an error a user can act on, and
one place (:func:`detect_connection`) that decides how this process reaches the
containers it starts, with zero configuration:

* ``local``: a daemon on this machine; ports are published on 127.0.0.1;
* ``docker-host``: ``DOCKER_HOST=tcp://HOST:PORT`` (GitLab's ``docker:dind``
  service); ports are published on the daemon's interfaces and reached on HOST;
* ``container-network``: this process runs in a container with the daemon's
  socket mounted (Docker-outside-of-Docker); published ports live on the host,
  out of reach, so this container joins each flow's network and talks to the
  containers directly.

``NOCRUD_DOCKER_HOST_IP`` forces published ports reached at that address;
``NOCRUD_CONNECTION_MODE`` forces a mode.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import docker
import docker.errors
import requests.exceptions

from nocrud.errors import InfrastructureError, one_line


class DockerUnavailableError(InfrastructureError):
    """The Docker engine cannot be reached; the message says where we looked and what to do."""


def describe_docker_host(env: Mapping[str, str] | None = None) -> str:
    """Where the Docker client will look, for messages: DOCKER_HOST or the default socket."""
    env = os.environ if env is None else env
    return env.get("DOCKER_HOST") or "unix:///var/run/docker.sock (default; DOCKER_HOST is unset)"


def published_host(env: Mapping[str, str] | None = None) -> str:
    """The address on which ports published by containers can be reached from this process.

    Args:
        env: Environment to read; ``os.environ`` at call time when omitted.

    Returns:
        ``NOCRUD_DOCKER_HOST_IP`` when set; the host of ``DOCKER_HOST`` when it is
        ``tcp://HOST:PORT``; otherwise ``127.0.0.1``.
    """
    env = os.environ if env is None else env
    override = env.get("NOCRUD_DOCKER_HOST_IP", "").strip()
    if override:
        return override
    docker_host = env.get("DOCKER_HOST", "")
    if docker_host.startswith("tcp://"):
        host = urlparse(docker_host).hostname
        if host:
            return host
    return "127.0.0.1"


def publish_address(env: Mapping[str, str] | None = None) -> str:
    """The host IP that published ports bind to.

    A local daemon binds 127.0.0.1 so nothing outside this machine can reach a
    test database; a remote daemon (DinD) must bind all of its interfaces,
    because we reach it from outside its own loopback.
    """
    return "127.0.0.1" if published_host(env) in ("127.0.0.1", "localhost") else "0.0.0.0"  # noqa: S104


MODES = ("local", "docker-host", "container-network")


@dataclass(frozen=True)
class Connection:
    """How this process reaches the containers it starts.

    Attributes:
        mode: One of :data:`MODES`.
        host: Address on which published ports are reached (unused in container-network mode).
        bind: Host IP that published ports bind to.
        container: This process's own container id in container-network mode.
    """

    mode: str
    host: str
    bind: str
    container: str | None = None

    @property
    def uses_published_ports(self) -> bool:
        return self.mode != "container-network"

    def describe(self) -> str:
        if self.mode == "container-network":
            own = self.container[:12] if self.container else "?"
            return f"container-network (this container {own} joins each flow's network)"
        return f"{self.mode} (published ports on {self.bind}, reached at {self.host})"

    def join(self, network: Any) -> None:
        """In container-network mode, connect this container to a flow's network."""
        if self.container is not None:
            network.connect(self.container)

    def leave(self, network: Any) -> None:
        """Undo :meth:`join`, tolerating a network or container that is already gone."""
        if self.container is None:
            return
        import docker.errors

        try:
            network.disconnect(self.container, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code not in (404, 409):
                raise

    def address(self, container: Any, port: int, network: str) -> tuple[str, int]:
        """Where this process reaches ``port`` of ``container`` (reloaded here)."""
        container.reload()
        attrs = container.attrs
        if not self.uses_published_ports:
            ip = ((attrs["NetworkSettings"].get("Networks") or {}).get(network) or {}).get(
                "IPAddress"
            )
            if not ip:
                raise RuntimeError(
                    f"container {container.name} has no address on network {network}"
                )
            return ip, port
        bindings = (attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or []
        if not bindings:
            raise LookupError(f"container {container.name} published no port for {port}/tcp")
        return self.host, int(bindings[0]["HostPort"])

    def ports(self, port: int) -> dict[str, Any]:
        """The ``ports=`` argument for creating a container that serves ``port``."""
        return {f"{port}/tcp": (self.bind,)} if self.uses_published_ports else {}


def in_container() -> bool:
    """Whether this process runs in a container (Docker, Podman, Kubernetes, LXC)."""
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return True
    try:
        cgroup = Path("/proc/1/cgroup").read_text()
    except OSError:
        return False
    return bool(re.search(r"docker|kubepods|containerd|libpod|lxc", cgroup))


def _own_container_id() -> str | None:
    """This process's container id when it runs in a container, else None."""
    if not in_container():
        return None
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:
        mountinfo = ""
    match = re.search(r"/containers/([0-9a-f]{64})/", mountinfo)
    if match:
        return match.group(1)
    return socket.gethostname()


def detect_connection(client: Any = None, env: Mapping[str, str] | None = None) -> Connection:
    """Decide how to reach containers (see the module docstring); cheap, no side effects.

    Args:
        client: Docker client, used to confirm our own container id in a container.
        env: Environment to read; ``os.environ`` at call time when omitted.
    """
    env = os.environ if env is None else env
    forced = env.get("NOCRUD_CONNECTION_MODE", "").strip()
    if forced and forced not in MODES:
        raise ValueError(
            f"NOCRUD_CONNECTION_MODE={forced!r}: use one of {', '.join(MODES)} (or unset it)"
        )
    host = published_host(env)
    docker_host = env.get("DOCKER_HOST", "")
    remote = docker_host.startswith(("tcp://", "ssh://", "http://", "https://"))
    if forced == "container-network" or (
        not forced and not remote and not env.get("NOCRUD_DOCKER_HOST_IP")
    ):
        own = env.get("NOCRUD_SELF_CONTAINER") or _own_container_id()
        if own and client is not None:
            import docker.errors

            try:
                container = client.containers.get(own)
            except docker.errors.DockerException:
                own = None
            else:
                own = str(container.id)
                if container.attrs.get("HostConfig", {}).get("NetworkMode") == "host":
                    # Sharing the host's network: 127.0.0.1 is the host's, and a container on
                    # the host network cannot join other networks anyway.
                    own = None
        if own:
            return Connection("container-network", host="", bind="", container=own)
        if forced == "container-network":
            raise ValueError(
                "NOCRUD_CONNECTION_MODE=container-network, but this process does not run in a "
                "container the Docker daemon knows: set NOCRUD_SELF_CONTAINER=<container id>"
            )
    mode = forced or (
        "docker-host" if remote or host not in ("127.0.0.1", "localhost") else "local"
    )
    return Connection(mode, host=host, bind=publish_address(env))


@dataclass
class Engine:
    """The run's one Docker client, shared by every worker, and how to reach containers."""

    client: docker.DockerClient
    connection: Connection

    def close(self) -> None:
        self.client.close()


def open_engine(*, parallel: int = 1) -> Engine:
    """Connect (see :func:`connect`) and detect the connection mode, for one run.

    The client's HTTP connection pool is sized for ``parallel`` workers making
    several calls at once, so they do not queue for a connection.
    """
    client = connect(pool_size=max(10, 4 * parallel))
    try:
        connection = detect_connection(client)
    except ValueError:
        client.close()
        raise
    return Engine(client, connection)


def connect(
    timeout: float = 60.0, *, pool_size: int = 10, wait: float = 0.0
) -> docker.DockerClient:
    """A client for the engine the environment names, or :class:`DockerUnavailableError`.

    The client is checked with a ping, so a missing daemon fails here, once,
    with a message, instead of deep inside a worker thread. When this process runs
    in a container the daemon knows, the objects it makes are owned by that container
    (see :mod:`nocrud.docker.cleanup`).

    Args:
        timeout: Seconds each Docker API call may take.
        pool_size: Connections kept open to the daemon.
        wait: Keep trying this many seconds (a CI service daemon still starting up).
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            client = _connect_once(timeout, pool_size)
        except DockerUnavailableError as exc:
            # A name that does not resolve, or an address whose packets are dropped, is
            # wiring (a CI service's alias, the job's network), not a daemon still
            # starting (that refuses the connection): waiting would only delay the message.
            if wait > 0 and (
                _unresolved_name(os.environ) is not None
                or isinstance(exc.__cause__, SilentAddressError)
            ):
                raise
            if time.monotonic() >= deadline:
                if wait > 0:
                    raise DockerUnavailableError(
                        f"Docker did not answer within {wait:g} s: {exc}"
                    ) from exc.__cause__
                raise
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            continue
        _claim_own_container(client)
        return client


#: Seconds a ``tcp://`` DOCKER_HOST has to accept a TCP connection before it counts as not
#: answering from this network. A daemon, even a busy one, accepts within milliseconds
#: (the kernel answers, not dockerd); silence means packets are dropped on the way.
CONNECT_PROBE_SECONDS = 4.0


class SilentAddressError(OSError):
    """Nothing answered a TCP connection to the DOCKER_HOST address: packets are dropped."""


def probe_tcp(env: Mapping[str, str], timeout: float = CONNECT_PROBE_SECONDS) -> None:
    """Fail fast when a ``tcp://`` DOCKER_HOST does not answer from this network.

    The Docker client's own first call (asking the API version) waits for its whole
    timeout (60 s) on an address whose packets are dropped, then blames a slow start or
    TLS. A plain TCP connect with a short timeout tells the cases apart: a refusal or a
    name that does not resolve is left to the client's own message; silence is this one.

    Raises:
        SilentAddressError: No answer within ``timeout`` seconds.
    """
    docker_host = env.get("DOCKER_HOST", "")
    if not docker_host.startswith("tcp://"):
        return
    parsed = urlparse(docker_host)
    if not parsed.hostname:
        return
    port = parsed.port or (2376 if env.get("DOCKER_TLS_VERIFY") else 2375)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return
    except TimeoutError:
        raise SilentAddressError(f"no answer to a TCP connection within {timeout:g} s") from None
    except OSError:
        return  # refused, unresolvable, unreachable: the client says it, fast


def silent(env: Mapping[str, str], cause: str) -> str:
    """The message for a DOCKER_HOST address that does not answer from this network."""
    docker_host = env.get("DOCKER_HOST", "")
    host = urlparse(docker_host).hostname or docker_host
    return (
        f"cannot reach Docker at {docker_host}: the address {host} does not answer from this "
        f"network ({cause}); packets to it are dropped, so this job or container is probably "
        "on a network that cannot reach it. Check that the job runs on the Docker daemon's "
        "network (in GitLab, the dind service and the job share the job's network: use the "
        "service's alias, e.g. DOCKER_HOST=tcp://docker:2375, rather than an IP of another "
        "network), that the address and port are right (`docker -H "
        f"{docker_host} info` from here), and that no firewall drops the port."
    )


def _connect_once(timeout: float, pool_size: int) -> docker.DockerClient:
    try:
        probe_tcp(os.environ)
    except SilentAddressError as exc:
        raise DockerUnavailableError(silent(os.environ, str(exc))) from exc
    try:
        client = docker.from_env(timeout=int(timeout), max_pool_size=pool_size)
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(unreachable(exc)) from exc
    notice_dead_peers(client.api)
    try:
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        client.close()
        raise DockerUnavailableError(unreachable(exc)) from exc
    return client


#: How long a daemon reached over TCP may leave our bytes unacknowledged, or be silent on
#: keepalive probes, before the connection counts as dead (see notice_dead_peers).
DEAD_PEER_SECONDS = 10


def notice_dead_peers(api: Any) -> None:
    """Make a TCP daemon's vanishing an error within seconds, not after the call's timeout.

    A killed Docker-in-Docker service sends no reset: a request on a kept-alive
    connection to it waits out the client's whole timeout (60 s), which is what
    made a lost daemon take a minute to report. TCP keepalive probes and
    ``TCP_USER_TIMEOUT`` let the kernel drop such a connection after
    :data:`DEAD_PEER_SECONDS`; a daemon that is merely slow still acknowledges at
    the TCP level, so long calls (builds, loads, waits) are not cut short. Unix
    sockets are left alone: their peer cannot vanish that way.

    Args:
        api: A docker-py ``APIClient`` (``DockerClient.api``).
    """
    from urllib3.connection import HTTPConnection

    if not str(getattr(api, "base_url", "")).startswith(("http://", "https://")):
        return
    tcp = socket.IPPROTO_TCP
    options = [*HTTPConnection.default_socket_options, (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (
        ("TCP_KEEPIDLE", 5),
        ("TCP_KEEPINTVL", 2),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", DEAD_PEER_SECONDS * 1000),
    ):
        if hasattr(socket, name):  # Linux; other systems keep their defaults
            options.append((tcp, getattr(socket, name), value))
    for adapter in api.adapters.values():
        manager = getattr(adapter, "poolmanager", None)
        if manager is not None:
            manager.connection_pool_kw["socket_options"] = options
            manager.clear()  # the connection that asked for the API version had none


def unreachable(exc: BaseException, env: Mapping[str, str] | None = None) -> str:
    """Why the daemon cannot be reached, with the advice that matches the cause.

    An unresolvable ``DOCKER_HOST`` name is a CI wiring problem (the service's alias, the
    job's network), not a daemon to start; a refused port is a daemon not (yet) listening.
    """
    env = os.environ if env is None else env
    where = describe_docker_host(env)
    cause = one_line(exc)
    docker_host = env.get("DOCKER_HOST", "")
    name = urlparse(docker_host).hostname if docker_host.startswith("tcp://") else None
    if name and _unresolved_name(env) == name:
        return (
            f"cannot reach Docker at {where}: the name {name!r} does not resolve ({cause}). "
            f"In CI, {name!r} is usually the Docker-in-Docker service's alias: check that the "
            f"job declares the service with `alias: {name}` and runs on the service's network "
            "(or point DOCKER_HOST at the daemon's address)."
        )
    if name:
        return (
            f"cannot reach Docker at {where}: nothing answers there ({cause}). A Docker-in-Docker "
            "service may still be starting (`nocrud doctor --wait 30` waits for it), or it "
            "listens elsewhere (TLS on 2376: set DOCKER_TLS_VERIFY and DOCKER_CERT_PATH)."
        )
    return (
        f"cannot reach Docker at {where}: is it running? ({cause}). "
        "Start the Docker daemon or set DOCKER_HOST, then check with `docker info`."
    )


def _unresolved_name(env: Mapping[str, str]) -> str | None:
    """The host name of a ``tcp://`` DOCKER_HOST when it does not resolve, else None."""
    docker_host = env.get("DOCKER_HOST", "")
    name = urlparse(docker_host).hostname if docker_host.startswith("tcp://") else None
    if not name:
        return None
    try:
        socket.getaddrinfo(name, None)
    except (OSError, UnicodeError):
        return name
    return None


def _claim_own_container(client: docker.DockerClient) -> None:
    """Own this process's objects as its container when the daemon knows the container."""
    from nocrud.docker import cleanup

    chosen = os.environ.get("NOCRUD_SELF_CONTAINER", "").strip()
    own = chosen or _own_container_id()
    if not own:
        return
    for attempt in range(3):
        try:
            found = str(client.api.inspect_container(own)["Id"])
            break
        except docker.errors.NotFound:
            return  # another daemon's container (Docker-in-Docker): the host rule applies
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            # A daemon slow to answer under load is not another daemon: owning the objects
            # by the host rule would let no later job judge them, so ask again.
            if attempt == 2:
                return
            time.sleep(0.5)
    # A hostname that merely names some other container is not this one.
    if chosen or found.startswith(own):
        cleanup.claim_container(found)


class EngineLostError(DockerUnavailableError):
    """The daemon answered at the start of the run and no longer does (exit 3).

    Attributes:
        where: The daemon's address (``DOCKER_HOST`` or the default socket).
        cause: Why the last ping failed, in one line.
    """

    def __init__(self, where: str, cause: str) -> None:
        super().__init__(f"lost the Docker daemon at {where} ({cause})")
        self.where = where
        self.cause = cause


#: How long a daemon that stops answering is given to answer again before it counts as lost.
LOSS_GRACE = 3.0


def engine_lost(*, grace: float = LOSS_GRACE, probe_timeout: float = 5.0) -> EngineLostError | None:
    """After a Docker error: is the daemon gone? None when it still (or again) answers.

    Asks with a client of its own and a short timeout (the run's client may sit on a
    dead connection for its whole timeout). A short grace absorbs a blip; a daemon that
    restarts has killed every container of the run anyway, so waiting longer would
    only delay the verdict (docs/ci/README.md).
    """
    deadline = time.monotonic() + grace
    while True:
        try:
            with contextlib.closing(docker.from_env(timeout=max(1, round(probe_timeout)))) as probe:
                probe.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if time.monotonic() >= deadline:
                return EngineLostError(describe_docker_host(), one_line(exc))
            time.sleep(0.5)
            continue
        return None
