"""Benchmark: what one environment costs in CPU, by process, one at a time.

The provisioning paths are CPU-bound on a 2-core machine, so their wall times at ``-j 4``
compare as their CPU per flow does. This measures, one environment at a time on a quiet
machine, the CPU every process on this host spends on it (``/proc``: the Docker daemon,
containerd, the shims, fuse-overlayfs, the containers' own processes and this runner),
for:

* ``image-classic``: today's ``image`` path as it was: a network, a PostgreSQL container
  and an app container (with the image's health check), started, then removed;
* ``image``: the improved fresh pair (the app in the database's network namespace, on the
  run's shared bridge), started, then removed;
* ``bare pair``: the same two containers in the same arrangement (bridge, published ports,
  shared namespace) running the same commands, started with one call each, left for as
  long as an ``image`` pair took to be ready, then removed: nothing of nocrud's (no
  readiness polls, no connection, no new passwords);
* ``pool start``: a pool pair started (PGDATA copied to a tmpfs, the template made);
* ``pool reset``: that pair reset with a container restart, and with a HUP.

Each sample holds its environment ``--hold`` seconds before removing it, as a flow would.
The bare pair is the *floor* of a fresh pair: PostgreSQL and the app boot in new
containers and nothing else happens, so no path that starts a new database container and
a new app container per flow costs less, and ``image-classic / bare pair`` is the most a
CPU-bound run can gain over today's path while it keeps that promise.
``containers`` is what the processes that started during the sample spent (the
containers' own, but for a reset the pair's old processes count under ``other``).
``total`` is the host's CPU over the sample (``/proc/stat``); ``other`` is what no process
named here kept: processes that exited before they were seen (the shims' ``runc`` calls, a
removed container's last moments), the kernel's work. Needs the
Docker daemon on this host. Usage::

    v/bin/python benchmarks/pair_cost.py --samples 8
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from nocrud.docker import cleanup
from nocrud.docker.postgres import PORT
from nocrud.docker.resources import Container, DaemonGate
from nocrud.environment import Run
from nocrud.environment.bridge import SharedBridge
from nocrud.environment.image import FreshPair
from nocrud.environment.pair import Pair
from nocrud.prepare import prepare_docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The benchmark beside this one:
from environments import host_cpu, project_config, quiet_build, remove_images

TICK = os.sysconf("SC_CLK_TCK")
#: Processes reported by name; the rest of the host's CPU is ``other``.
DAEMONS = ("dockerd", "containerd", "containerd-shim", "fuse-overlayfs", "docker-proxy")
Snapshot = dict[int, tuple[str, float]]


def processes() -> Snapshot:
    """Every process's name and CPU seconds so far."""
    found: Snapshot = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # A shim reaps its container's processes: their CPU would count twice. The daemons
        # keep their children's (iptables, runc, the proxies), the rest only their own.
        used = fields[11:15] if name in ("dockerd", "containerd") else fields[11:13]
        found[int(entry.name)] = (name, sum(int(f) for f in used) / TICK)
    return found


def spent(before: Snapshot, after: Snapshot) -> tuple[Counter[str], float]:
    """CPU seconds between two snapshots: per name of the daemons, and of processes that are new.

    A process seen before counts what it spent since (kernel workers rename themselves);
    a new one all it spent. This process is left out: it is the ``runner``. Processes
    that are neither daemons nor new (the kernel's, other work on the host) are left to
    ``other``.
    """
    daemons: Counter[str] = collections.Counter()
    new = 0.0
    for pid, (name, cpu) in after.items():
        if pid == os.getpid():
            continue
        earlier = before.get(pid)
        if name in DAEMONS:
            daemons[name] += cpu - (earlier[1] if earlier else 0.0)
        elif earlier is None:
            new += cpu
    return daemons, new


def timed(start: Callable[[], None], durations: list[float]) -> Callable[[], None]:
    """``start``, adding how long it took to ``durations``."""

    def run() -> None:
        began = time.perf_counter()
        start()
        durations.append(time.perf_counter() - began)

    return run


def sample(start: Callable[[], None], end: Callable[[], None], hold: float) -> dict[str, float]:
    """The CPU of one start-hold-end by process name, ``total`` and ``wall``."""
    me = os.getpid()
    before, total_before, wall_before = processes(), host_cpu(), time.perf_counter()
    start()
    time.sleep(hold)
    # The environment's own processes are seen while they run; the daemons after the end.
    running, containers = spent(before, processes())
    end()
    after = processes()
    finished, _new = spent(before, after)
    figures: dict[str, float] = {name: finished[name] for name in DAEMONS}
    # fuse-overlayfs exits with its container: what it had spent was seen while it ran.
    figures["fuse-overlayfs"] = max(finished["fuse-overlayfs"], running["fuse-overlayfs"])
    figures["containers"] = containers
    figures["runner"] = after[me][1] - before[me][1]
    figures["total"] = host_cpu() - total_before
    figures["other"] = figures["total"] - sum(v for k, v in figures.items() if k != "total")
    figures["wall"] = time.perf_counter() - wall_before
    return figures


class BarePair:
    """A fresh pair's two containers, booting on their own: the floor of any fresh-pair path."""

    def __init__(
        self,
        run: Run,
        name: str,
        labels: dict[str, str],
        gate: DaemonGate,
        bridge: SharedBridge,
        boot: float,
    ) -> None:
        link, client, app = run.engine.connection, run.engine.client, run.config.app
        self.boot = boot
        ports = {**link.ports(PORT), **link.ports(app.port)}
        self.db = Container(
            client, run.images.db, what="database", name=f"{name}-db", labels=labels,
            network=bridge.name, ports=ports, gate=gate,
        )  # fmt: skip
        # The app's environment is the one of its first pair: it only has to boot.
        env = run.config.render_app_env("127.0.0.1", PORT)
        command = list(app.command) if app.command is not None else None
        self.app = Container(
            client, run.images.app, what="app", name=f"{name}-app", labels=labels,
            environment=env, command=command, gate=gate,
        )  # fmt: skip

    def start(self) -> None:
        try:
            self.db.start()
            self.app.options["network_mode"] = f"container:{self.db.obj.id}"
            self.app.start()
        except BaseException:
            self.end()
            raise
        time.sleep(self.boot)

    def end(self) -> None:
        for container in (self.app, self.db):
            container.remove()


def average(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: sum(s[key] for s in samples) / len(samples) for key in samples[0]}


def line(label: str, figures: dict[str, float]) -> str:
    parts = "  ".join(
        f"{name} {figures[name]:.3f}"
        for name in (*DAEMONS, "containers", "runner", "other")
        if abs(figures[name]) >= 0.0005
    )
    return f"{label:<20} {figures['total']:6.3f} CPU s {figures['wall']:6.3f} s  ({parts})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--hold", type=float, default=0.3, help="seconds each pair is kept")
    parser.add_argument(
        "--project", default=f"paircost{os.getpid()}", help="project name of the images built"
    )
    parser.add_argument("--keep-images", action="store_true")
    args = parser.parse_args(argv)
    if not any(name == "dockerd" for name, _ in processes().values()):
        print("pair_cost needs the Docker daemon on this host (it reads its /proc)")
        return 2
    results: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="nocrud-paircost-") as tmp:
        config, _package = project_config(Path(tmp), args.project, 1, 1, 0)
        engine = prepare_docker(config, Console(stderr=True, highlight=False))
        try:
            images = quiet_build(engine, config)
            run_id = cleanup.new_run_id()
            run = Run(config=config, run_id=run_id, engine=engine, images=images, say=print)
            labels = cleanup.run_labels(run_id, config.project, role="bench")
            gate = DaemonGate(2)
            bridge = SharedBridge(run, labels, gate)
            bridge.lease()
            numbers = iter(range(1, 10_000))
            try:

                def fresh(*, resettable: bool = False) -> Pair:
                    name = cleanup.object_name(run_id, next(numbers), "bench")
                    return Pair(run, name, labels, gate=gate, bridge=bridge, resettable=resettable)

                classic = []
                for _ in range(args.samples):
                    pair = FreshPair(run, "bench", next(numbers))
                    classic.append(sample(pair.start, pair.teardown, args.hold))
                results.append(("image-classic", average(classic)))
                image, ready = [], []
                for _ in range(args.samples):
                    pair = fresh()
                    image.append(sample(timed(pair.start, ready), pair.teardown, args.hold))
                results.append(("image", average(image)))
                boot = sum(ready) / len(ready)
                bare = []
                for _ in range(args.samples):
                    name = cleanup.object_name(run_id, next(numbers), "bare")
                    bare_pair = BarePair(run, name, labels, gate, bridge, boot)
                    bare.append(sample(bare_pair.start, bare_pair.end, args.hold))
                results.append(("bare pair", average(bare)))
                pool = fresh(resettable=True)
                try:
                    results.append(("pool start", sample(pool.start, lambda: None, 0)))
                    for reload in ("restart", "HUP"):
                        settings = config.run.model_copy(update={"pool_app_reload": reload})
                        pool.run = replace(run, config=config.model_copy(update={"run": settings}))
                        resets = [sample(pool.reset, lambda: None, 0) for _ in range(args.samples)]
                        results.append((f"pool reset, {reload}", average(resets)))
                finally:
                    pool.teardown()
            finally:
                bridge.release()
                bridge.close()
        finally:
            if not args.keep_images:
                remove_images(engine, args.project)
            engine.close()
    print(f"nocrud pair cost: CPU per environment, one at a time, {args.samples} samples each")
    for label, figures in results:
        print(line(label, figures))
    by_label = dict(results)
    ratio = by_label["image-classic"]["total"] / by_label["image"]["total"]
    print(f"CPU image-classic / image: {ratio:.2f}x (the wall-time ratio a CPU-bound run allows)")
    floor = by_label["image-classic"]["total"] / by_label["bare pair"]["total"]
    print(
        f"CPU image-classic / bare pair: {floor:.2f}x (the most a path that starts a new database "
        "and app container per flow allows)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
