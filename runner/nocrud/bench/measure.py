"""Running one flow set under one strategy, in a process of its own, and what it cost.

:func:`measure` starts ``python -m nocrud.bench.child`` for one strategy (so the
runner's peak RSS is that strategy's alone, read with ``os.wait4``), then asks the
Docker daemon for the events of that run's objects (containers, networks, volumes)
that stand for a create, a start or a removal, which is how "Docker operations per
flow" is counted the same way for nocrud's strategies and for docker-compose. The child
(:func:`run_child`) runs the workflow's own steps with the chosen provisioner and
writes the run's results and its wall time as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nocrud.docker import cleanup
from nocrud.results import RunResult

__all__ = ["Figures", "measure", "percentile", "run_child"]

#: Event types that are Docker operations on a run's objects.
EVENT_TYPES = ("container", "network", "volume")
#: The events that stand for a call that makes the daemon create, start or remove
#: something: a restart counts as its start; a container's die, kill, stop and health
#: check execs, and a network's connect (the daemon's own side of a start), do not.
COUNTED_ACTIONS = frozenset({"create", "start", "destroy"})


@dataclass(frozen=True)
class Figures:
    """What one strategy cost for the flow set.

    Attributes:
        strategy: Its name (``compose`` for the compose-per-flow baseline).
        flows: Flows run.
        passed: Flows that passed.
        wall: Seconds from preparing the strategy to closing it (images already built).
        prepare: Seconds of that spent preparing (the template server, the external template).
        provision_p50: Median per-flow provisioning time, seconds.
        provision_p95: 95th percentile of it.
        teardown_p50: Median per-flow teardown time, seconds.
        flows_per_minute: ``flows / wall * 60``.
        peak_rss_mib: The runner process's peak resident memory (with the tools it waited for).
        docker_ops_per_flow: Creates, starts and removals of the run's objects, per flow.
        left_behind: The run's containers, networks and volumes still there after it ended
            (anything but 0 is a leak).
    """

    strategy: str
    flows: int
    passed: int
    wall: float
    prepare: float
    provision_p50: float
    provision_p95: float
    teardown_p50: float
    flows_per_minute: float
    peak_rss_mib: float
    docker_ops_per_flow: float
    left_behind: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile of ``values`` by linear interpolation (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def measure(
    client: Any,
    *,
    config_path: Path,
    strategy: str,
    flows: list[str],
    parallel: int,
    workdir: Path,
    run_id: str,
    env: dict[str, str] | None = None,
    timeout: float = 3600,
) -> Figures:
    """Run ``flows`` under ``strategy`` in a child process and return its :class:`Figures`.

    Args:
        client: The Docker client whose daemon's events are counted.
        config_path: The project's nocrud.yaml.
        strategy: A ``run.strategy`` name, ``compose`` or ``shared`` for the baselines.
        flows: Names of the flows to run.
        parallel: Flows at once.
        workdir: Where the child writes its results.
        run_id: The run id the child uses (its objects' ``nocrud.run`` label).
        env: The child's environment (``os.environ`` when None).
        timeout: Seconds before the child is killed.

    Raises:
        RuntimeError: The child failed; the message has its last output lines.
    """
    out = workdir / f"{strategy}.json"
    log = workdir / f"{strategy}.log"
    request = {
        "config": str(config_path),
        "strategy": strategy,
        "flows": flows,
        "parallel": parallel,
        "run_id": run_id,
        "out": str(out),
    }
    counter = OperationCounter(client, run_id)
    try:
        with log.open("w") as handle:
            child = subprocess.Popen(
                [sys.executable, "-m", "nocrud.bench.child", json.dumps(request)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
            )
            deadline = time.monotonic() + timeout
            while True:
                pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    child.kill()
                    pid, status, usage = os.wait4(child.pid, 0)
                    break
                time.sleep(0.2)
        child.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    finally:
        ops = counter.stop()
    if not out.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(
            f"the {strategy} run failed (exit {child.returncode}); its last lines:\n{tail}"
        )
    data = json.loads(out.read_text())
    result = RunResult.from_dict(data["result"])
    provision = [f.timings.provision for f in result.flows]
    teardown = [f.timings.teardown for f in result.flows]
    count = len(result.flows)
    wall = float(data["wall"])
    return Figures(
        strategy=strategy,
        flows=count,
        passed=sum(1 for f in result.flows if f.status.ok),
        wall=round(wall, 3),
        prepare=round(float(data["prepare"]), 3),
        provision_p50=round(percentile(provision, 50), 3),
        provision_p95=round(percentile(provision, 95), 3),
        teardown_p50=round(percentile(teardown, 50), 3),
        flows_per_minute=round(count / wall * 60, 2) if wall > 0 else 0.0,
        peak_rss_mib=round(usage.ru_maxrss / 1024, 1),
        docker_ops_per_flow=round(ops / count, 1) if count else 0.0,
        left_behind=count_left_behind(client, run_id),
    )


def count_left_behind(client: Any, run_id: str) -> int:
    """The run's containers, networks and volumes that still exist.

    By the ``nocrud.run`` label, or by a name starting with ``nocrud-<run id>`` (compose
    names its networks and volumes after the project).
    """
    prefix = f"nocrud-{run_id}"
    label = {"label": f"{cleanup.LABEL_RUN}={run_id}"}
    containers = {c["Id"] for c in client.api.containers(all=True, filters=label)}
    containers |= {
        c["Id"]
        for c in client.api.containers(all=True, filters={"name": prefix})
        if any(name.lstrip("/").startswith(prefix) for name in c.get("Names") or ())
    }
    networks = {n["Id"] for n in client.api.networks(filters=label)}
    networks |= {n["Id"] for n in client.api.networks() if n["Name"].startswith(prefix)}
    volumes = (client.api.volumes() or {}).get("Volumes") or []
    left = {v["Name"] for v in volumes if v["Name"].startswith(prefix)}
    left |= {v["Name"] for v in volumes if (v.get("Labels") or {}).get(cleanup.LABEL_RUN) == run_id}
    return len(containers) + len(networks) + len(left)


class OperationCounter:
    """Counts the creates, starts and removals of run ``run_id``'s objects, live.

    It follows the daemon's event stream from before the run starts until :meth:`stop`:
    asking afterwards for the events of a time window does not do, since the daemon
    keeps only its last 256 events. Containers are recognised by their ``nocrud.run``
    label, which the daemon copies into each event; networks and volumes by their name,
    which starts with ``nocrud-<run id>`` for nocrud's strategies and the compose
    projects alike.
    """

    def __init__(self, client: Any, run_id: str) -> None:
        self.count = 0
        self._run_id = run_id
        self._prefix = f"nocrud-{run_id}"
        self._stream = client.events(decode=True, filters={"type": list(EVENT_TYPES)})
        self._thread = threading.Thread(target=self._follow, name="nocrud-bench-events")
        self._thread.daemon = True
        self._thread.start()

    def _follow(self) -> None:
        with contextlib.suppress(Exception):  # the stream closed under it: stop() was called
            for event in self._stream:
                self.count += self._counted(event)

    def _counted(self, event: dict[str, Any]) -> bool:
        if event.get("Action") not in COUNTED_ACTIONS:
            return False
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        if event.get("Type") == "container":
            return attributes.get(cleanup.LABEL_RUN) == self._run_id
        return str(attributes.get("name", "")).startswith(self._prefix)

    def stop(self, settle: float = 1.0) -> int:
        """Stop following (after ``settle`` seconds for the last events) and return the count."""
        time.sleep(settle)
        self._stream.close()
        self._thread.join(5)
        return self.count


def _overrides(strategy: str, parallel: int) -> dict[str, Any]:
    """The configuration a bench child runs ``strategy`` with."""
    from nocrud.bench.shared import SHARED

    overrides: dict[str, Any] = {"run.parallel": parallel}
    if strategy == "kept":
        # The pool's second run, as a developer's loop runs it: its pairs kept by the first,
        # and as many more kept warm, so a flow's handoff is a queue pop.
        overrides.update(
            {
                "run.strategy": "pool",
                "run.keep_pool": KEPT_IDLE,
                "run.warm": parallel,
                "run.keep_pool_max": 2 * parallel,
            }
        )
    elif strategy != "compose":
        # The shared baseline's one environment comes from the image strategy.
        overrides["run.strategy"] = "image" if strategy == SHARED else strategy
    return overrides


def _stop_kept_pool(config: Any) -> None:
    """Remove the pairs the ``kept`` measurement kept (nothing may be left behind)."""
    from nocrud.docker.engine import connect
    from nocrud.environment.kept import stop_pools

    client = connect()
    try:
        stop_pools(client, config.root)
    finally:
        client.close()


def _wait_settled(config: Any) -> None:
    """Let the first run's settler reset the pairs it left dirty, as a developer's next run
    finds them."""
    from nocrud.environment.settle import wait_settled

    wait_settled(config.root, KEPT_SETTLE_TIMEOUT)


#: How long the ``kept`` measurement waits for its first run's pairs to be settled.
KEPT_SETTLE_TIMEOUT = 60.0
#: The ``kept`` measurement's idle time: long enough to outlast its own first run.
KEPT_IDLE = "5m"


def run_child(request: dict[str, Any]) -> None:
    """The child's side: run the flows under one strategy with the workflow's own steps."""
    from rich.console import Console

    from nocrud import prepare, workflow
    from nocrud.bench.compose import ComposeProvisioner
    from nocrud.bench.shared import SHARED, SharedProvisioner
    from nocrud.config import load_config
    from nocrud.environment import Provisioner, provisioner_for
    from nocrud.flows import discover

    strategy = request["strategy"]
    config = load_config(
        Path(request["config"]), overrides=_overrides(strategy, request["parallel"])
    )
    wanted = list(request["flows"])
    by_name = {f.name: f for f in discover(config.flows.path)}
    flows = [by_name[name] for name in wanted]
    provisioner: Provisioner
    if strategy == "compose":
        provisioner = ComposeProvisioner()
    elif strategy == SHARED:
        provisioner = SharedProvisioner()
    else:
        provisioner = provisioner_for(config)
    console = Console(file=sys.stdout, soft_wrap=True, no_color=True, highlight=False)
    run_id = request["run_id"]
    try:
        if strategy == "kept":  # an unmeasured first run leaves its pairs for this one
            primer = provisioner_for(config)
            with prepare.environments(
                config, console, provisioner=primer, run_id=run_id, say=console.print
            ):
                workflow.run_flows(
                    config, primer, flows, workflow.UpOptions(), console, run_id=run_id
                )
            _wait_settled(config)
        with prepare.environments(
            config, console, provisioner=provisioner, run_id=run_id, say=console.print
        ) as prepared:
            result = workflow.run_flows(
                config, provisioner, flows, workflow.UpOptions(), console, run_id=run_id
            )
    finally:
        if strategy == "kept":
            _stop_kept_pool(config)
    # From preparing the strategy to closing it: the images are built before the clock starts.
    wall = prepared.closed_at - prepared.prepare_started
    preparing = prepared.prepared_at - prepared.prepare_started
    Path(request["out"]).write_text(
        json.dumps({"result": result.to_dict(), "wall": wall, "prepare": preparing})
    )
