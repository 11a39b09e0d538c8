"""Benchmark: a pool pair's reset on each common app server, restart against auto's choice.

For each server below, one ``pool`` pair is started with ``run.pool_app_reload: auto``;
the table shows what ``auto`` chose, the app's measured boot, and then ``--samples``
resets by container restart and (where ``auto`` chose one) by its signal, each after one
request to the app, as a flow would leave it:

* ``wall``: the reset, start to the app answering its health path again;
* ``app+db CPU``: what the pair's two containers spent on it, by their own cgroup
  accounting (``docker stats``; a restarted container's accounting starts again, so its
  figure is the new process's boot);
* ``daemons CPU``: what the Docker daemon, containerd, the shims and fuse-overlayfs
  spent meanwhile (their ``/proc``, as ``pair_cost.py`` reads it): a restart's own cost.
  On a machine shared with other Docker work, that is theirs too: compare medians.

Servers: one tiny Django app (``tests/e2e/strangers/servers``) under gunicorn sync and
gthread, each with and without ``--preload``, gunicorn with uvicorn workers, uvicorn
alone and with ``--workers 2`` (both under nocrud's preloading launcher), Django's
runserver (with its autoreloader) and gunicorn started by a shell
wrapper (``sh -c``); the compiled C server of ``tests/e2e/strangers/binapp`` (built by
the host's gcc, which needs libpq-dev); and the real apps: the bundled example (gunicorn
``--preload`` from a config file), the Django example and ``fastapi_items`` (uvicorn
alone). Needs the Docker daemon on this host (its processes are read from /proc).
Usage::

    v/bin/python benchmarks/reset_servers.py --samples 5
    v/bin/python benchmarks/reset_servers.py --samples 1 --only servers  # quick
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml
from rich.console import Console

from nocrud.config import Config, load_config
from nocrud.docker import cleanup
from nocrud.docker.engine import Engine
from nocrud.docker.resources import DaemonGate
from nocrud.environment import Run
from nocrud.environment.bridge import SharedBridge
from nocrud.environment.pair import Pair
from nocrud.environment.reload import Reload
from nocrud.images import BuiltImages
from nocrud.prepare import prepare_docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The benchmarks beside this one: the CPU sample of pair_cost, the cgroup CPU of
# boot_cost, the build and clean-up of environments.
from boot_cost import cpu_seconds
from environments import project_config, quiet_build, remove_images
from pair_cost import DAEMONS, processes, sample

REPO = Path(__file__).resolve().parent.parent
STRANGERS = REPO / "tests" / "e2e" / "strangers"
GUNICORN = ("gunicorn", "-b", "0.0.0.0:8000", "-w", "2")
UVICORN = ("uvicorn", "--host", "0.0.0.0", "--port", "8000")


@dataclass(frozen=True)
class Server:
    """One server shape: the project it runs, its command (None: the image's), auto's pick."""

    label: str
    project: str
    command: tuple[str, ...] | None
    expected: str


SERVERS = (
    Server("gunicorn sync", "servers", (*GUNICORN, "tiny.wsgi"), "HUP"),
    Server("gunicorn sync --preload", "servers", (*GUNICORN, "--preload", "tiny.wsgi"), "HUP"),
    Server(
        "gunicorn gthread",
        "servers",
        (*GUNICORN, "-k", "gthread", "--threads", "4", "tiny.wsgi"),
        "HUP",
    ),
    Server(
        "gunicorn gthread --preload",
        "servers",
        (*GUNICORN, "-k", "gthread", "--threads", "4", "--preload", "tiny.wsgi"),
        "HUP",
    ),
    Server(
        "gunicorn uvicorn workers",
        "servers",
        (*GUNICORN, "-k", "uvicorn.workers.UvicornWorker", "tiny.asgi:application"),
        "HUP",
    ),
    Server(
        "gunicorn uvicorn w. --preload",
        "servers",
        (*GUNICORN, "-k", "uvicorn.workers.UvicornWorker", "--preload", "tiny.asgi:application"),
        "HUP",
    ),
    Server(
        "uvicorn alone",
        "servers",
        (*UVICORN, "tiny.asgi:application"),
        "HUP",
    ),
    Server(
        "uvicorn --workers 2",
        "servers",
        (*UVICORN, "--workers", "2", "tiny.asgi:application"),
        "HUP",
    ),
    Server(
        "Django runserver",
        "servers",
        ("python3", "manage.py", "runserver", "0.0.0.0:8000"),
        "restart",
    ),
    Server(
        "sh -c wrapper, gunicorn",
        "servers",
        ("sh", "-c", "until gunicorn -b 0.0.0.0:8000 -w 2 tiny.wsgi; do sleep 1; done"),
        "restart",
    ),
    Server("compiled binary (binapp)", "binapp", None, "restart"),
    Server("example_app (gunicorn, conf)", "example", None, "HUP"),
    Server("examples/django (gunicorn)", "django", None, "HUP"),
    Server("fastapi_items (uvicorn)", "fastapi_items", None, "HUP"),
)
SOURCES = {
    "servers": STRANGERS / "servers",
    "binapp": STRANGERS / "binapp",
    "django": REPO / "examples" / "django",
    "fastapi_items": STRANGERS / "fastapi_items",
}


def project_of(root: Path, source: str, prefix: str) -> Config:
    """A copy of ``source``'s project under ``root``, named ``<prefix>-<source>``, as a pool."""
    name = f"{prefix}-{source.replace('_', '-')}"
    if source == "example":
        (root / source).mkdir()
        config, _flows = project_config(root / source, name, 1, 1, 0)
        return config
    copy = root / source
    shutil.copytree(SOURCES[source], copy, dirs_exist_ok=True)
    if source == "binapp":
        subprocess.run([copy / "app" / "build.sh"], check=True, timeout=300)
    path = copy / "nocrud.yaml"
    data = yaml.safe_load(path.read_text())
    data["project"] = name
    data.setdefault("run", {}).update(strategy="pool", pool_app_reload="auto", parallel=1)
    # Generous: a busy shared machine must slow the figures down, not fail the pairs.
    data["timeouts"] = {**data.get("timeouts", {}), "db_ready": 120, "app_ready": 120}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path, env={})


@contextlib.contextmanager
def projects(
    engine: Engine, root: Path, prefix: str, sources: set[str], *, keep_images: bool = False
) -> Iterator[dict[str, tuple[Config, BuiltImages]]]:
    """Each project's config and images, built once; the images removed afterwards."""
    built: dict[str, tuple[Config, BuiltImages]] = {}
    try:
        for source in sorted(sources):
            config = project_of(root, source, prefix)
            built[source] = (config, quiet_build(engine, config))
        yield built
    finally:
        if not keep_images:
            for config, _images in built.values():
                remove_images(engine, config.project)


@contextlib.contextmanager
def server_pair(
    engine: Engine,
    config: Config,
    images: BuiltImages,
    server: Server,
    say: Callable[[str], None] = lambda _line: None,
) -> Iterator[Pair]:
    """A started pool pair of ``server`` (reload ``auto``); its run's objects removed after."""
    if server.command is not None:
        config = config.model_copy(
            update={"app": config.app.model_copy(update={"command": server.command})}
        )
    run_id = cleanup.new_run_id()
    run = Run(config=config, run_id=run_id, engine=engine, images=images, say=say)
    labels = cleanup.run_labels(run_id, config.project, role="bench")
    gate = DaemonGate(2)
    bridge = SharedBridge(run, labels, gate) if engine.connection.uses_published_ports else None
    if bridge is not None:
        bridge.lease()
    pair = Pair(
        run,
        cleanup.object_name(run_id, 1, "bench"),
        labels,
        gate=gate,
        bridge=bridge,
        resettable=True,
    )
    try:
        with pair:
            yield pair
    finally:
        if bridge is not None:
            bridge.release()
            bridge.close()


def served(pair: Pair) -> dict[str, Any]:
    """One request to the app's health path, as a flow would make (its JSON, if any)."""
    response = requests.get(pair.base_url + pair.run.config.app.health_path, timeout=10)
    response.raise_for_status()
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def reset_sample(pair: Pair) -> dict[str, float]:
    """One reset after one request: wall, daemons' CPU (pair_cost), the containers' cgroup CPU."""
    client = pair.run.engine.client
    app, db = (client.containers.get(f"{pair.name}-{role}") for role in ("app", "db"))
    started = app.attrs["State"]["StartedAt"]
    served(pair)
    app_before, db_before = cpu_seconds(app), cpu_seconds(db)
    figures = sample(pair.reset, lambda: None, 0)
    app.reload()
    app_after = cpu_seconds(app)
    # A restarted container's accounting starts again from zero: all of it is the reset's.
    restarted = app.attrs["State"]["StartedAt"] != started
    figures["app+db"] = (app_after if restarted else app_after - app_before) + (
        cpu_seconds(db) - db_before
    )
    figures["restarted"] = float(restarted)
    figures["daemons"] = sum(figures[name] for name in DAEMONS)
    return figures


@dataclass
class Row:
    server: Server
    chose: Reload
    boot: float
    resets: dict[str, list[dict[str, float]]]


def measure(
    engine: Engine, config: Config, images: BuiltImages, server: Server, samples: int
) -> Row:
    """``samples`` resets by restart, and by auto's signal where it chose one, alternating."""
    with server_pair(engine, config, images, server) as pair:
        chose = pair.reload
        resets: dict[str, list[dict[str, float]]] = {}
        kinds = [Reload(None, None, "the app", "restart")]
        if chose.signal is not None:
            kinds.append(chose)
        # Alternating, so what else the machine does meanwhile falls on both kinds alike.
        for _ in range(samples):
            for kind in kinds:
                pair.reload = kind
                resets.setdefault(kind.kind, []).append(reset_sample(pair))
        return Row(server, chose, pair.boot, resets)


def median(values: list[dict[str, float]], key: str) -> float:
    return statistics.median(v[key] for v in values)


def table(rows: list[Row]) -> list[str]:
    """The figures side by side: one line per server, medians."""
    width = max(28, *(len(row.server.label) for row in rows))
    head = (
        f"{'server':<{width}} {'auto':<8} {'boot s':>6}   {'restart: wall s':>15} "
        f"{'app+db CPU':>10} {'daemons':>7}   {'signal: wall s':>14} {'app+db CPU':>10} "
        f"{'daemons':>7}"
    )
    lines = [head]
    for row in rows:
        restart = row.resets["restart"]
        line = (
            f"{row.server.label:<{width}} {row.chose.kind:<8} {row.boot:6.2f}   "
            f"{median(restart, 'wall'):15.2f} {median(restart, 'app+db'):10.2f} "
            f"{median(restart, 'daemons'):7.2f}"
        )
        signal = row.resets.get(row.chose.kind) if row.chose.signal else None
        if signal:
            line += (
                f"   {median(signal, 'wall'):14.2f} {median(signal, 'app+db'):10.2f} "
                f"{median(signal, 'daemons'):7.2f}"
            )
        else:
            line += f"   {'(restart: a full boot)':>33}"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5, help="resets of each kind per server")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="only this project (servers, binapp, example, django, fastapi_items) or server "
        "label; repeatable",
    )
    parser.add_argument(
        "--prefix", default=f"resets{os.getpid()}", help="project-name prefix of the images built"
    )
    parser.add_argument("--keep-images", action="store_true")
    args = parser.parse_args(argv)
    if not any(name == "dockerd" for name, _ in processes().values()):
        print("reset_servers needs the Docker daemon on this host (it reads its /proc)")
        return 2
    chosen = [s for s in SERVERS if not args.only or s.project in args.only or s.label in args.only]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="nocrud-resets-") as tmp:
        config = load_config(SOURCES["servers"] / "nocrud.yaml", env={})
        engine = prepare_docker(config, Console(stderr=True, highlight=False))
        try:
            sources = {s.project for s in chosen}
            with projects(
                engine, Path(tmp), args.prefix, sources, keep_images=args.keep_images
            ) as built:
                for server in chosen:
                    rows.append(measure(engine, *built[server.project], server, args.samples))
        finally:
            engine.close()
    print(
        f"nocrud pool resets by server: medians of {args.samples} reset(s) each, after one "
        "request; CPU in seconds"
    )
    for line in table(rows):
        print(line)
    wrong = [r.server.label for r in rows if r.chose.kind != r.server.expected]
    for row in rows:
        print(f"  {row.server.label}: {row.chose.server}")
    if wrong:
        print(f"auto chose otherwise than expected for: {', '.join(wrong)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
