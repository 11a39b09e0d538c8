"""The Docker objects nocrud makes, each a context manager over the docker SDK.

One idiom for every container and network, whoever makes it (the image build,
the environments, the reaper): a small object that is created by ``__enter__``
(or :meth:`start` / :meth:`create`), removes itself in ``__exit__`` (or
:meth:`remove`) whatever state it is in, tolerates "already gone", and on a
half-finished start removes what it had made before re-raising, as
testcontainers' ``DockerContainer`` does. They share the run's one Docker client
instead of opening one each. Messages about a container name it by its role
("the database container exited with code 1"), so every caller words deaths the
same way.

Every daemon call they make passes through an optional *gate* (:class:`DaemonGate`): a
bound on how many create/start/remove operations the run has in flight at once. The
Docker daemon serialises much of that work, and many concurrent starts slow every one of
them down (moby#42096), so queueing on our side keeps each operation fast.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import docker
import docker.errors

from nocrud.docker import cleanup
from nocrud.docker.engine import Connection

__all__ = ["Container", "DaemonGate", "Network", "ProcessListError", "image_id"]


#: ``ps_args`` of ``docker top`` asking for pid and parent pid: Docker runs ``ps -o pid,ppid``
#: on its host; Podman parses its own descriptor list (``pid,ppid``) and answers the first
#: form with an empty body. Tried in this order; the one that worked is kept per engine.
_TOP_FORMS = ("-o pid,ppid", "pid,ppid")
_top_form: dict[str, str] = {}
#: The same with each process's command line last (Docker joins the last column's words).
_TOP_FORMS_ARGS = {"-o pid,ppid": "-o pid,ppid,args", "pid,ppid": "pid,ppid,args"}


class ProcessListError(RuntimeError):
    """The Docker host cannot list a container's processes: ``docker top`` runs ``ps`` there.

    Some hosts have none (Bottlerocket, minimal Docker-in-Docker images).
    """


class DaemonGate:
    """At most ``limit`` daemon operations (create, start, restart, remove) in flight at once.

    Shared by every worker of a run; ``limit`` 0 means no bound.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit) if limit > 0 else None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if self._slots is None:
            yield
            return
        with self._slots:
            yield


#: No bound: the gate of objects made outside a run (image builds, the reaper, tests).
UNBOUNDED = DaemonGate(0)


def image_id(client: docker.DockerClient, ref: str) -> str | None:
    """The id of a local image, or None when it is not here (the one "is it present" check)."""
    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound:
        return None


class _Resource:
    """Shared lifecycle: ``__enter__`` makes the object, ``__exit__`` removes it."""

    def _make(self) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self._make()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()


class Network(_Resource):
    """A labelled bridge network; this process's own container joins it in container-network mode.

    Removal first disconnects every container still attached (this process's own
    container above all, which would otherwise keep the network alive), then removes it.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        name: str,
        *,
        labels: Mapping[str, str],
        connection: Connection,
        options: Mapping[str, str] | None = None,
        gate: DaemonGate = UNBOUNDED,
    ) -> None:
        self.client = client
        self.name = name
        self.labels = dict(labels)
        self.connection = connection
        self.options = dict(options or {})
        self.gate = gate
        self.obj: Any = None

    def create(self) -> Self:
        with self.gate():
            self.obj = self.client.networks.create(
                self.name, driver="bridge", labels=self.labels, options=self.options or None
            )
            self.connection.join(self.obj)
        return self

    def _make(self) -> None:
        self.create()

    def remove(self) -> None:
        network, self.obj = self.obj, None
        if network is None:
            return
        with self.gate():
            self.connection.leave(network)
            cleanup.disconnect_all(network)
            cleanup.ignore_gone(network.remove)


class Container(_Resource):
    """One labelled container, created and started together, removed with its volumes.

    Args:
        client: The run's Docker client.
        image: Image reference.
        what: Its role in messages ("database", "app", "migrate").
        name: Container name.
        labels: Labels (run, owner, project, role; the reaper's session label).
        network: Network to join, reachable there under ``aliases``.
        ports: The ``ports=`` mapping (see :meth:`Connection.ports`).
        gate: The run's bound on concurrent daemon operations.
        options: Anything else ``containers.create`` accepts (environment, command,
            ``network_mode``, ``tmpfs``, ...).
    """

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        *,
        what: str,
        name: str | None = None,
        labels: Mapping[str, str],
        network: str | None = None,
        aliases: Sequence[str] = (),
        ports: Mapping[str, Any] | None = None,
        gate: DaemonGate = UNBOUNDED,
        **options: Any,
    ) -> None:
        self.client = client
        self.image = image
        self.what = what
        self.name = name
        self.labels = dict(labels)
        self.network = network
        self.aliases = tuple(aliases)
        self.ports = dict(ports or {})
        self.gate = gate
        # nocrud polls readiness itself; an image's HEALTHCHECK is an exec every few
        # seconds in every container it keeps (nocrud/postgres: every 2 s), daemon CPU
        # that competes with the flows, most of all for the pool's long-lived pairs.
        options.setdefault("healthcheck", {"test": ["NONE"]})
        self.options = options
        self.obj: Any = None

    def create(self) -> Self:
        """Create without starting (to copy files in first)."""
        kwargs = dict(self.options)
        if self.network is not None:
            kwargs["network"] = self.network
            if self.aliases:
                endpoint = self.client.api.create_endpoint_config(aliases=list(self.aliases))
                kwargs["networking_config"] = {self.network: endpoint}
        with self.gate():
            self.obj = self.client.containers.create(
                self.image, name=self.name, labels=self.labels, ports=self.ports or None, **kwargs
            )
        return self

    def copy_in(self, path: str, archive: bytes) -> None:
        """Unpack a tar ``archive`` at ``path`` in the created container (before its start)."""
        with self.gate():
            self.obj.put_archive(path, archive)

    def start(self) -> Self:
        """Create (unless created) and start."""
        if self.obj is None:
            self.create()
        with self.gate():
            self.obj.start()
        return self

    def kill(self) -> None:
        """Stop its process at once (SIGKILL), keeping the container; "not running" is fine."""
        if self.obj is None:
            return
        try:
            with self.gate():
                self.obj.kill()
        except docker.errors.APIError as exc:
            # 409: not running (it died, or a previous kill won); 404: gone (the caller
            # learns that from the next start).
            if exc.status_code not in (404, 409):
                raise

    def signal(self, name: str) -> None:
        """Send signal ``name`` (``HUP``, ``SIGUSR1``, ...) to its main process."""
        with self.gate():
            self.obj.kill(signal=name)

    def processes(self) -> list[tuple[int, int]]:
        """``(pid, parent pid)`` of every process in it, as the daemon's host numbers them.

        ``docker top`` runs ``ps`` on the daemon's side: the image needs none.

        Raises:
            ProcessListError: The daemon's host has no ``ps`` (or it failed).
        """
        return [(int(row[0]), int(row[1])) for row in self._top(args=False)]

    def commands(self) -> list[tuple[int, int, str]]:
        """``(pid, parent pid, command line)`` of every process in it (one ``docker top``).

        Raises:
            ProcessListError: The daemon's host has no ``ps`` (or it failed).
        """
        return [(int(row[0]), int(row[1]), " ".join(row[2:])) for row in self._top(args=True)]

    def _top(self, *, args: bool) -> list[list[str]]:
        key = self.client.api.base_url
        forms = _TOP_FORMS if key not in _top_form else (_top_form[key],)
        last = ""
        for form in forms:
            try:
                top = self.obj.top(ps_args=_TOP_FORMS_ARGS[form] if args else form)
            except docker.errors.NotFound:
                raise
            except docker.errors.APIError as exc:
                last = str(exc.explanation or exc)
                continue
            except ValueError:
                # Podman's compat API answers 200 with an empty body to ps's own `-o`
                # syntax; it takes the descriptors alone (`pid,ppid`) instead.
                last = "an empty answer"
                continue
            _top_form[key] = form
            return [list(map(str, row)) for row in top.get("Processes") or []]
        raise ProcessListError(
            f"the Docker host could not list the {self.what} container's processes "
            f"(docker top: {last})"
        )

    def _make(self) -> None:
        self.start()

    def remove(self) -> None:
        container, self.obj = self.obj, None
        if container is not None:
            with self.gate():
                cleanup.ignore_gone(container.remove, force=True, v=True)

    @property
    def created(self) -> bool:
        return self.obj is not None

    def death(self) -> str | None:
        """Why this container is not running any more, as a sentence; None while it runs.

        Reloads its state from the daemon (one API call). Safe while another thread
        removes the container (an interrupt): it works on the object it started with.
        """
        container = self.obj
        if container is None:
            return None
        try:
            container.reload()
        except docker.errors.NotFound:
            return f"the {self.what} container disappeared"
        state = container.attrs.get("State", {})
        if state.get("Status") in ("exited", "dead"):
            return f"the {self.what} container exited with code {state.get('ExitCode')}"
        return None

    def logs(self, tail: int, since: float | None = None) -> str:
        """Its last ``tail`` log lines (after ``since``, a Unix time), or why there are none."""
        container = self.obj
        if container is None:
            return "(no logs: the container was never created)"
        try:
            text = container.logs(tail=tail, since=since or None).decode(errors="replace").rstrip()
        except docker.errors.DockerException:
            return "(no logs: the container is gone)"
        return str(text) or "(the container printed nothing)"

    def address(self, connection: Connection, port: int, network: str) -> tuple[str, int]:
        """Where this process reaches ``port`` of this container."""
        return connection.address(self.obj, port, network)
