"""The ``pool`` strategy through the real CLI: the bundled flows, a crashed app, SIGKILL."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from tests.conftest import SLOW_FLOWS

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

CRASH_THEN_PASS = '''
import docker
from nocrud.flows import flow


@flow
def a_app_crashes(ctx):
    """Kills its own app container (the only one at -j 1), as a crashing app would."""
    ctx.api.get("/health")
    client = docker.from_env()
    labels = ["nocrud.project={project}", "nocrud.role=app"]
    for container in client.containers.list(filters={{"label": labels}}):
        container.kill()
    client.close()
    ctx.api.get("/health")


@flow
def b_next_flow_gets_a_working_pair(ctx):
    assert ctx.api.get("/health").data["status"] == "ok"
    with ctx.db.cursor() as cur:
        cur.execute("SELECT count(*) FROM site")
        assert cur.fetchone() == (0,)
'''


def test_bundled_flows_pass_under_pool_with_warm_pairs_at_j8(harness: Any) -> None:
    harness.config(run__strategy="pool")
    proc = harness.run("up", "-j", "8", "--warm", "4")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "isolation_16" in out
    assert harness.leftovers() == []


def test_a_pair_whose_app_crashed_is_replaced_and_the_next_flow_passes(harness: Any) -> None:
    source = CRASH_THEN_PASS.format(project=harness.project)
    harness.config(run__strategy="pool", flows__path=str(harness.flows(source)))
    proc = harness.run("up", "-j", "1")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "ERROR   a_app_crashes" in out
    assert "the app container exited with code 137 during the flow" in out
    assert "PASSED  b_next_flow_gets_a_working_pair" in out
    assert harness.leftovers() == []


def test_sigkill_under_pool_with_warm_pairs_leaves_nothing_15_seconds_later(
    harness: Any,
) -> None:
    harness.config(
        run__strategy="pool",
        flows__path=str(harness.flows(SLOW_FLOWS)),
        timeouts__db_ready=120,  # eight servers start at once on two cores
    )
    # Four pairs for the running flows and at least one warm one ahead of them.
    harness.sigkill_leaves_nothing(
        "-j", "4", "--warm", "4", role="db", count=5, timeout=300, waiting_for="the warm pairs"
    )


def test_environments_benchmark_prints_every_figure_at_reduced_size(harness: Any) -> None:
    """benchmarks/environments.py at two trivial flows: every path measured, figures positive."""
    args = ["--trivial", "2", "--parallel", "1", "--warm", "1", "--project", harness.project]
    steady = ["--steady", "2", "--think", "0.1"]
    proc = harness.benchmark("environments", *args, *steady, "--rounds", "2", "--keep-images")
    lines = {line.split("  ")[0].strip(): line for line in proc.stdout.splitlines()}
    waiting = "pool --warm 1, HUP, 2 flows waiting 0.1s"
    pools = ("pool", "pool, HUP", "pool --warm 1, HUP")
    again = ("image-classic, round 2", "image, round 2")
    for path in ("image-classic", "image", *again, *pools, waiting):
        figures = re.findall(r"(\d+(?:\.\d+)?)(?:s|ms)?\b", lines[path].split(path, 1)[1])
        assert len(figures) >= 5, lines[path]
        wall, p50, p95, calls = (float(f) for f in figures[:4])
        assert wall > 0 and p50 >= 0 and p95 >= p50 and calls > 0, lines[path]
        busy = re.search(r"  host busy (\d+\.\d\d) cores  ", lines[path])
        assert busy and 0 < float(busy[1]) <= (os.cpu_count() or 1) + 0.05, lines[path]
    for path in (*pools, waiting):
        assert re.search(rf"^{re.escape(path)} handoff p50: \d+ ms", proc.stdout, re.M), path
    for path in pools:
        assert re.search(rf"wall image-classic / {re.escape(path)}: \d+\.\d+x", proc.stdout)
    rounds = r"wall image-classic / image: \d+\.\d+x \(target >= 1\.5x; median of 2 rounds, each: "
    assert re.search(rounds + r"\d+\.\d+x, \d+\.\d+x\)", proc.stdout), proc.stdout
    assert re.search(r"^image-classic median wall over 2 rounds: \d+\.\ds$", proc.stdout, re.M)
    assert harness.leftovers() == []


def test_pair_cost_benchmark_prints_every_figure_at_reduced_size(harness: Any) -> None:
    """benchmarks/pair_cost.py at one sample: each environment's CPU, split by process."""
    args = ["--samples", "1", "--hold", "0", "--project", harness.project, "--keep-images"]
    proc = harness.benchmark("pair_cost", *args)
    labels = ("image-classic", "image", "bare pair", "pool start", "pool reset, restart")
    for label in (*labels, "pool reset, HUP"):
        found = re.search(
            rf"^{re.escape(label)} +(\d+\.\d+) CPU s +(\d+\.\d+) s  \((.*)\)$", proc.stdout, re.M
        )
        assert found, proc.stdout
        total, wall = float(found[1]), float(found[2])
        assert total > 0 and wall > 0, found[0]
        if label != "pool reset, HUP":  # a signal and a clone: the daemon's share may round to 0
            assert "dockerd" in found[3], found[0]  # every one of them is daemon work
    assert re.search(r"^CPU image-classic / image: \d+\.\d+x", proc.stdout, re.M), proc.stdout
    floor = r"^CPU image-classic / bare pair: \d+\.\d+x \(the most a path that starts a new"
    assert re.search(floor, proc.stdout, re.M), proc.stdout
    assert harness.leftovers() == []


def test_overlay2_benchmark_runs_the_environments_benchmark_in_dind(harness: Any) -> None:
    """benchmarks/overlay2.py at one trivial flow: measured on a nested overlay2 daemon."""
    proc = harness.benchmark(
        "overlay2", "--project", harness.project, "--",
        "--trivial", "1", "--parallel", "1", "--warm", "0", "--steady", "0", "--skip-reload",
    )  # fmt: skip
    assert "on a Docker-in-Docker daemon, storage driver overlay2" in proc.stdout, proc.stdout
    for path in ("image-classic", "image", "pool"):
        line = re.search(
            rf"^{re.escape(path)} +wall +(\d+\.\d+)s.*daemon cpu/flow (\S+)s$", proc.stdout, re.M
        )
        assert line and float(line[1]) > 0 and float(line[2]) > 0, proc.stdout
    label = f"nocrud.e2e={harness.project}"
    client = harness.client.api
    assert client.containers(all=True, filters={"label": label}) == []
    assert client.networks(filters={"label": label}) == []
    assert client.volumes(filters={"label": label})["Volumes"] in (None, [])
    assert harness.leftovers() == []
