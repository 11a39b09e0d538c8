"""The real `nocrud` CLI on example_app: outcomes, reports, exit codes, and nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SLOW_FLOWS

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

FAILING_FLOWS = '''
from nocrud.flows import flow


@flow
def health_is_ok(ctx):
    """The app answers its health check."""
    assert ctx.api.get("/health").data["status"] == "ok"


@flow
def expects_the_impossible(ctx):
    """Fails on purpose."""
    count = ctx.api.get("/api/sites").data["total"]
    print("printed by the flow")
    assert count == 12345, f"expected 12345 sites, the API says {count}"


@flow
def database_is_reachable(ctx):
    with ctx.db.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
'''


@pytest.fixture(scope="module")
def example_images(docker_client: Any) -> Iterator[None]:
    """Remove the bundled example's images afterwards, if this module was the one to build them."""
    before = {t for i in docker_client.images.list(name="nocrud/example-app") for t in i.tags}
    before |= {t for i in docker_client.images.list(name="nocrud/example-db") for t in i.tags}
    yield
    for repo in ("nocrud/example-app", "nocrud/example-db"):
        for image in docker_client.images.list(name=repo):
            for tag in image.tags:
                if tag not in before:
                    docker_client.images.remove(tag, force=True)


def test_up_on_the_bundled_example_passes_and_leaves_nothing(
    harness: Any, example_images: None, tmp_path: Path
) -> None:
    junit, results = tmp_path / "junit.xml", tmp_path / "results.json"
    proc = harness.run(
        "up", "-j", "8", "--junit", str(junit), "--json", str(results), cwd=harness.repo
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(results.read_text())
    assert data["totals"]["total"] >= 16
    assert data["totals"]["passed"] == data["totals"]["total"]
    assert {f["name"] for f in data["flows"]} >= {f"isolation_{i:02d}" for i in range(1, 17)}
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("errors") == "0"
    assert harness.leftovers("example") == []


def test_failing_flow_is_reported_with_its_assertion_and_app_logs(harness: Any) -> None:
    harness.config(flows__path=str(harness.flows(FAILING_FLOWS)))
    junit, results = harness.dir / "junit.xml", harness.dir / "results.json"
    proc = harness.run("up", "-j", "3", "--junit", str(junit), "--json", str(results))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "expected 12345 sites, the API says 0" in out
    assert "printed by the flow" in out
    assert "GET /api/sites" in out  # the app's access log, shown for the failed flow
    assert "2 passed, 1 failed" in out

    data = json.loads(results.read_text())
    by_name = {f["name"]: f for f in data["flows"]}
    assert by_name["expects_the_impossible"]["status"] == "failed"
    assert "GET /api/sites" in by_name["expects_the_impossible"]["app_logs"]
    assert by_name["health_is_ok"]["status"] == "passed"
    assert by_name["database_is_reachable"]["status"] == "passed"
    for flow in data["flows"]:
        assert flow["timings"]["provision"] > 0
        assert flow["timings"]["teardown"] > 0

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    failures = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["expects_the_impossible"]
    assert harness.leftovers() == []


def test_app_that_exits_at_once_gives_error_with_exit_code_and_logs(harness: Any) -> None:
    harness.config(
        flows__path=str(harness.flows(FAILING_FLOWS)),
        app__command=["sh", "-c", "echo 'config is broken: no SECRET_KEY' >&2; exit 3"],
        timeouts__app_ready=60,
    )
    started = time.monotonic()
    proc = harness.run("up", "-j", "2", "-f", "health_is_ok")
    elapsed = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "exited with code 3" in out
    assert "config is broken: no SECRET_KEY" in out
    assert "1 error" in out
    assert elapsed < 60, (
        f"the crash should be noticed long before the 60 s readiness timeout ({elapsed:.0f}s)"
    )
    assert harness.leftovers() == []


def test_sigint_tears_everything_down_and_exits_130(harness: Any) -> None:
    harness.config(flows__path=str(harness.flows(SLOW_FLOWS)))
    harness.run("build")  # so the interrupt lands while flows run, not while building
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [*harness.command, "up", "-j", "4"],
        cwd=harness.dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            # The low-level list does not inspect each container, so it cannot race a removal.
            running = harness.client.api.containers(
                filters={"label": [f"nocrud.project={harness.project}", "nocrud.role=app"]}
            )
            if len(running) >= 4:
                break
            time.sleep(0.2)
        else:
            pytest.fail("four environments never came up")
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    assert "interrupted" in out.lower()
    assert harness.leftovers() == []


def test_build_is_cached_and_a_changed_migration_rebuilds_both_images(harness: Any) -> None:
    """A changed migration reaches the migrate command through a rebuilt app image
    (Docker's layer cache redoes the layers from its COPY on): nothing is copied into a
    guessed place (issue 21 item 3)."""
    app_dir = harness.copy_example_app()
    config = harness.config()
    config.write_text(config.read_text().replace(str(harness.repo / "example_app"), str(app_dir)))

    first = harness.run("build")
    assert first.returncode == 0, first.stdout + first.stderr
    second = harness.run("build")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "app image up to date" in second.stdout
    assert "db image up to date" in second.stdout
    assert "building" not in second.stdout

    migration = sorted((app_dir / "migrations").glob("*.sql"))[-1]
    migration.write_text(migration.read_text() + "\n-- changed by the cache test\n")
    third = harness.run("build")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "building app image" in third.stdout
    assert "building db image" in third.stdout
    assert harness.leftovers() == []


def test_sigkill_leaves_nothing_15_seconds_later(harness: Any) -> None:
    """The reaper removes a killed run's containers and networks without any later command."""
    harness.config(flows__path=str(harness.flows(SLOW_FLOWS)))
    harness.sigkill_leaves_nothing(
        "-j", "4", role="app", count=4, timeout=120, waiting_for="four environments"
    )


def test_keep_failed_keeps_only_failed_environments_until_nocrud_clean(harness: Any) -> None:
    harness.config(flows__path=str(harness.flows(FAILING_FLOWS)))
    proc = harness.run("up", "-j", "2", "--keep-failed")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "kept for inspection" in out
    kept = harness.client.api.containers(
        all=True, filters={"label": f"nocrud.project={harness.project}"}
    )
    assert {c["Labels"]["nocrud.flow"] for c in kept} == {"expects_the_impossible"}
    assert {c["Labels"]["nocrud.role"] for c in kept} == {"db", "app"}
    assert all(c["Labels"]["nocrud.keep"] == "true" for c in kept)

    # The next run's start-up sweep leaves kept environments alone ...
    again = harness.run("up", "-j", "1", "-f", "health_is_ok")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(harness.leftovers()) == 3  # two containers and their network
    # ... and `nocrud clean` removes them.
    clean = harness.run("clean")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert harness.leftovers() == []
