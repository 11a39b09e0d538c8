"""Benchmark: what each part of a flow's environment costs in CPU, one at a time.

On a 2-core machine running four flows at once, provisioning is CPU-bound, so the wall
times of the strategies compare as their CPU per flow does. This measures the parts,
each in its own container and alone, by the container's own CPU accounting (cgroup
``cpu_usage.total_usage`` from ``docker stats``), and how long each took:

* ``postgres``: a PostgreSQL container from the pre-migrated image, until it accepts
  a connection (what ``image`` pays per flow and ``template`` once per run);
* ``app``: an app container beside a running database, until its health path answers
  (what every strategy but ``pool`` pays per flow);
* ``migrate``: the migrate command against an empty database, to the end (what
  ``migrate`` pays per flow on top of the two above).

Then the CPU per flow of each strategy as the sum of its parts, and the wall-time
ratios that CPU allows at most. Usage::

    v/bin/python benchmarks/boot_cost.py -c examples/django/nocrud.yaml --samples 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import psycopg2
import requests

from nocrud.config import Config, load_config
from nocrud.docker import cleanup
from nocrud.docker.engine import detect_connection
from nocrud.docker.postgres import BUILT_IN_PASSWORD, PORT, SUPERUSER
from nocrud.images import BuiltImages, build_images

LABEL = "nocrud.bench"


def cpu_seconds(container: Any) -> float:
    """The container's CPU time so far (user + system of all its processes)."""
    stats = container.stats(stream=False, one_shot=True)
    return float(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9


def wait(ready: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError("not ready in time")
        time.sleep(0.02)


def port_of(container: Any, port: int) -> int:
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"])


def accepts(port: int, dbname: str = "postgres") -> Callable[[], bool]:
    def check() -> bool:
        try:
            psycopg2.connect(
                host="127.0.0.1",
                port=port,
                user=SUPERUSER,
                password=BUILT_IN_PASSWORD,
                dbname=dbname,
                connect_timeout=2,
            ).close()
        except psycopg2.OperationalError:
            return False
        return True

    return check


class Parts:
    """Starts the parts on a network of their own; removes everything it made."""

    def __init__(self, client: docker.DockerClient, config: Config, images: BuiltImages) -> None:
        self.client, self.config, self.images = client, config, images
        self.tag = uuid.uuid4().hex[:8]
        self.labels = {LABEL: self.tag}
        self.network = client.networks.create(f"nocrud-boot-{self.tag}", labels=self.labels)
        self.made: list[Any] = []

    def run(self, image: str, name: str, **options: Any) -> Any:
        """A container named ``<name>-<tag>``, reachable by that name on the network."""
        container = self.client.containers.run(
            image,
            name=f"{name}-{self.tag}",
            detach=True,
            labels=self.labels,
            network=self.network.name,
            healthcheck={"test": ["NONE"]},
            **options,
        )
        self.made.append(container)
        return container

    def postgres(self, image: str, name: str) -> tuple[str, int, float, float]:
        """A database container until it accepts connections: (host, port, seconds, CPU s)."""
        started = time.perf_counter()
        db = self.run(image, name, ports={f"{PORT}/tcp": ("127.0.0.1", None)})
        port = port_of(db, PORT)
        wait(accepts(port))
        return f"{name}-{self.tag}", port, time.perf_counter() - started, cpu_seconds(db)

    def app(self, host: str) -> tuple[float, float]:
        """An app container until its health path answers: (seconds, CPU s)."""
        config = self.config
        started = time.perf_counter()
        app = self.run(
            self.images.app,
            "app",
            environment=config.render_app_env(host, PORT),
            ports={f"{config.app.port}/tcp": ("127.0.0.1", None)},
            **({"command": list(config.app.command)} if config.app.command else {}),
        )
        url = f"http://127.0.0.1:{port_of(app, config.app.port)}{config.app.health_path}"

        def healthy() -> bool:
            try:
                return requests.get(url, timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait(healthy)
        return time.perf_counter() - started, cpu_seconds(app)

    def migrate(self, host: str) -> tuple[float, float]:
        """The migrate command to its end: (seconds, CPU s).

        It runs as an exec in an idle container of the app image, whose CPU accounting
        then holds it (an exited container's accounting is gone).
        """
        config = self.config
        assert config.database.migrate is not None
        idle = self.run(
            self.images.app,
            "migrate",
            environment=config.render_app_env(host, PORT),
            command=["sleep", "86400"],
        )
        before = cpu_seconds(idle)
        started = time.perf_counter()
        code, output = idle.exec_run(list(config.database.migrate))
        took = time.perf_counter() - started
        if code != 0:
            raise RuntimeError(output.decode(errors="replace")[-2000:])
        return took, cpu_seconds(idle) - before

    def close(self) -> None:
        for container in self.made:
            cleanup.ignore_gone(container.remove, force=True, v=True)
        self.network.remove()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", default="nocrud.yaml", help="the project's nocrud.yaml")
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args(argv)
    config = load_config(Path(args.config))
    client = docker.from_env()
    images = build_images(
        client,
        config,
        say=lambda _line: None,
        run_id=cleanup.new_run_id(),
        connection=detect_connection(client),
    )
    figures: dict[str, list[tuple[float, float]]] = {"postgres": [], "app": [], "migrate": []}
    for _ in range(args.samples):
        parts = Parts(client, config, images)
        try:
            host, _port, took, cpu = parts.postgres(images.db, "db")
            figures["postgres"].append((took, cpu))
            figures["app"].append(parts.app(host))
            if config.database.migrate is not None:
                empty, port, _took, _cpu = parts.postgres(config.database.image, "empty")
                _create_role_and_database(port, config)
                figures["migrate"].append(parts.migrate(empty))
        finally:
            parts.close()
    print(f"nocrud boot cost: {config.project} ({config.source}), {args.samples} samples each")
    cpu: dict[str, float] = {}
    for part, samples in figures.items():
        if not samples:
            continue
        took = statistics.median(t for t, _ in samples)
        cpu[part] = statistics.median(c for _, c in samples)
        print(f"{part:<9} {took:6.2f} s to ready   {cpu[part]:6.2f} CPU s")
    image = cpu["postgres"] + cpu["app"]
    print(f"CPU per flow: image {image:.2f} s, template {cpu['app']:.2f} s", end="")
    if "migrate" in cpu:
        migrate = image + cpu["migrate"]
        print(f", migrate {migrate:.2f} s")
        print(f"at most, when CPU-bound: migrate / image {migrate / image:.2f}x", end="")
    print(f", image / template {image / cpu['app']:.2f}x")
    return 0


def _create_role_and_database(port: int, config: Config) -> None:
    """What the migrate strategy does before the migrate command: the app's role and database."""
    from psycopg2 import sql

    dbc = config.database
    conn = psycopg2.connect(
        host="127.0.0.1", port=port, user=SUPERUSER, password=BUILT_IN_PASSWORD, dbname="postgres"
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(dbc.user), sql.Literal(dbc.password.get_secret_value())
                )
            )
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(dbc.name), sql.Identifier(dbc.user)
                )
            )
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
