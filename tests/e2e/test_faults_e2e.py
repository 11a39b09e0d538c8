"""Faults around a run, through the real `nocrud` CLI: each has the right status and exit code,
a message that says what to do, and leaves nothing labelled behind.

Covered here: a migration that fails while the database image is built, a Docker
daemon that is not there, an app image that is neither present nor pullable, and
flows that misbehave in the runner's own process (``SystemExit``,
``KeyboardInterrupt``, a busy loop past ``--timeout``, a thread that never ends).
Every run has a subprocess timeout, so no fault can hang the suite. Faults inside
an environment (containers dying mid-flow, an app never healthy) are in
tests/docker/test_faults.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

MISBEHAVING_FLOWS = '''
from nocrud.flows import flow


@flow
def health_is_ok(ctx):
    """Passes, whatever its neighbours do."""
    assert ctx.api.get("/health").data["status"] == "ok"


@flow
def calls_sys_exit(ctx):
    ctx.api.get("/health")
    raise SystemExit(3)


@flow
def raises_keyboard_interrupt(ctx):
    ctx.api.get("/health")
    raise KeyboardInterrupt("pressed by the flow, not the user")


@flow
def busy_loops_forever(ctx):
    ctx.api.get("/health")
    while True:
        pass
'''

THREAD_FLOWS = '''
import threading
import time

from nocrud.flows import flow


@flow
def health_is_ok(ctx):
    """Passes, whatever its neighbours do."""
    assert ctx.api.get("/health").data["status"] == "ok"


@flow
def leaves_a_thread_running(ctx):
    ctx.api.get("/health")

    def forever():
        while True:
            time.sleep(0.05)

    # A thread inherits daemon=True from the flow's own thread: ask for a non-daemon one.
    threading.Thread(target=forever, name="never-ends", daemon=False).start()
'''

BROKEN_MIGRATION = """-- added by the fault test: a typo nobody caught
CREATE TABLE broken_thing (
    id integer PRIMARY KEY,
    name txet NOT NULL
);
"""


def _results(path: Path) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in json.loads(path.read_text())["flows"]}


def test_flows_that_exit_interrupt_or_spin_are_errors_and_the_run_goes_on(harness: Any) -> None:
    harness.config(flows__path=str(harness.flows(MISBEHAVING_FLOWS)))
    results = harness.dir / "results.json"

    started = time.monotonic()
    proc = harness.run("up", "-j", "2", "--timeout", "3", "--json", str(results), timeout=240)
    elapsed = time.monotonic() - started

    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    flows = _results(results)
    assert flows["health_is_ok"]["status"] == "passed", flows["health_is_ok"]
    assert flows["calls_sys_exit"]["status"] == "error"
    assert flows["calls_sys_exit"]["message"] == "SystemExit: 3"
    interrupted = flows["raises_keyboard_interrupt"]
    assert interrupted["status"] == "error"
    assert interrupted["message"] == "KeyboardInterrupt: pressed by the flow, not the user"
    assert "raise KeyboardInterrupt" in interrupted["traceback"]
    assert flows["busy_loops_forever"]["status"] == "error"
    assert flows["busy_loops_forever"]["message"].startswith("timed out after 3 s")
    assert "1 passed, 3 errors" in out or "1 passed, 3 error" in out, out
    assert "interrupted" not in out.lower().replace("keyboardinterrupt", "")
    assert elapsed < 180, f"four small flows took {elapsed:.0f}s"
    assert harness.leftovers() == []


def test_a_flow_leaving_a_thread_running_is_an_error_and_the_run_still_exits(
    harness: Any,
) -> None:
    harness.config(flows__path=str(harness.flows(THREAD_FLOWS)))
    results = harness.dir / "results.json"

    proc = harness.run("up", "-j", "2", "--json", str(results), timeout=180)

    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    flows = _results(results)
    assert flows["health_is_ok"]["status"] == "passed", flows["health_is_ok"]
    leaking = flows["leaves_a_thread_running"]
    assert leaking["status"] == "error", leaking
    assert "left 1 thread(s) running: never-ends" in leaking["message"]
    assert "never-ends" in out.split("not waiting for", 1)[1]  # and the process did not wait
    assert harness.leftovers() == []


def test_a_failing_migration_stops_the_build_with_its_error_and_file_name(harness: Any) -> None:
    app = harness.copy_example_app()
    (app / "migrations" / "0099_broken_thing.sql").write_text(BROKEN_MIGRATION)
    harness.config(app__build=str(app), database__migrations=[str(app / "migrations")])

    proc = harness.run("up", "-j", "2", "-f", "isolation_01", timeout=600)

    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out  # the environment could not be built: not a flow failing
    migrate = "the migrate command `python3 -m inventory.migrate` failed with exit code 1"
    assert f"error: {migrate}" in out
    assert "0099_broken_thing.sql" in out
    assert 'type "txet" does not exist' in out  # PostgreSQL's own words
    assert "running 1 flow" not in out  # no flow started on a half-migrated database
    assert harness.leftovers() == []


def test_an_unreachable_docker_daemon_exits_3_saying_where_it_looked(
    harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.config()
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")

    started = time.monotonic()
    proc = harness.run("up", "-j", "2", timeout=60)
    elapsed = time.monotonic() - started

    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out
    # A TCP DOCKER_HOST that refuses: said as such, with what to do (wait for a DinD
    # service, or point at where it listens).
    assert "cannot reach Docker at tcp://127.0.0.1:1: nothing answers there" in out
    assert "Connection refused" in out and "nocrud doctor --wait" in out
    assert "Traceback" not in out
    assert elapsed < 30, f"an unreachable daemon took {elapsed:.0f}s to report"


def test_an_app_image_neither_present_nor_pullable_fails_fast_and_clearly(harness: Any) -> None:
    harness.config(app__image="nocrud/does-not-exist:1", app__build=None)

    started = time.monotonic()
    proc = harness.run("up", "-j", "2", "-f", "isolation_01", timeout=120)
    elapsed = time.monotonic() - started

    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out
    assert "app image nocrud/does-not-exist:1 is not present and cannot be pulled" in out
    assert "app.image" in out  # where to change it
    assert "build-all.sh" not in out  # that makes nocrud's own images, not the user's
    assert "Traceback" not in out
    assert "running 1 flow" not in out
    # A registry that cannot be reached answers at once here (no DNS); where `docker pull`
    # waits on a network instead, the daemon's own timeouts apply.
    assert elapsed < 60, f"a missing image took {elapsed:.0f}s to report"
    assert harness.leftovers() == []
