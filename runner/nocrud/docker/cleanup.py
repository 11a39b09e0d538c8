"""Labels on every Docker object nocrud makes, and removing what a run left behind.

Every container and network carries ``nocrud.run`` (the run id),
``nocrud.flow`` (the flow, where there is one) and ``nocrud.owner``, so cleanup
never depends on the happy path: a run that was killed is recognised by its
owner being gone, and :func:`sweep` (run at the start of every ``nocrud up``/``build``)
and ``nocrud clean`` remove what it left.

The owner is something whoever sweeps can check:

* on a host, ``<host>:<pid>:<process start tick>``: the process, judged on that host
  only (another host's objects are never judged gone from here). A pid means something
  only in its pid namespace, so outside the host's initial one (a container the daemon
  does not know) the host is ``<hostname>/<pid namespace inode>``: a container on the
  host's network has the host's hostname, and must neither judge the host's processes
  by its own pids nor have its own judged by theirs;
* in a container the Docker daemon knows (a CI job with the host's socket mounted,
  Docker-outside-of-Docker), ``container:<container id>:<pid>:<start tick>``: every job
  container has a new hostname, so a hostname says nothing; the daemon says whether the
  container still runs, so any job on the shared daemon sweeps the objects of a job
  whose container is gone, and never those of a job still running. Within its own
  container a process also judges the pid, so a job's next run sweeps its killed one.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import docker
import docker.errors

LABEL_RUN = "nocrud.run"
LABEL_FLOW = "nocrud.flow"
LABEL_OWNER = "nocrud.owner"
LABEL_PROJECT = "nocrud.project"
LABEL_ROLE = "nocrud.role"
#: On every object of a ``--keep-failed`` run: the startup sweep leaves them, ``nocrud clean`` not.
LABEL_KEEP = "nocrud.keep"
#: Images carry this instead of a run label: they outlive runs on purpose (they are the cache).
LABEL_IMAGE_KEY = "nocrud.cache-key"


def new_run_id() -> str:
    """A short unique id for one run, used in labels and object names."""
    return uuid.uuid4().hex[:10]


def safe_name(text: str, limit: int = 40) -> str:
    """A Docker-safe, bounded fragment of a flow name: any characters in, ``[a-z0-9_.-]`` out."""
    cleaned = re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.") or "flow"
    return cleaned[:limit].rstrip("-.") or "flow"


def object_name(run_id: str, index: int, flow: str) -> str:
    """The name of one flow's Docker objects: run, position and flow, readable in ``docker ps``."""
    return f"nocrud-{run_id}-{index:04d}-{safe_name(flow)}"


def _process_start_tick(pid: int) -> str:
    """Start time of a process in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    # The command name (field 2) may contain spaces and parentheses: split after its closing one.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else "?"


#: Prefix of an owner label naming a container (see the module docstring).
CONTAINER_OWNER = "container:"
#: States in which a container still runs its processes (``docker inspect`` State.Status).
_RUNNING = ("running", "paused", "restarting")
#: This process's container, once the daemon has confirmed it knows it (see claim_container).
_own_container: str | None = None


def claim_container(container_id: str | None) -> None:
    """Own objects as this container from now on: call once the daemon confirmed the id.

    Only a container the daemon labelling the objects knows may be named: a job
    container talking to a Docker-in-Docker service is unknown to that daemon, and
    there its objects keep the host rule.
    """
    global _own_container  # noqa: PLW0603 - one owner per process, like the pid
    _own_container = container_id


#: The inode of the kernel's initial pid namespace (PROC_PID_INIT_INO), the host's own.
_INIT_PID_NAMESPACE = 0xEFFFFFFC


@cache
def _host() -> str:
    """This host as owner labels name it: the hostname, and the pid namespace unless initial."""
    name = socket.gethostname()
    try:
        namespace = Path("/proc/self/ns/pid").stat().st_ino
    except OSError:
        return name  # not Linux: pids are the host's
    return name if namespace == _INIT_PID_NAMESPACE else f"{name}/{namespace}"


@cache
def _process() -> str:
    pid = os.getpid()
    return f"{pid}:{_process_start_tick(pid)}"


def owner() -> str:
    """This process as an owner label value: ``container:id:pid:start`` or ``host:pid:start``."""
    if _own_container is not None:
        return f"{CONTAINER_OWNER}{_own_container}:{_process()}"
    return f"{_host()}:{_process()}"


def run_labels(run_id: str, project: str, *, flow: str | None = None, role: str) -> dict[str, str]:
    """The labels for one object of a run."""
    labels = {
        LABEL_RUN: run_id,
        LABEL_OWNER: owner(),
        LABEL_PROJECT: project,
        LABEL_ROLE: role,
    }
    if flow is not None:
        # Docker accepts long label values, but keep reports and `docker ps` readable.
        labels[LABEL_FLOW] = flow[:200]
    return labels


def owner_is_gone(owner_label: str, client: docker.DockerClient | None = None) -> bool:
    """True when the label names an owner that no longer runs.

    A process on this host is judged by its pid; objects owned by another host are
    never judged gone here: only their own process, or ``nocrud clean --all``, removes
    them. An owner container is judged by the daemon (``client``): gone when the daemon
    no longer has it or it stopped; this process's own container by the pid in it.
    Without a client, another container's objects are not judged gone.
    """
    if owner_label.startswith(CONTAINER_OWNER):
        container, _, process = owner_label.removeprefix(CONTAINER_OWNER).partition(":")
        if container and container == _own_container:
            return _process_is_gone(process)
        return client is not None and bool(container) and _container_is_gone(client, container)
    host, _, rest = owner_label.partition(":")
    if host != _host() or _own_container is not None:
        # Another host's, or another pid namespace's; and a process in a container the
        # daemon knows owns its objects as that container, so a host label is not its own.
        return False
    return _process_is_gone(rest)


def _container_is_gone(client: docker.DockerClient, container: str) -> bool:
    """Whether the daemon no longer runs ``container`` (removed, exited, dead, never started)."""
    try:
        state = client.api.inspect_container(container).get("State") or {}
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError:
        return False  # cannot tell: spare it
    return str(state.get("Status", "")) not in _RUNNING


def _process_is_gone(process: str) -> bool:
    """``pid:start`` names a process of this pid namespace that no longer runs."""
    pid_text, _, start = process.partition(":")
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # The pid runs, but is it still the same process?
    return bool(start) and start != "?" and _process_start_tick(pid) not in (start, "?")


@dataclass(frozen=True)
class SweepReport:
    """What a sweep removed, and how many labelled objects it left alone."""

    containers: int
    networks: int
    spared: int = 0

    @property
    def total(self) -> int:
        return self.containers + self.networks


def sweep(
    client: docker.DockerClient,
    *,
    kept: bool = False,
    live: bool = False,
    project: str | None = None,
) -> SweepReport:
    """Remove labelled containers and networks whose run is over.

    By default (the sweep at the start of every run) only objects whose owner process
    is gone, and not kept on purpose with ``--keep-failed``.

    Args:
        client: Docker client.
        kept: Also remove environments kept with ``--keep-failed`` (``nocrud clean``).
        live: Also remove objects of runs still going and of other hosts
            (``nocrud clean --all``).
        project: Only objects labelled with this project (``nocrud clean`` scopes itself to
            the current ``nocrud.yaml``); None reaches every project on the daemon.
    """

    # One question to the daemon per owner container, not one per object.
    gone = cache(lambda owner_label: owner_is_gone(owner_label, client))

    def doomed(labels: dict[str, str]) -> bool:
        if labels.get(LABEL_KEEP) == "true" and not kept:
            return False
        return live or gone(labels.get(LABEL_OWNER, ""))

    def mine(labels: dict[str, str]) -> bool:
        # The label filter already asks Docker for this; checked again so a reused name can
        # never let one project's clean reach another's objects.
        return project is None or labels.get(LABEL_PROJECT) == project

    wanted = [LABEL_RUN] if project is None else [LABEL_RUN, f"{LABEL_PROJECT}={project}"]
    containers = networks = spared = 0
    for container in client.containers.list(
        all=True, filters={"label": wanted}, ignore_removed=True
    ):
        if not mine(container.labels):
            continue
        if doomed(container.labels):
            ignore_gone(container.remove, force=True, v=True)
            containers += 1
        else:
            spared += 1
    for network in client.networks.list(filters={"label": wanted}):
        network_labels = network.attrs.get("Labels") or {}
        if not mine(network_labels):
            continue
        if doomed(network_labels):
            disconnect_all(network)
            ignore_gone(network.remove)
            networks += 1
        else:
            spared += 1
    return SweepReport(containers=containers, networks=networks, spared=spared)


def remove_cached_images(client: docker.DockerClient, project: str | None) -> int:
    """Remove the cached app and database images of ``project`` (None: of every project).

    Returns:
        How many tags were removed.
    """
    wanted = (
        [LABEL_IMAGE_KEY] if project is None else [LABEL_IMAGE_KEY, f"{LABEL_PROJECT}={project}"]
    )
    removed = 0
    for image in client.images.list(filters={"label": wanted}):
        if project is not None and (image.labels or {}).get(LABEL_PROJECT) != project:
            continue
        for tag in image.tags:
            ignore_gone(client.images.remove, tag)
            removed += 1
    return removed


def remove_run(client: docker.DockerClient, run_id: str) -> SweepReport:
    """Remove everything labelled with one run id (the interrupt path's backstop)."""
    label = f"{LABEL_RUN}={run_id}"
    containers = client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
    for container in containers:
        ignore_gone(container.remove, force=True, v=True)
    networks = client.networks.list(filters={"label": label})
    for network in networks:
        disconnect_all(network)
        ignore_gone(network.remove)
    return SweepReport(containers=len(containers), networks=len(networks))


def disconnect_all(network: Any) -> None:
    """Disconnect every container from ``network`` (one still attached keeps it alive)."""
    try:
        network.reload()
    except docker.errors.NotFound:
        return
    for container_id in network.attrs.get("Containers") or {}:
        ignore_gone(network.disconnect, container_id, force=True)


def ignore_gone(action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run a removal, tolerating objects that are already gone or already being removed."""
    try:
        action(*args, **kwargs)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        # 409 "removal already in progress" is another remover winning the race: fine.
        if exc.status_code != 409:
            raise


def remove_all(actions: Iterable[Callable[[], None]]) -> list[BaseException]:
    """Run every teardown action even when some fail; return what failed."""
    errors: list[BaseException] = []
    for action in actions:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - teardown must go on and report at the end
            errors.append(exc)
    return errors


# ---------------------------------------------------------------- databases on a user's server

#: Every database nocrud makes on a server it does not own starts with this.
DATABASE_PREFIX = "nocrud_"


def database_name(run_id: str, suffix: str) -> str:
    """A database of one run on a user's server: ``nocrud_<run id>_<suffix>``."""
    return f"{DATABASE_PREFIX}{run_id}_{suffix}"


def database_comment(run_id: str, *, keep: bool = False) -> str:
    """What a run's database says about itself (its ``COMMENT``), for :func:`sweep_databases`."""
    return f"nocrud run={run_id} owner={owner()}" + (" keep=true" if keep else "")


def sweep_databases(
    admin: Any,
    *,
    kept: bool = False,
    live: bool = False,
    client: docker.DockerClient | None = None,
) -> list[str]:
    """Drop the databases on a user's server whose run is over; return their names.

    The same rules as :func:`sweep`, read from each database's comment (written with
    :func:`database_comment`): the owner process is gone (or ``live``), and it was
    not kept with ``--keep-failed`` (unless ``kept``). Databases of other hosts'
    runs are left to them, or to ``nocrud clean --all``.

    Args:
        admin: A :class:`~nocrud.docker.postgres.DatabaseAddress` of a role that owns them.
        client: The Docker daemon that judges owners which are containers (a CI job's);
            without it their databases are spared.
    """
    from psycopg2 import sql

    conn = admin.connect(timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') "
                "FROM pg_database WHERE datname LIKE %s",
                (DATABASE_PREFIX.replace("_", r"\_") + "%",),
            )
            found = [(str(name), _comment_fields(str(comment))) for name, comment in cur.fetchall()]
            # A database made just before its run was killed may not have its comment yet:
            # it belongs to the run named in its name, whose other databases say who owns it.
            runs = {_run_of(name): fields for name, fields in found if "owner" in fields}
            dropped = []
            for name, own in found:
                fields = own if "owner" in own else runs.get(_run_of(name), {})
                if "owner" not in fields or (own.get("keep") == "true" and not kept):
                    continue
                if live or owner_is_gone(fields["owner"], client):
                    cur.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
                    dropped.append(name)
            return dropped
    finally:
        conn.close()


def _comment_fields(comment: str) -> dict[str, str]:
    """``key=value`` words of a database comment written by :func:`database_comment`."""
    return dict(part.split("=", 1) for part in comment.split() if "=" in part)


def _run_of(name: str) -> str:
    """The run id in a database name made by :func:`database_name`."""
    return name.removeprefix(DATABASE_PREFIX).split("_", 1)[0]
