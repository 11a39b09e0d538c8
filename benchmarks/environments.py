"""Benchmark: the provisioning paths side by side, in one run, on the same images and flows.

Runs the same flows (the bundled 38 by default, or ``--trivial N`` one-request flows)
through the real pipeline once per path:

* ``image-classic``: today's ``image`` path as it was (a network, a PostgreSQL container
  and an app container per flow, teardown on the worker);
* ``image``: the improved fresh pair (app in the database container's network namespace,
  one shared bridge with inter-container traffic off, a bound on concurrent daemon
  operations, teardown in the background);
* ``pool``: the recycled pool, its app container restarted between flows; ``pool, HUP``
  with ``run.pool_app_reload: HUP`` instead (gunicorn ``--preload`` forks new workers);
  and ``pool --warm N, HUP`` with ``--warm`` pairs ahead of demand (``--skip-reload``
  leaves out both HUP runs, ``--warm 0`` the last);
* with ``--gates 0,1,2,4``, also the improved ``image`` path at each bound on
  concurrent daemon operations (0: none), which is how that bound was chosen;
* with ``--rounds N``, ``image-classic`` and ``image`` N-1 more times, alternating which
  goes first: two paths measured once each differ by what else the machine did
  meanwhile as much as by their own cost. The old/new ratio is printed round by round
  with its median, and the pools are compared with the median of the old path's walls;
* ``pool, flows waiting``: the HUP pool again on ``--steady`` one-request flows that each
  wait ``--think`` seconds, as API tests waiting on something do. The bundled flows
  spend less CPU than a reset does (about 0.1 CPU s), so on two cores every pool is
  reset-bound and a flow's handoff is the wait for a reset; flows that leave the CPU
  to the resets show what ``--warm`` gives when it can work ahead of demand: a handoff
  that is a queue pop. ``--steady 0`` leaves this out.

For each: wall time (provisioner prepared to provisioner closed, so deferred teardown
counts), handoff p50/p95 (a worker asking for an environment to the flow starting),
Docker operations per flow (the client's requests that create, start, restart,
stop or remove a container or network, or connect one to the other, counted at the
seam; every request, inspections included, in brackets) and daemon CPU seconds per
flow (utime+stime of ``dockerd`` from /proc, when the daemon runs on this machine), with
how many of this host's cores were busy meanwhile (CPU-bound on two cores: about 1.9).
Then the ratios the targets are stated in. Usage::

    v/bin/python benchmarks/environments.py --parallel 4 --warm 2
    v/bin/python benchmarks/environments.py --trivial 4 --parallel 2 --warm 1 --steady 4  # quick
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from rich.console import Console

from nocrud.config import Config, load_config
from nocrud.docker import cleanup
from nocrud.docker.engine import Engine
from nocrud.environment import Provisioner, Run
from nocrud.environment.image import ClassicImageProvisioner, ImageProvisioner
from nocrud.environment.pool_provisioner import PoolProvisioner
from nocrud.flows import Flow, discover
from nocrud.images import BuiltImages, build_images
from nocrud.prepare import prepare_docker
from nocrud.results import Status
from nocrud.workflow import UpOptions, run_flows

REPO = Path(__file__).resolve().parent.parent
TRIVIAL_FLOW = """
import time

from nocrud.flows import flow

for _i in range({n}):
    def _make(i):
        @flow(name=f"trivial_{{i:03d}}")
        def trivial(ctx):
            assert ctx.api.get("/health").status == 200
            time.sleep({think})
        globals()[f"trivial_{{i:03d}}"] = trivial
    _make(_i)
"""


@dataclass(frozen=True)
class Figures:
    """One path's measurements."""

    label: str
    flows: int
    wall: float
    handoff_p50: float
    handoff_p95: float
    api_calls: int
    operations: int
    daemon_cpu: float | None
    #: This host's busy CPU over the wall time, in cores (None when the daemon is remote).
    host_cores: float | None = None
    failed: int = 0

    def line(self) -> str:
        cpu = (
            f"{self.daemon_cpu / self.flows:.3f}s"
            if self.daemon_cpu is not None
            else "n/a (remote daemon)"
        )
        return (
            f"{self.label:<24}  wall {self.wall:6.1f}s"
            f"  handoff p50 {self.handoff_p50 * 1000:7.0f}ms"
            f"  p95 {self.handoff_p95 * 1000:7.0f}ms  docker ops/flow "
            f"{self.operations / self.flows:4.1f} (calls {self.api_calls / self.flows:5.1f})"
            + (f"  host busy {self.host_cores:.2f} cores" if self.host_cores is not None else "")
            + f"  daemon cpu/flow {cpu}"
            + (f"  ({self.failed} of {self.flows} flows did not pass)" if self.failed else "")
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


#: The requests that make the daemon create, start, restart, stop or remove a container
#: or network (or connect one to the other): the work it serialises. Inspections, logs
#: and waits are the rest of ``calls``.
OPERATION = re.compile(
    r"^(POST (/v[\d.]+)?/(containers|networks)/create"
    r"|POST (/v[\d.]+)?/containers/[^/]+/(start|restart|stop|kill)"
    r"|POST (/v[\d.]+)?/networks/[^/]+/(connect|disconnect)"
    r"|DELETE (/v[\d.]+)?/(containers|networks)/[^/]+)$"
)


class CallCounter:
    """Counts the docker client's HTTP requests, and the operations among them.

    Wraps the API client's ``request`` (the single Docker seam every call goes through).
    """

    def __init__(self, api: Any) -> None:
        self.calls = 0
        self.operations = 0
        self._lock = threading.Lock()
        inner: Callable[..., Any] = api.request

        def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            operation = bool(OPERATION.match(f"{method.upper()} {urlsplit(url).path}"))
            with self._lock:
                self.calls += 1
                self.operations += operation
            return inner(method, url, *args, **kwargs)

        api.request = counted


def dockerd_ticks(pid: int | None = None) -> int | None:
    """utime+stime of the daemon in clock ticks, or None when it is not on this host.

    The daemon is process ``pid``, or else the first ``dockerd`` found (under DinD on
    this host there are two: give the nested one's).
    """
    entries = [Path(f"/proc/{pid}")] if pid else Path("/proc").iterdir()
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "dockerd":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        return int(fields[11]) + int(fields[12])
    return None


def host_cpu() -> float:
    """CPU seconds this host has spent so far, idle and I/O wait left out (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def measure(
    label: str,
    make: Callable[[], Provisioner],
    config: Config,
    engine: Engine,
    images: BuiltImages,
    flows: list[Flow],
    counter: CallCounter,
    dockerd: int | None = None,
) -> Figures:
    quiet = Console(file=open(os.devnull, "w"), highlight=False)  # noqa: SIM115, PTH123
    run_id = cleanup.new_run_id()
    provisioner = make()
    calls_before, ticks_before = counter.calls, dockerd_ticks(dockerd)
    operations_before = counter.operations
    busy_before = host_cpu()
    started = time.perf_counter()
    try:
        provisioner.prepare(
            Run(config=config, run_id=run_id, engine=engine, images=images, say=quiet.print)
        )
        try:
            result = run_flows(config, provisioner, flows, UpOptions(), quiet, run_id=run_id)
        finally:
            provisioner.close()
    finally:
        quiet.file.close()
    wall = time.perf_counter() - started
    busy = host_cpu() - busy_before
    ticks_after = dockerd_ticks(dockerd)
    failed = sum(f.status is not Status.PASSED for f in result.flows)
    handoffs = [f.timings.provision for f in result.flows]
    cpu = None
    if ticks_before is not None and ticks_after is not None:
        cpu = (ticks_after - ticks_before) / os.sysconf("SC_CLK_TCK")
    return Figures(
        label=label,
        flows=len(flows),
        wall=wall,
        handoff_p50=statistics.median(handoffs),
        handoff_p95=percentile(handoffs, 0.95),
        api_calls=counter.calls - calls_before,
        operations=counter.operations - operations_before,
        daemon_cpu=cpu,
        # Only the daemon's host tells whether provisioning was CPU-bound.
        host_cores=busy / wall if cpu is not None else None,
        failed=failed,
    )


def quiet_build(engine: Engine, config: Config) -> BuiltImages:
    """The project's images, built (or found in the cache) without a word."""
    return build_images(
        engine.client,
        config,
        say=lambda _line: None,
        run_id=cleanup.new_run_id(),
        connection=engine.connection,
    )


def remove_images(engine: Engine, project: str) -> None:
    """Remove the images this benchmark built under its own project name."""
    client = engine.client
    for repo in (f"nocrud/{project}-app", f"nocrud/{project}-db"):
        for image in client.images.list(name=repo):
            for tag in image.tags:
                cleanup.ignore_gone(client.images.remove, tag, force=True)


def trivial_flows(root: Path, n: int, think: float = 0.0) -> Path:
    """A package of ``n`` flows that each make one request, then wait ``think`` seconds."""
    package = root / f"benchflows_{n}_{str(think).replace('.', '_')}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "trivial.py").write_text(TRIVIAL_FLOW.format(n=n, think=think))
    return package


def project_config(
    root: Path, project: str, trivial: int, parallel: int, warm: int
) -> tuple[Config, Path]:
    """The bundled example's config, pointed at the repo (or at ``trivial`` one-line flows)."""
    data = yaml.safe_load((REPO / "nocrud.yaml").read_text())
    data["project"] = project
    data["app"]["build"] = str(REPO / "example_app")
    data["database"]["migrations"] = [str(REPO / "example_app" / "migrations")]
    package = trivial_flows(root, trivial) if trivial else REPO / "flows"
    data["flows"]["path"] = str(package)
    data.setdefault("run", {}).update(parallel=parallel, warm=warm)
    # Generous: a busy shared machine must slow the figures down, not fail the flows.
    data["timeouts"] = {**data.get("timeouts", {}), "db_ready": 120, "app_ready": 120}
    (root / "nocrud.yaml").write_text(yaml.safe_dump(data))
    return load_config(root / "nocrud.yaml", env={}), package


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", "-j", type=int, default=4)
    parser.add_argument(
        "--warm", type=int, default=2, help="warm pairs of the pool --warm runs (0: none)"
    )
    parser.add_argument("--trivial", type=int, default=0, help="N trivial flows instead")
    parser.add_argument("--gates", default="", help="e.g. 0,1,2,4: image path at each bound")
    parser.add_argument(
        "--steady", type=int, default=96, help="flows of the waiting-flows pool run (0: none)"
    )
    parser.add_argument(
        "--think", type=float, default=0.5, help="seconds each of those flows waits"
    )
    parser.add_argument(
        "--dockerd-pid", type=int, default=None, help="the daemon's pid, when there are two"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure image-classic and image this many times, alternating (median ratio)",
    )
    parser.add_argument("--skip-classic", action="store_true")
    parser.add_argument(
        "--skip-reload", action="store_true", help="leave out pool with pool_app_reload: HUP"
    )
    parser.add_argument(
        "--project",
        default=f"bench{os.getpid()}",
        help="project name of the images built (and removed) here",
    )
    parser.add_argument(
        "--keep-images", action="store_true", help="leave the images built (tests reuse them)"
    )
    args = parser.parse_args(argv)
    console = Console(stderr=True, highlight=False)

    with tempfile.TemporaryDirectory(prefix="nocrud-bench-") as tmp:
        config, package = project_config(
            Path(tmp), args.project, args.trivial, args.parallel, args.warm
        )

        def variant(**run: Any) -> Config:
            return config.model_copy(update={"run": config.run.model_copy(update=run)})

        cold = variant(warm=0)
        engine = prepare_docker(config, console)
        counter = CallCounter(engine.client.api)
        steady: Figures | None = None
        try:
            images = quiet_build(engine, config)
            flows = discover(package)
            paths: list[tuple[str, Callable[[], Provisioner], Config]] = []
            if not args.skip_classic:
                paths.append(("image-classic", ClassicImageProvisioner, cold))
            paths.append(("image", ImageProvisioner, cold))
            paths.append(("pool", PoolProvisioner, variant(warm=0, pool_app_reload="restart")))
            if not args.skip_reload:
                # gunicorn --preload (both examples): a new worker per flow without a restart.
                hup = variant(warm=0, pool_app_reload="HUP")
                paths.append(("pool, HUP", PoolProvisioner, hup))
                if args.warm:
                    warm = variant(pool_app_reload="HUP")
                    paths.append((f"pool --warm {args.warm}, HUP", PoolProvisioner, warm))
            if not args.skip_classic:
                for number in range(2, args.rounds + 1):
                    pair = [
                        (f"image-classic, round {number}", ClassicImageProvisioner, cold),
                        (f"image, round {number}", ImageProvisioner, cold),
                    ]
                    paths.extend(pair if number % 2 else pair[::-1])
            for gate in [int(g) for g in args.gates.split(",") if g.strip()]:
                paths.append(
                    (
                        f"image, {gate or 'no'} bound",
                        lambda gate=gate: ImageProvisioner(daemon_operations=gate),
                        cold,
                    )
                )
            figures = [
                measure(label, make, cfg, engine, images, flows, counter, args.dockerd_pid)
                for label, make, cfg in paths
            ]
            if args.steady:
                waiting = discover(trivial_flows(Path(tmp), args.steady, args.think))
                label = f"pool --warm {args.warm}, HUP, {args.steady} flows waiting {args.think:g}s"
                hup = variant(pool_app_reload="HUP")
                steady = measure(
                    label, PoolProvisioner, hup, engine, images, waiting, counter, args.dockerd_pid
                )
        finally:
            if not args.keep_images:
                remove_images(engine, args.project)
            engine.close()

    print(
        f"nocrud environments benchmark: {len(flows)} flows at -j {args.parallel}, "
        f"{os.cpu_count()} cores, example_app images"
    )
    for figure in figures:
        print(figure.line())
    if steady is not None:
        print(steady.line())
    by_label = {f.label: f for f in figures}
    pools = [f for f in figures if f.label.startswith("pool")]
    for each in [*pools, *([steady] if steady is not None else [])]:
        print(f"{each.label} handoff p50: {each.handoff_p50 * 1000:.0f} ms (target <= 50 ms)")
    classics = [f for f in figures if f.label.startswith("image-classic")]
    if classics:
        # With --rounds, today's path is measured more than once: the pools are compared
        # with its median, the image path round by round.
        classic_wall = statistics.median(f.wall for f in classics)
        if len(classics) > 1:
            print(f"image-classic median wall over {len(classics)} rounds: {classic_wall:.1f}s")
        for each in pools:
            print(
                f"wall image-classic / {each.label}: {classic_wall / each.wall:.2f}x (target >= 4x)"
            )
        ratios = [
            old.wall / by_label[old.label.replace("image-classic", "image")].wall
            for old in classics
        ]
        rounds = (
            f"; median of {len(ratios)} rounds, each: {', '.join(f'{r:.2f}x' for r in ratios)}"
            if len(ratios) > 1
            else ""
        )
        print(
            f"wall image-classic / image: {statistics.median(ratios):.2f}x (target >= 1.5x{rounds})"
        )
    # A flow that did not pass makes the figures doubtful (a machine too busy to start
    # PostgreSQL in time, usually): they are printed, and the exit code says so.
    everything = [*figures, *([steady] if steady is not None else [])]
    return 1 if any(f.failed for f in everything) else 0


if __name__ == "__main__":
    sys.exit(main())
