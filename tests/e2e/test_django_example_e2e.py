"""The Django example (examples/django) under the real CLI.

Every one of its flows passes at ``-j 4`` and exercises every operation of its OpenAPI
schema; ``nocrud bench --flows 8`` runs a small flow set under every strategy
(``external`` against a PostgreSQL server the test starts) and writes the table,
``bench.json`` and ``bench.png`` with every figure present and positive (their values
are the README's business, not a test's) and nothing left behind by any strategy. The
images are built once for the module.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import NOCRUD, REPO, nocrud_databases, postgres_server, run_nocrud

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

EXAMPLE = REPO / "examples" / "django"
#: Every figure a bench row carries that must be positive.
FIGURES = (
    "wall",
    "provision_p50",
    "provision_p95",
    "teardown_p50",
    "flows_per_minute",
    "peak_rss_mib",
    "docker_ops_per_flow",
)
#: Every strategy; the compose baseline, the slowest row, runs in test_strategies_e2e.py.
STRATEGIES = ["image", "pool", "template", "migrate", "external"]
#: Their environments are removed (image) or reset (pool) after the flow has reported.
BACKGROUND_TEARDOWN = {"image", "pool"}


@pytest.fixture(scope="module")
def django_project(docker_client: Any, project: str) -> Iterator[str]:
    """A project name of this module's own; its images are removed afterwards."""
    name = f"{project}-dj"
    yield name
    for repo in (f"nocrud/{name}-app", f"nocrud/{name}-db"):
        for image in docker_client.images.list(name=repo):
            for tag in image.tags:
                docker_client.images.remove(tag, force=True)


def django_config(directory: Path, project: str, **database: Any) -> Path:
    """examples/django/nocrud.yaml under ``project``, its paths made absolute."""
    data = yaml.safe_load((EXAMPLE / "nocrud.yaml").read_text())
    data["project"] = project
    data["app"]["build"] = str(EXAMPLE)
    data["database"]["migrations"] = [str(EXAMPLE / p) for p in data["database"]["migrations"]]
    data["database"].update(database)
    data["flows"]["path"] = str(EXAMPLE / "flows")
    # A shared 2-core runner starting four pairs at once: PostgreSQL may need longer.
    data.setdefault("timeouts", {}).update(db_ready=90, app_ready=240)
    path = directory / "nocrud.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# 46 flows at -j 4 plus a first build of both images: minutes on an idle 2-core runner.
@pytest.mark.timeout(2700)
def test_every_django_flow_passes_covers_the_api_and_leaves_nothing(
    harness: Any, django_project: str, tmp_path: Path
) -> None:
    config = django_config(tmp_path, django_project)
    results = tmp_path / "results.json"
    proc = run_nocrud(
        "-c", str(config), "up", "-j", "4", "--json", str(results), cwd=tmp_path, timeout=2600
    )
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]
    flows = json.loads(results.read_text())["flows"]
    assert len(flows) >= 32
    assert {f["name"]: f["status"] for f in flows if f["status"] != "passed"} == {}
    crud = [f for f in flows if f["name"].endswith("_crud")]
    assert len(crud) == 8
    assert harness.leftovers(django_project) == []

    coverage = run_nocrud(
        "-c", str(config), "coverage", "--json", "--fail-under", "100", cwd=tmp_path
    )
    assert coverage.returncode == 0, coverage.stdout + coverage.stderr
    report = json.loads(coverage.stdout)
    assert report["covered"] == report["total"] >= 60


@pytest.mark.timeout(2400)
def test_bench_runs_every_strategy_on_the_django_example_and_leaves_nothing(
    harness: Any, django_project: str, tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    with postgres_server(harness) as (url, network):
        config = django_config(
            tmp_path, django_project, external={"app_host": "extpg:5432", "network": network}
        )
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "NOCRUD_EXTERNAL_URL": url}
        env.pop("NOCRUD_CONFIG", None)
        proc = subprocess.run(
            [
                *NOCRUD,
                *("bench", "--example", str(config), "--flows", "4", "-j", "4"),
                *("--strategies", ",".join(STRATEGIES), "--out", str(out)),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=2300,
            check=False,
        )
        text = proc.stdout + proc.stderr
        assert proc.returncode == 0, text[-8000:]
        databases = nocrud_databases(url)
    assert databases == []  # external dropped its template and every clone

    header = next(line for line in proc.stdout.splitlines() if line.startswith("strategy "))
    for heading in ("provision p50 s", "teardown p50 s", "docker ops/flow", "left"):
        assert heading in header, header
    data = json.loads((out / "bench.json").read_text())
    rows = {row["strategy"]: row for row in data["strategies"]}
    assert list(rows) == STRATEGIES
    for name, row in rows.items():
        assert (row["flows"], row["passed"], row["left_behind"]) == (4, 4, 0), (name, row)
        for figure in FIGURES:
            if figure == "teardown_p50" and name in BACKGROUND_TEARDOWN:
                assert row[figure] >= 0, (name, figure, row)  # the worker does not wait for it
            else:
                assert row[figure] > 0, (name, figure, row)
    assert any(line.startswith("migrate / image wall time:") for line in data["context"]["ratios"])
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| template |" in (out / "bench.md").read_text()
    assert harness.leftovers(django_project) == []


# Reuses the module's images when an earlier test built them; builds them otherwise.
@pytest.mark.timeout(1800)
def test_the_django_pytest_suite_on_the_fixtures_passes_in_parallel(
    harness: Any, django_project: str, tmp_path: Path
) -> None:
    """examples/django/pytest_suite (api + db) under pytest-xdist: each test its own pair."""
    import sys

    config = django_config(tmp_path, django_project)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    env.pop("NOCRUD_CONFIG", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-n",
            "2",
            "--nocrud-config",
            str(config),
            "--nocrud-strategy",
            "pool",
            str(EXAMPLE / "pytest_suite"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]
    assert "5 passed" in proc.stdout, proc.stdout
    assert harness.leftovers(django_project) == []
