"""The pytest plugin on a real daemon: a real ``pytest -n 2`` on a suite that uses it.

What a team gets by adding one fixture to its tests: under pytest-xdist the images are
built once (one worker builds, the other waits on the lock), every test sees only its own
rows, a failing test's report carries its requests, a curl line and the app's log, and a
SIGKILL of pytest and its workers leaves nothing 15 s later.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from nocrud.store import RunStore
from tests.conftest import write_config

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

SUITE = """
import uuid

import pytest

SITE = {"contact": "c", "address": "a", "state_or_region": "s", "country": "c",
        "postcode_or_zip": "p"}


def login(api):
    token = api.post(
        "/api/auth/login", json={"username": "editor", "password": "editor-password"}
    ).data["token"]
    api.session.headers["Authorization"] = f"Bearer {token}"


@pytest.mark.parametrize("n", range(2))
def test_sees_only_its_own_rows(api, db, nocrud_env, n):
    login(api)
    name = f"py-{n}-{uuid.uuid4().hex[:6]}"
    api.post("/api/sites", json={"name": name, **SITE}, expect=201)
    listed = [s["name"] for s in api.get("/api/sites", params={"limit": 100}).data["items"]]
    assert [x for x in listed if x.startswith("py-")] == [name]
    with db.cursor() as cur:
        cur.execute("SELECT name FROM site WHERE name LIKE 'py-%%'")
        assert [row[0] for row in cur.fetchall()] == [name]
    print("DATABASE", nocrud_env.db_host, nocrud_env.db_port)


def test_fails_on_a_missing_site(api):
    login(api)
    api.get("/api/sites/424242", expect=200)
"""


def _pytest(directory: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args]


def _env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    env.pop("NOCRUD_CONFIG", None)
    return env


def _remove_images(client: Any, project: str) -> None:
    for image in client.images.list(filters={"label": f"nocrud.project={project}"}):
        for tag in image.tags:
            client.images.remove(tag, force=True)
    for image in client.images.list(name=f"nocrud/{project}-db"):
        for tag in image.tags:
            client.images.remove(tag, force=True)


def test_xdist_workers_build_once_isolate_every_test_and_report_failures(
    harness: Any, tmp_path: Path
) -> None:
    # A project of this test's own, so its images do not exist yet: someone must build.
    project = f"{harness.project}py"
    config = write_config(tmp_path, project)
    (tmp_path / "test_suite.py").write_text(SUITE)
    client = harness.client
    since = int(time.time()) - 1
    try:
        proc = subprocess.run(
            [*_pytest(tmp_path), "-n", "2", "--nocrud-config", str(config)],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        until = int(time.time()) + 1
        out = proc.stdout
        assert proc.returncode == 1, out + proc.stderr
        assert "1 failed, 2 passed" in out, out

        # One worker built the database image; the other waited and found it built.
        commits = [
            event
            for event in client.events(
                since=since,
                until=until,
                decode=True,
                filters={"type": "container", "event": "commit"},
            )
            if (event.get("Actor") or {}).get("Attributes", {}).get("nocrud.project") == project
        ]
        assert len(commits) == 1, commits

        # Both workers registered on one reaper: the session started one container for it.
        started = {"type": "container", "event": "start", "label": "org.testcontainers.ryuk"}
        reapers = list(client.events(since=since, until=until, decode=True, filters=started))
        assert len(reapers) == 1, reapers

        # Two workers, two databases: no test saw another's rows (asserted inside), and
        # each ran against a server of its own.
        servers = {line for line in out.splitlines() if line.startswith("DATABASE ")}
        assert len(servers) == 2, out

        # The failing test's report: its requests, a curl line, the app's log.
        for section in ("nocrud requests", "nocrud curl", "nocrud app log"):
            assert f" {section} " in out, out
        assert "GET /api/sites/424242 -> 404" in out
        assert 'curl -i -X GET "$APP"/api/sites/424242' in out
        assert '"GET /api/sites/424242 HTTP/1.1" 404' in out  # the app's access log
        assert "editor-password" not in out

        # The run is in the project's run store, each test once, as nocrud serve shows it.
        store = RunStore(f"sqlite:///{config.parent / '.nocrud' / 'history.db'}")
        [run], _ = store.list_runs()
        assert (run["project"], run["status"], run["exit_code"]) == (project, "failed", 1)
        flows = {f["name"]: f for f in store.run_flows(str(run["id"]))}
        assert sorted(f["status"] for f in flows.values()) == ["failed", "passed", "passed"]
        failed = flows["test_suite.py::test_fails_on_a_missing_site"]
        assert "404" in str(failed["message"])
        assert harness.leftovers(project) == []
    finally:
        _remove_images(client, project)


def test_a_sigkilled_pytest_and_its_workers_leave_nothing(harness: Any, tmp_path: Path) -> None:
    config = harness.config()
    assert harness.run("build", timeout=900).returncode == 0
    (tmp_path / "test_slow.py").write_text(
        textwrap.dedent(
            """
            import time

            import pytest

            @pytest.mark.parametrize("n", range(2))
            def test_slow(nocrud_env, n):
                time.sleep(120)
            """
        )
    )
    proc = subprocess.Popen(
        [*_pytest(tmp_path), "-n", "2", "--nocrud-config", str(config)],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while len(harness.running("app")) < 2:
            assert time.monotonic() < deadline, "the two tests' apps never came up"
            assert proc.poll() is None, "pytest ended before its tests' apps came up"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # pytest and every worker, as a cancelled CI job
        proc.wait()
    killed = time.monotonic()
    assert harness.leftovers(), "nothing was up when pytest was killed: the test proves nothing"
    while harness.leftovers() and time.monotonic() - killed < 15:
        time.sleep(0.25)
    assert harness.leftovers() == [], f"still there 15 s after SIGKILL: {harness.leftovers()}"


def test_a_fastapi_projects_own_suite_converted_to_the_fixtures_passes_in_parallel(
    harness: Any, tmp_path: Path
) -> None:
    """tests/e2e/strangers/fastapi_items: its pytest suite, moved onto `api`/`db` with a small
    diff, under `pool` at -n 2: every test in its own database, even those that count rows."""
    import shutil

    import yaml

    app = tmp_path / "fastapi_items"
    shutil.copytree(harness.repo / "tests" / "e2e" / "strangers" / "fastapi_items", app)
    project = f"{harness.project}fa"
    config = yaml.safe_load((app / "nocrud.yaml").read_text())
    config["project"] = project
    (app / "nocrud.yaml").write_text(yaml.safe_dump(config))
    try:
        proc = subprocess.run(
            [*_pytest(app), "-n", "2", "--nocrud-strategy", "pool", "tests_nocrud"],
            cwd=app,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "7 passed" in proc.stdout, proc.stdout
        assert harness.leftovers(project) == []

        # benchmarks/pytest_suite.py at reduced size, on the images just built: the shared
        # suite fails its counting tests on one database; the isolated one, on the pairs
        # its first (uncounted) session kept, passes them all, and nothing is left.
        bench = harness.benchmark(
            "pytest_suite", "--copies", "1", "--workers", "1", "--strategies", "kept",
            "--repeat", "1", "--project", project,
        )  # fmt: skip
        rows = {line.split(" -n ")[0]: line for line in bench.stdout.splitlines()[2:4]}
        assert rows["shared"].endswith("2 failed, 5 passed"), bench.stdout
        assert rows["kept"].endswith("7 passed"), bench.stdout
        assert "kept -n 1 / shared -n 1: " in bench.stdout, bench.stdout
        assert "median of 1 run(s) per row" in bench.stdout, bench.stdout
        assert harness.leftovers(project) == []
    finally:
        _remove_images(harness.client, project)


FLOWS = '''
from nocrud import crud, flow

site_crud = crud(
    "site",
    endpoint="/api/sites",
    create={"name": "North", "contact": "c", "address": "a", "state_or_region": "s",
            "country": "c", "postcode_or_zip": "p"},
    update={"contact": "Changed"},
    auth=("editor", "editor-password"),
)


@flow(tags=["smoke"])
def health_answers(ctx):
    """The app says it is healthy."""
    assert ctx.api.get("/health").status == 200


@flow(tags=["smoke"])
def a_missing_site_is_found(ctx):
    ctx.api.get("/api/sites/424242", expect=200)
'''


def test_flows_run_as_pytest_items_with_markers_junit_and_last_failed(
    harness: Any, tmp_path: Path
) -> None:
    flows = harness.flows(FLOWS)
    config = harness.config(flows__path=str(flows))
    base = [sys.executable, "-m", "pytest", "-q", "--nocrud-flows", "--nocrud-config", str(config)]
    junit = tmp_path / "junit.xml"

    def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args, str(flows)], cwd=tmp_path, env=_env(), capture_output=True,
            text=True, timeout=900, check=False,
        )  # fmt: skip

    first = pytest_run("-m", "smoke or crud", "--junitxml", str(junit))
    assert first.returncode == 1, first.stdout + first.stderr
    assert "1 failed, 2 passed" in first.stdout, first.stdout
    assert "a_missing_site_is_found: failed" in first.stdout
    assert "GET /api/sites/424242" in first.stdout and "404" in first.stdout
    cases = junit.read_text()
    for name in ("site", "health_answers", "a_missing_site_is_found"):
        assert f'name="{name}"' in cases, cases

    smoke = pytest_run("-m", "smoke", "-k", "health")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "1 passed, 2 deselected" in smoke.stdout, smoke.stdout

    again = pytest_run("--lf")
    assert again.returncode == 1, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1].startswith("1 failed"), again.stdout
    assert "a_missing_site_is_found" in again.stdout and "health_answers" not in again.stdout
    assert harness.leftovers() == []
