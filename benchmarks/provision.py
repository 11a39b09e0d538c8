"""Benchmark: per-flow provisioning against the floor, and parallel against serial.

Measured side by side in one run, on the bundled example's images:

* **floor**: what any tool must pay per flow: network create, two plain
  ``docker run`` (the pre-migrated database image and the app image) and
  readiness (a PostgreSQL connection, then HTTP 200 on the health path),
  polled as tightly as nocrud polls; teardown not counted;
* **nocrud**: N trivial flows through the real pipeline at ``-j 1`` and at
  ``-j J``; per-flow provision time (p50, p95) and wall time.

Prints the figures and the ratios the targets are stated in:
provision p50 / floor p50 (target <= 1.5) and wall(-j J) / wall(-j 1)
(target < 1). Usage::

    v/bin/python benchmarks/provision.py --flows 32 --parallel 8 --floor-samples 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker
import psycopg2
import requests
import yaml
from rich.console import Console

from nocrud.config import load_config
from nocrud.docker import cleanup
from nocrud.docker.postgres import ALIAS as DB_ALIAS
from nocrud.docker.postgres import PORT as DB_PORT
from nocrud.environment import Run, provisioner_for
from nocrud.images import build_images
from nocrud.prepare import prepare_docker
from nocrud.results import Status
from nocrud.workflow import UpOptions, run_flows

REPO = Path(__file__).resolve().parent.parent
TRIVIAL_FLOW = """
from nocrud.flows import flow

for _i in range({n}):
    def _make(i):
        @flow(name=f"trivial_{{i:03d}}")
        def trivial(ctx):
            assert ctx.api.get("/health").status == 200
        globals()[f"trivial_{{i:03d}}"] = trivial
    _make(_i)
"""
POLL = 0.015


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def floor_once(client: docker.DockerClient, config: object, app: str, db: str, tag: str) -> float:
    """Network + two plain runs + readiness, as tight as it gets; seconds, teardown excluded."""
    cfg = config  # typed loosely: the benchmark only reads a few fields
    labels = {"nocrud.benchmark": tag}
    started = time.perf_counter()
    network = client.networks.create(f"nocrud-bench-{tag}", labels=labels)
    containers = []
    try:
        alias = {network.name: client.api.create_endpoint_config(aliases=[DB_ALIAS])}
        dbc = client.containers.run(
            db,
            detach=True,
            network=network.name,
            labels=labels,
            networking_config=alias,
            ports={f"{DB_PORT}/tcp": ("127.0.0.1",)},
        )
        containers.append(dbc)
        env = cfg.render_app_env(DB_ALIAS, DB_PORT)  # type: ignore[attr-defined]
        appc = client.containers.run(
            app,
            detach=True,
            network=network.name,
            labels=labels,
            environment=env,
            ports={"8000/tcp": ("127.0.0.1",)},
        )
        containers.append(appc)
        dbc.reload()
        appc.reload()
        db_port = int(dbc.ports[f"{DB_PORT}/tcp"][0]["HostPort"])
        app_port = int(appc.ports["8000/tcp"][0]["HostPort"])
        d = cfg.database  # type: ignore[attr-defined]
        while True:
            try:
                psycopg2.connect(
                    host="127.0.0.1",
                    port=db_port,
                    dbname=d.name,
                    user=d.user,
                    password=d.password.get_secret_value(),
                    connect_timeout=2,
                ).close()
                break
            except psycopg2.OperationalError:
                time.sleep(POLL)
        with requests.Session() as session:
            while True:
                try:
                    if (
                        session.get(f"http://127.0.0.1:{app_port}/health", timeout=2).status_code
                        == 200
                    ):
                        break
                except requests.RequestException:
                    pass
                time.sleep(POLL)
        return time.perf_counter() - started
    finally:
        for container in containers:
            container.remove(force=True)
        network.remove()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=32)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--floor-samples", type=int, default=8)
    args = parser.parse_args()
    console = Console(stderr=True, highlight=False)

    with tempfile.TemporaryDirectory(prefix="nocrud-bench-") as tmp:
        root = Path(tmp)
        package = root / "benchflows"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "trivial.py").write_text(TRIVIAL_FLOW.format(n=args.flows))
        data = yaml.safe_load((REPO / "nocrud.yaml").read_text())
        data["app"]["build"] = str(REPO / "example_app")
        data["database"]["migrations"] = [str(REPO / "example_app" / "migrations")]
        data["flows"]["path"] = str(package)
        (root / "nocrud.yaml").write_text(yaml.safe_dump(data))
        config = load_config(root / "nocrud.yaml")

        engine = prepare_docker(config, console)
        client = engine.client
        images = build_images(
            client,
            config,
            say=lambda _l: None,
            run_id=cleanup.new_run_id(),
            connection=engine.connection,
        )
        from nocrud.flows import discover

        flows = discover(package)
        floors = []
        floor_once(client, config, images.app, images.db, "warm")  # first run pays cold caches
        for i in range(args.floor_samples):
            floors.append(floor_once(client, config, images.app, images.db, str(i)))

        walls: dict[int, float] = {}
        provisions: dict[int, list[float]] = {}
        quiet = Console(file=open("/dev/null", "w"), highlight=False)  # noqa: SIM115, PTH123
        try:
            for jobs in (1, args.parallel):
                cfg = config.model_copy(
                    update={"run": config.run.model_copy(update={"parallel": jobs})}
                )
                run_id = cleanup.new_run_id()
                provisioner = provisioner_for(cfg)
                provisioner.prepare(
                    Run(config=cfg, run_id=run_id, engine=engine, images=images, say=quiet.print)
                )
                try:
                    result = run_flows(cfg, provisioner, flows, UpOptions(), quiet, run_id=run_id)
                finally:
                    provisioner.close()
                bad = [f.name for f in result.flows if f.status is not Status.PASSED]
                if bad:
                    console.print(f"flows did not pass at -j {jobs}: {bad}")
                    return 1
                walls[jobs] = result.wall_time
                provisions[jobs] = [f.timings.provision for f in result.flows]
        finally:
            quiet.file.close()
            client.close()

    floor_p50 = statistics.median(floors)
    print(f"nocrud provisioning benchmark: {args.flows} trivial flows, example_app images")
    print(
        f"floor (network + 2x docker run + readiness), {len(floors)} samples: "
        f"p50 {floor_p50:.3f}s  p95 {percentile(floors, 0.95):.3f}s"
    )
    for jobs in sorted(walls):
        p50 = statistics.median(provisions[jobs])
        p95 = percentile(provisions[jobs], 0.95)
        print(
            f"-j {jobs:<2} provision p50 {p50:.3f}s  p95 {p95:.3f}s  "
            f"wall {walls[jobs]:.1f}s  ({args.flows / walls[jobs]:.2f} flows/s)  "
            f"p50/floor {p50 / floor_p50:.2f}x"
        )
    serial_ratio = statistics.median(provisions[1]) / floor_p50
    parallel_ratio = walls[args.parallel] / walls[1]
    print(f"ratio provision p50 (-j 1) / floor p50: {serial_ratio:.2f} (target <= 1.5)")
    print(f"ratio wall -j {args.parallel} / wall -j 1: {parallel_ratio:.2f} (target < 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
