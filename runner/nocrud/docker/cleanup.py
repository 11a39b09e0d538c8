"""Labels on every Docker object nocrud makes, and removing what a run left behind.

Every container and network carries ``nocrud.run`` (the run id),
``nocrud.flow`` (the flow, where there is one) and ``nocrud.owner``
(``<host>:<pid>:<process start tick>``), so cleanup never depends on the
happy path: a run that was killed is recognised by its owner process being
gone, and :func:`sweep` (run at the start of every ``nocrud up``/``build``)
and ``nocrud clean`` remove what it left.
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


@cache
def owner() -> str:
    """This process as an owner label value: ``host:pid:start``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start_tick(pid)}"


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


def owner_is_gone(owner_label: str) -> bool:
    """True when the label names a process on this host that no longer runs.

    Objects owned by another host (another CI job on a shared daemon) are never
    judged gone here: only their own process, or ``nocrud clean``, removes them.
    """
    host, _, rest = owner_label.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
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


def sweep(client: docker.DockerClient, *, kept: bool = False, live: bool = False) -> SweepReport:
    """Remove labelled containers and networks whose run is over.

    By default (the sweep at the start of every run) only objects whose owner process
    is gone, and not kept on purpose with ``--keep-failed``.

    Args:
        client: Docker client.
        kept: Also remove environments kept with ``--keep-failed`` (``nocrud clean``).
        live: Also remove objects of runs still going and of other hosts
            (``nocrud clean --all``).
    """

    def doomed(labels: dict[str, str]) -> bool:
        if labels.get(LABEL_KEEP) == "true" and not kept:
            return False
        return live or owner_is_gone(labels.get(LABEL_OWNER, ""))

    containers = networks = spared = 0
    for container in client.containers.list(
        all=True, filters={"label": LABEL_RUN}, ignore_removed=True
    ):
        if doomed(container.labels):
            ignore_gone(container.remove, force=True, v=True)
            containers += 1
        else:
            spared += 1
    for network in client.networks.list(filters={"label": LABEL_RUN}):
        if doomed(network.attrs.get("Labels") or {}):
            disconnect_all(network)
            ignore_gone(network.remove)
            networks += 1
        else:
            spared += 1
    return SweepReport(containers=containers, networks=networks, spared=spared)


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
