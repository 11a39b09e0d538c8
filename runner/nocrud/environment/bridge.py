"""Where a pair's containers sit on the network: one shared bridge, or a network of its own.

A network per flow costs two daemon operations (about 0.34 s on the development
machine) and serialises with everything else the daemon does. When this process
reaches containers through published ports (``local`` and ``docker-host`` modes), a
pair needs no network of its own: its database container sits on one bridge shared
by the whole run, created with inter-container communication off
(``com.docker.network.bridge.enable_icc=false``, so no container on it can open a
connection to another), and its app joins the database container's network
namespace. Both ports are published on the database container.

In ``container-network`` mode (this process in a container beside the daemon) that
bridge would cut this process off too, since it reaches containers on their network
addresses; there every pair gets its own network, which this process joins, as before.
So does every pair of a ``--keep-failed`` run: a kept pair must keep its network (and
with it its published ports) after the run has removed everything else. And so does
every pair on Podman: its compat API accepts the ICC option and drops it (netavark has
no such switch), so a shared bridge there would let one flow's app reach another's
database (:func:`share_bridge` says when to share one).

:class:`SharedBridge` is leased by pairs and removed when the last lease ends (and
by :meth:`SharedBridge.close`), so no labelled network outlives the pairs that used it.
"""

from __future__ import annotations

import threading

from nocrud.docker.podman import is_podman
from nocrud.docker.resources import DaemonGate, Network
from nocrud.environment import Run

__all__ = ["ICC_OFF", "SharedBridge", "share_bridge"]

#: Docker's bridge option that drops traffic between containers on the same bridge.
ICC_OFF = {"com.docker.network.bridge.enable_icc": "false"}


def share_bridge(run: Run) -> bool:
    """Whether this run's pairs share one bridge (else each gets a network of its own)."""
    if not run.engine.connection.uses_published_ports or run.keep_failed:
        return False
    return not is_podman(run.engine.client)


class SharedBridge:
    """The run's one bridge for pairs, created on the first lease, removed after the last.

    Args:
        run: The run (its client, connection, labels).
        labels: Labels of the network (run, owner, project; the reaper's session label).
        gate: The run's bound on concurrent daemon operations.
    """

    def __init__(self, run: Run, labels: dict[str, str], gate: DaemonGate) -> None:
        self._network = Network(
            run.engine.client,
            f"nocrud-{run.run_id}-bridge",
            labels=labels,
            connection=run.engine.connection,
            options=ICC_OFF,
            gate=gate,
        )
        self._lock = threading.Lock()
        self._leases = 0

    @property
    def name(self) -> str:
        return self._network.name

    def lease(self) -> str:
        """Count one more user, creating the bridge if there is none; returns its name."""
        with self._lock:
            if self._network.obj is None:
                self._network.create()
            self._leases += 1
        return self._network.name

    def release(self) -> None:
        """One user fewer; the last one removes the bridge (its containers are gone)."""
        with self._lock:
            self._leases = max(0, self._leases - 1)
            if self._leases == 0:
                self._network.remove()

    def close(self) -> None:
        """Remove the bridge whatever its lease count (end of run, interrupt). Idempotent."""
        with self._lock:
            self._leases = 0
            self._network.remove()
