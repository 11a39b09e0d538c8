"""Each provisioning strategy, through the real `nocrud` CLI on the bundled example.

For ``template``, ``migrate`` and ``external``: a small flow set (isolation flows, which
fail if any two flows share rows, and a CRUD flow) passes, and nothing labelled is
left behind. ``external`` runs against a PostgreSQL container this test starts on a
network of its own (nocrud's app containers join it) and removes; after the run no
``nocrud_*`` database is left on it. A SIGKILLed run leaves nothing once the reaper
and ``nocrud clean`` have done their part: containers, networks, and for ``external``
the databases on the user's server. ``database.source: dump`` is run under
``migrate``, which loads the dump for every flow.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import nocrud_databases, postgres_server

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

#: Two isolation flows and a CRUD flow: small, and they fail if two flows share data.
SELECTION = "isolation_01 or isolation_02 or site_crud"
#: A shared 2-core machine can take a minute to start PostgreSQL or gunicorn under load.
PATIENT = {"timeouts__app_ready": 240, "timeouts__db_ready": 120}


def _passed(harness: Any, proc: subprocess.CompletedProcess[str], count: int) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"{count} passed" in out, out
    assert harness.leftovers() == [], harness.leftovers()


@pytest.mark.parametrize("strategy", ["template", "migrate"])
def test_a_strategy_runs_isolation_and_crud_flows_and_leaves_nothing(
    harness: Any, strategy: str
) -> None:
    harness.config(run__strategy=strategy, **PATIENT)
    proc = harness.run("up", "-j", "2", "-k", SELECTION, timeout=900)
    _passed(harness, proc, 3)
    if strategy == "migrate":
        assert "db image" not in proc.stdout, "migrate needs no pre-migrated image"


def _external_config(harness: Any, network: str) -> None:
    harness.config(
        run__strategy="external",
        database__external={"app_host": "extpg:5432", "network": network},
        **PATIENT,
    )


def _run_env(url: str) -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", "NOCRUD_EXTERNAL_URL": url}
    env.pop("NOCRUD_CONFIG", None)
    return env


def test_external_clones_per_flow_on_the_users_server_and_drops_every_database(
    harness: Any,
) -> None:
    with postgres_server(harness) as (url, network):
        _external_config(harness, network)
        proc = subprocess.run(
            [*harness.command, "up", "-j", "2", "-k", SELECTION],
            cwd=harness.dir,
            env=_run_env(url),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        _passed(harness, proc, 3)
        assert "making the template nocrud_" in proc.stdout
        assert nocrud_databases(url) == []

        doctor = subprocess.run(
            [*harness.command, "doctor", "--json"],
            cwd=harness.dir,
            env=_run_env(url),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        checks = {c["name"]: c for c in json.loads(doctor.stdout)}
        assert checks["strategy external"]["status"] == "ok", checks
        assert "may create databases" in checks["strategy external"]["detail"]


def _kill_when_flows_run(
    harness: Any, env: dict[str, str], *, ready: Any, timeout: float = 600
) -> str:
    """Start `nocrud up`, SIGKILL it once ``ready()`` holds; return what it had printed."""
    log = harness.dir / "killed.log"
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [*harness.command, "up", "-j", "2", "-k", SELECTION],
            cwd=harness.dir,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout
            while not ready():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    return log.read_text()


def _flows_running(harness: Any) -> bool:
    label = f"nocrud.project={harness.project}"
    return any(
        c["Labels"].get("nocrud.role") == "app"
        for c in harness.client.api.containers(filters={"label": label})
    )


@pytest.mark.parametrize("strategy", ["template", "migrate"])
def test_a_sigkilled_run_leaves_nothing_after_clean(harness: Any, strategy: str) -> None:
    harness.config(run__strategy=strategy, **PATIENT)
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NOCRUD_CONFIG", None)

    _kill_when_flows_run(harness, env, ready=lambda: _flows_running(harness))
    clean = harness.run("clean", timeout=300)

    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert harness.leftovers() == []


def test_a_sigkilled_external_run_leaves_no_database_after_clean(harness: Any) -> None:
    with postgres_server(harness) as (url, network):
        _external_config(harness, network)
        env = _run_env(url)

        _kill_when_flows_run(
            harness,
            env,
            ready=lambda: len(nocrud_databases(url)) >= 2,  # the template and a flow's clone
        )
        assert nocrud_databases(url), "the killed run's databases should still be there"
        clean = subprocess.run(
            [*harness.command, "clean"],
            cwd=harness.dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert "dropped" in clean.stdout, clean.stdout
        assert nocrud_databases(url) == []
        assert harness.leftovers() == []


def test_a_dump_source_gives_every_flow_the_dumped_schema(harness: Any, tmp_path: Path) -> None:
    harness.config(**PATIENT)
    dump = _dump_of_the_migrated_example(harness, tmp_path)
    harness.config(run__strategy="migrate", database__dump=str(dump), **PATIENT)

    proc = harness.run("up", "-j", "2", "-k", "isolation_01 or site_crud", timeout=900)

    _passed(harness, proc, 2)

    # The compose-per-flow baseline loads the same dump with psql, as a team would; a `$` in
    # app.command reaches the app's shell as written (Compose alone would interpolate it,
    # and refuse the lone one: issue 21 item 13).
    command = 'exec gunicorn -c /app/gunicorn.conf.py "inventory:create_app()" # 5$ ${HOME}'
    harness.config(
        run__strategy="migrate",
        database__dump=str(dump),
        app__command=["sh", "-c", command],
        **PATIENT,
    )
    out = tmp_path / "bench"
    bench = harness.run(
        "bench", "--flows", "2", "-j", "2", "-k", "isolation_01 or site_crud",
        "--strategies", "compose", "--out", str(out), timeout=900,
    )  # fmt: skip
    assert bench.returncode == 0, bench.stdout + bench.stderr
    (row,) = json.loads((out / "bench.json").read_text())["strategies"]
    assert (row["strategy"], row["passed"], row["left_behind"]) == ("compose", 2, 0), row


def _dump_of_the_migrated_example(harness: Any, tmp_path: Path) -> Path:
    """pg_dump (plain SQL, no owners) of the example's migrated database image."""
    built = harness.run("build", timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    db_image = next(
        line.split()[-1] for line in built.stdout.splitlines() if line.startswith("db:")
    )
    container = harness.client.containers.run(
        db_image, detach=True, labels={"nocrud.project": harness.project}
    )
    try:
        deadline = time.monotonic() + 60
        while container.exec_run(["pg_isready", "-q", "-h", "127.0.0.1"]).exit_code != 0:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        code, output = container.exec_run(
            ["pg_dump", "--no-owner", "--no-privileges", "-U", "postgres", "inventory"],
            demux=True,
        )
        assert code == 0, output
    finally:
        container.remove(force=True, v=True)
    path = tmp_path / "inventory.sql"
    path.write_bytes(output[0])
    return path


def test_boot_cost_benchmark_prints_each_part_at_reduced_size(harness: Any) -> None:
    """benchmarks/boot_cost.py, one sample: every part measured, CPU and ratios printed."""
    config = harness.config(**PATIENT)
    proc = harness.benchmark("boot_cost", "-c", str(config), "--samples", "1")
    for part in ("postgres", "app", "migrate"):
        line = next(row for row in proc.stdout.splitlines() if row.startswith(part))
        took, cpu = (float(x) for x in re.findall(r"(\d+\.\d+) (?:s to ready|CPU s)", line))
        assert took > 0 and cpu > 0, line
    assert re.search(r"migrate / image \d+\.\d+x, image / template \d+\.\d+x", proc.stdout)
    assert harness.client.api.containers(all=True, filters={"label": "nocrud.bench"}) == []


def test_bench_measures_every_strategy_against_one_shared_environment(
    harness: Any, tmp_path: Path
) -> None:
    """`shared`: one environment serves every flow; isolation flows see each other's rows there."""
    harness.config(**PATIENT)
    out = tmp_path / "bench"

    bench = harness.run(
        "bench", "--flows", "3", "-j", "1", "-k", "isolation",
        "--strategies", "shared,image", "--out", str(out), timeout=900,
    )  # fmt: skip

    # Failures under shared are the point of the baseline, not a failed bench.
    assert bench.returncode == 0, bench.stdout + bench.stderr
    rows = {r["strategy"]: r for r in json.loads((out / "bench.json").read_text())["strategies"]}
    shared, image = rows["shared"], rows["image"]
    assert (shared["flows"], shared["left_behind"]) == (3, 0), shared
    assert shared["passed"] < 3, "every flow saw only its own rows in one shared database"
    assert (image["passed"], image["left_behind"]) == (3, 0), image
    # One environment for all: its start happens in prepare, not per flow.
    assert shared["docker_ops_per_flow"] < image["docker_ops_per_flow"], rows
    multiple = image["wall"] / shared["wall"]
    assert (
        f"wall time as a multiple of shared (one environment, no reset): image {multiple:.2f}x"
        in bench.stdout
    ), bench.stdout
    assert harness.leftovers() == []


def test_run_overhead_benchmark_prints_both_sides_of_the_flows(harness: Any) -> None:
    """benchmarks/run_overhead.py at its smallest: one timed run, one strategy, against 1 s."""
    config = harness.config()

    proc = harness.benchmark("run_overhead", "-c", str(config), "-n", "1", "--strategies", "image")

    lines = proc.stdout.splitlines()
    (row,) = [line for line in lines if line.split()[1:3] == ["image", "this"]]
    before, low_before, after, low_after, flows, whole = (float(x) for x in row.split()[3:9])
    assert 0 < low_before <= before and 0 < low_after <= after, row
    assert before + flows + after == pytest.approx(whole, abs=0.02), row  # one run: its sum
    assert re.search(r"before (NOT )?met, after (NOT )?met$", row), row
    assert "target at most 1.0 s before and after (p50)" in proc.stdout, proc.stdout
    assert harness.leftovers() == []
