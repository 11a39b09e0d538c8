"""Benchmark: what a run costs on the pairs the last run kept (``run.keep_pool``).

Three measurements, side by side in one run, each against issue 25's targets:

1. The bundled example's flows at ``-j 4`` through ``nocrud bench --strategies
   shared,pool,kept``: ``kept`` is ``pool``'s second run on the pairs an unmeasured first
   run kept (one warm pair per worker). Targets: ``kept`` within 1.3x of ``shared``; its
   handoff (provision) p50 at most 20 ms.
2. A single-uvicorn app (tests/e2e/strangers/fastapi_items, 12 flows written here):
   ``nocrud up -j 4`` under ``pool`` with ``run.keep_pool``, a first run (images built
   beforehand, not counted) and a second one, twice, both with the default
   ``keep_pool_max`` (4): without warm pairs (the defaults: the app runs under nocrud's
   preloading launcher, so a reset is a fork, not a boot) and with ``--warm`` -j. Between the
   two, the benchmark waits for the first run's settler (the pairs it left dirty are
   reset after it exits) and prints how long that took: the second run measures what a
   developer gets after editing a flow. Target: the second at most a third of the first.
3. The memory an idle kept pair holds (``nocrud pool status``), for the bundled example
   and the Django example.

Everything it makes is removed at the end (``nocrud pool stop``, ``nocrud clean``).
Usage::

    v/bin/python benchmarks/kept_pool.py
    v/bin/python benchmarks/kept_pool.py --flows 8 --uvicorn-flows 4 --skip-django
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
NOCRUD = [sys.executable, str(Path(sys.executable).parent / "nocrud")]
FASTAPI = REPO / "tests" / "e2e" / "strangers" / "fastapi_items"

#: Twelve flows on the FastAPI app: logins, items and users, as its own suite tests them.
UVICORN_FLOWS = """
import uuid

from nocrud import flow

FORM = {"username": "admin@example.com", "password": "changethis"}


def admin(ctx):
    token = ctx.api.post("/api/v1/login/access-token", data=FORM).data["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _items(n):
    @flow(name=f"items_{n:02d}")
    def items(ctx):
        headers = admin(ctx)
        for title in ("one", "two"):
            ctx.api.post("/api/v1/items/", json={"title": title}, headers=headers)
        assert ctx.api.get("/api/v1/items/", headers=headers).data["count"] == 2

    globals()[f"items_{n:02d}"] = items


def _users(n):
    @flow(name=f"users_{n:02d}")
    def users(ctx):
        headers = admin(ctx)
        email = f"{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": "secret123"}
        ctx.api.post("/api/v1/users/", json=body, headers=headers)
        assert len(ctx.api.get("/api/v1/users/", headers=headers).data["data"]) == 2

    globals()[f"users_{n:02d}"] = users


for _n in range(6):
    _items(_n)
    _users(_n)
"""


def nocrud(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NOCRUD_CONFIG", None)
    proc = subprocess.run(
        [*NOCRUD, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        sys.exit(f"nocrud {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc


def bench_bundled(flows: int, workers: int, out: Path) -> dict[str, Any]:
    """``nocrud bench`` of shared, pool and kept on the bundled example."""
    nocrud(
        "bench", "--flows", str(flows), "-j", str(workers),
        "--strategies", "shared,pool,kept", "--out", str(out), cwd=REPO,
    )  # fmt: skip
    return {f["strategy"]: f for f in json.loads((out / "bench.json").read_text())["strategies"]}


def uvicorn_runs(
    directory: Path, flows: int, workers: int, *, warm: int, keep: int
) -> tuple[Any, ...]:
    """The uvicorn app's two ``up`` under a kept pool: first JSON, settle seconds, second JSON."""
    app = directory / f"fastapi_items-{warm}-{keep}"
    shutil.copytree(FASTAPI, app)
    package = app / "uvicorn_flows"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = UVICORN_FLOWS.replace("range(6)", f"range({max(1, flows // 2)})")
    (package / "test_flows.py").write_text(source)
    config = yaml.safe_load((app / "nocrud.yaml").read_text())
    config["project"] = "bench-kept-uvicorn"
    config["flows"] = {"path": "uvicorn_flows"}
    config["run"] = {"strategy": "pool", "keep_pool": "5m", "warm": warm, "keep_pool_max": keep}
    (app / "nocrud.yaml").write_text(yaml.safe_dump(config))
    try:
        nocrud("build", cwd=app)
        runs: list[Any] = []
        for name in ("first", "second"):
            results = directory / f"{name}.json"
            nocrud("up", "-j", str(workers), "--json", str(results), cwd=app)
            runs.append(json.loads(results.read_text()))
            if name == "first":
                runs.append(settle_time(app))
        return tuple(runs)
    finally:
        nocrud("clean", "--images", cwd=app, check=False)


def settle_time(project: Path, timeout: float = 300) -> float:
    """Seconds from now until none of the project's kept pairs is dirty or being settled."""
    from nocrud.environment.settle import wait_settled

    waited = wait_settled(project, timeout)
    if waited is None:
        sys.exit(f"the kept pool of {project} did not settle within {timeout:g} s")
    return waited


def idle_footprint(config: Path, selection: list[str]) -> str:
    """``nocrud pool status``'s total line after one kept run of ``selection``."""
    env_args = ["-c", str(config)]
    os.environ["NOCRUD_KEEP_POOL"] = "5m"
    os.environ["NOCRUD_STRATEGY"] = "pool"
    try:
        nocrud(*env_args, "up", "-j", "2", *selection, cwd=config.parent)
        settle_time(config.parent)
        status = nocrud(*env_args, "pool", "status", cwd=config.parent).stdout
    finally:
        nocrud(*env_args, "pool", "stop", cwd=config.parent, check=False)
        del os.environ["NOCRUD_KEEP_POOL"], os.environ["NOCRUD_STRATEGY"]
    rows = [line.split() for line in status.splitlines() if re.search(r"-pool\s+ready", line)]
    rss = [float(row[3]) for row in rows]
    held = [float(row[5]) for row in rows]
    if not rows:
        return f"no kept pair found:\n{status}"
    return (
        f"{len(rows)} idle pair(s): RSS {statistics.median(rss):.0f} MiB, in memory "
        f"{statistics.median(held):.0f} MiB each (median)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--flows", type=int, default=38, help="bundled flows for the bench")
    parser.add_argument("--uvicorn-flows", type=int, default=12, help="flows on the uvicorn app")
    parser.add_argument("-j", "--parallel", type=int, default=4)
    parser.add_argument("--skip-django", action="store_true", help="no Django footprint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nocrud-kept-bench-") as tmp:
        directory = Path(tmp)
        figures = bench_bundled(args.flows, args.parallel, directory / "bench")
        sizes = [(0, 4), (args.parallel, 4)]
        uvicorn = [
            (warm, keep, *uvicorn_runs(directory, args.uvicorn_flows, args.parallel, warm=warm,
                                       keep=keep))
            for warm, keep in sizes
        ]  # fmt: skip
    shared, pool, kept = figures["shared"], figures["pool"], figures["kept"]
    print(f"bundled example, {kept['flows']} flows at -j {args.parallel} (nocrud bench):")
    for figure in (shared, pool, kept):
        handoff = figure["provision_p50"] * 1000
        print(
            f"  {figure['strategy']:<7} wall {figure['wall']:6.1f} s   provision p50 "
            f"{handoff:6.0f} ms   {figure['passed']}/{figure['flows']} passed"
        )
    ratio = kept["wall"] / shared["wall"]
    handoff = kept["provision_p50"] * 1000
    print(f"  kept / shared: {ratio:.2f}x (target at most 1.3x): {_verdict(ratio <= 1.3)}")
    print(f"  kept handoff p50: {handoff:.0f} ms (target at most 20 ms): {_verdict(handoff <= 20)}")
    print(f"single-uvicorn app, {args.uvicorn_flows} flows at -j {args.parallel} (nocrud up):")
    for warm, keep, first, settled, second in uvicorn:
        walls = [float(run["wall_time"]) for run in (first, second)]
        counts = [run["totals"]["passed"] for run in (first, second)]
        share = walls[1] / walls[0]
        print(
            f"  warm {warm}, keep_pool_max {keep}: first run {walls[0]:5.1f} s ({counts[0]} "
            f"passed), settled {settled:4.1f} s after it, second {walls[1]:5.1f} s ({counts[1]} "
            f"passed): {share:.2f} of the first (target at most 0.33): {_verdict(share <= 1 / 3)}"
        )
    print("idle kept pairs (nocrud pool status):")
    print(f"  bundled example: {idle_footprint(REPO / 'nocrud.yaml', ['-k', 'isolation'])}")
    if not args.skip_django:
        django = REPO / "examples" / "django" / "nocrud.yaml"
        print(f"  Django example:  {idle_footprint(django, ['-k', 'crud'])}")


def _verdict(met: bool) -> str:
    return "met" if met else "not met"


if __name__ == "__main__":
    main()
