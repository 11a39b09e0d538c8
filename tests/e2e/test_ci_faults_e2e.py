"""Faults on shared CI runners, in the CI shapes of test_ci_shapes.py (issue 14).

* Docker-outside-of-Docker, a killed run: ``kill -9`` of ``nocrud up`` inside a job
  container that stays alive (its container still attached to the flows' networks);
  the reaper must leave nothing within :data:`REAPER_PROMISE` seconds.
* Docker-outside-of-Docker, jobs sharing a daemon: a job killed with no reaper, whose
  container is then gone, beside a job still running; a later job's ``nocrud doctor``
  reports the dead job's objects and its ``nocrud clean`` removes them, not the live job's.
* Docker-in-Docker: the GitLab recipe of docs/ci run as written beside an empty service,
  filling it from the CI's image cache; then that service killed under a run, which must
  say so once, exit 3, report the flows in flight as errors saying why (JUnit, JSON and
  the terminal count them alike) and the flows it did not start as not run.

The measured times are printed (``pytest -s``) and stated in docs/ci/README.md. Every
object carries this session's project label, and is removed in a ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT
from tests.e2e.test_ci_shapes import (
    OFFLINE_PIP,
    QUICK_FLOWS,
    RUNNER_IMAGE,
    SOCKET,
    TEST_LABEL,
    _copy_images,
    assert_in_order,
    dind_image,
    dind_service,
    expand,
    gitlab_job,
    job_script,
    reaper_image,
    run_job_container,
    runner_image,
)

pytestmark = [pytest.mark.e2e, pytest.mark.docker]
#: The 2-core test machine is shared and often loaded: PostgreSQL may take longer than the
#: default 30 s to accept connections there (a timeout, not what these tests are about).
PATIENT = {"timeouts__db_ready": 120, "timeouts__app_ready": 120}

# The image fixtures come from test_ci_shapes; session-scoped there, so the images stay
# until the session ends and this module's use of them finds them built.
__all__ = ["dind_image", "reaper_image", "runner_image"]

#: What docs/ci promises for a killed run under Docker-outside-of-Docker: the reaper's
#: reconnection timeout (2 s) plus removing the containers and networks.
REAPER_PROMISE = 30.0
#: How long a job may take to get its flows running (image builds included, the first time).
STARTUP_TIMEOUT = 300.0
#: Every flow sleeps this long: long enough to be killed mid-flow, short enough to end.
#: ``SLOW_FLOW_SECONDS`` in the job's environment makes them last longer.
SLOW_FLOWS = """
import os
import time

from nocrud import flow


def _slow(number):
    @flow(name=f"slow_{number}")
    def slow(ctx):
        ctx.api.get("/health")
        time.sleep(float(os.environ.get("SLOW_FLOW_SECONDS", "90")))

    globals()[f"slow_{number}"] = slow  # discovery finds flows among the module's names


for _number in range(4):
    _slow(_number)
"""
#: Eight short flows: the daemon is stopped after the first few passed.
SHORT_FLOWS = """
import time

from nocrud import flow


def _short(number):
    @flow(name=f"short_{number}")
    def short(ctx):
        assert ctx.api.get("/health").data["status"] == "ok"
        time.sleep(2)

    globals()[f"short_{number}"] = short


for _number in range(8):
    _short(_number)
"""


def _wait_until(
    what: str, check: Callable[[], Any], timeout: float, logs: Callable[[], str]
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} did not happen within {timeout:.0f} s; the job's output:\n{logs()}"
            )
        time.sleep(0.5)


@contextlib.contextmanager
def job_container(
    client: Any,
    harness: Any,
    *,
    name: str,
    script: str,
    environment: dict[str, str] | None = None,
    socket: bool = True,
    network: str | None = None,
) -> Iterator[Any]:
    """A CI job container running ``script`` (sh) from the test's directory; always removed.

    The repository and the test's directory are mounted at their own paths, as in
    test_ci_shapes, so the absolute paths of ``harness.config()`` hold inside.
    """
    volumes = {
        str(harness.repo): {"bind": str(harness.repo), "mode": "ro"},
        str(harness.dir): {"bind": str(harness.dir), "mode": "rw"},
    }
    if socket:
        volumes[SOCKET] = {"bind": SOCKET, "mode": "rw"}
    container = client.containers.run(
        RUNNER_IMAGE,
        command=["sh", "-c", script],
        name=name,
        labels={TEST_LABEL: harness.project},
        environment={"NO_COLOR": "1", "COLUMNS": "120", **(environment or {})},
        volumes=volumes,
        working_dir=str(harness.dir),
        network=network,
        detach=True,
    )
    try:
        yield container
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)


def _logs(container: Any) -> Callable[[], str]:
    return lambda: container.logs().decode(errors="replace")


def _flow_networks(client: Any, project: str, run_owner: str) -> list[dict[str, Any]]:
    """This project's flow networks owned by one job container (full inspect: its members)."""
    found = client.api.networks(filters={"label": f"nocrud.project={project}"})
    networks = [client.api.inspect_network(n["Id"]) for n in found]
    return [n for n in networks if n["Labels"].get("nocrud.owner", "").startswith(run_owner)]


def _objects_of(client: Any, project: str, container_id: str) -> list[str]:
    """Containers and networks of ``project`` owned by the job container ``container_id``."""
    owner = f"container:{container_id}:"
    label = f"nocrud.project={project}"
    found = [
        f"container {c['Names'][0]}"
        for c in client.api.containers(all=True, filters={"label": label})
        if c["Labels"].get("nocrud.owner", "").startswith(owner)
    ]
    found += [
        f"network {n['Name']}"
        for n in client.api.networks(filters={"label": label})
        if (n["Labels"] or {}).get("nocrud.owner", "").startswith(owner)
    ]
    return found


def _start_slow_job(
    client: Any, harness: Any, config: Path, name: str, environment: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[Any]:
    # nocrud runs in the background of a shell that outlives it, like a job's script
    # whose runner process is killed while the job container stays.
    script = (
        f"nocrud -c {config} up -j 2 & echo $! > /tmp/nocrud.pid; wait $!; "
        "echo nocrud-ended; sleep 600"
    )
    return job_container(client, harness, name=name, script=script, environment=environment)


def _running_flows(client: Any, harness: Any, job: Any, count: int) -> list[dict[str, Any]]:
    """Wait until ``count`` flow networks of the job exist with the job container attached."""
    job.reload()

    def attached() -> list[dict[str, Any]]:
        networks = [
            n
            for n in _flow_networks(client, harness.project, f"container:{job.id}:")
            if job.id in (n.get("Containers") or {})
        ]
        return networks if len(networks) >= count else []

    return _wait_until(
        f"{count} flows running in {job.name}", attached, STARTUP_TIMEOUT, _logs(job)
    )


def _kill_nocrud(job: Any) -> None:
    result = job.exec_run(["sh", "-c", "kill -9 $(cat /tmp/nocrud.pid)"])
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- Docker-outside-of-Docker


def test_dood_a_killed_run_leaves_nothing_while_its_job_container_lives_on(
    docker_client: Any, harness: Any, runner_image: str, reaper_image: str
) -> None:
    config = harness.config(flows__path=str(harness.flows(SLOW_FLOWS)), **PATIENT)
    with _start_slow_job(
        docker_client, harness, config, f"nocrud-e2e-{harness.project}-killed"
    ) as job:
        _running_flows(docker_client, harness, job, 2)
        _kill_nocrud(job)
        killed = time.monotonic()
        _wait_until(
            "the reaper's cleanup",
            lambda: not _objects_of(docker_client, harness.project, job.id),
            REAPER_PROMISE,
            lambda: f"{_logs(job)()}\nleft: {_objects_of(docker_client, harness.project, job.id)}",
        )
        took = time.monotonic() - killed
        print(f"\nDooD kill -9: nothing left {took:.1f} s after the kill")
        job.reload()
        # The job container lived on, attached to those networks until the reaper took it off.
        assert job.status == "running"
        assert "nocrud-ended" in _logs(job)()
        assert set(job.attrs["NetworkSettings"]["Networks"]) == {"bridge"}
    assert harness.leftovers() == []


def _container_gone(client: Any, ident: str) -> bool:
    import docker.errors

    try:
        client.containers.get(ident)
    except docker.errors.NotFound:
        return True
    return False


def _remove_project_objects(client: Any, project: str) -> None:
    """This session's project only: whatever a failed or killed job left, removed."""
    label = f"nocrud.project={project}"
    for container in client.api.containers(all=True, filters={"label": label}):
        with contextlib.suppress(Exception):
            client.api.remove_container(container["Id"], force=True, v=True)
    for network in client.networks.list(filters={"label": label}):
        with contextlib.suppress(Exception):
            network.reload()
            for member in network.attrs.get("Containers") or {}:
                network.disconnect(member, force=True)
            network.remove()


def _settled(client: Any, harness: Any, job: Any, flows: int) -> list[str]:
    """The job's objects once ``flows`` flows run: a network, a database and an app each."""
    _running_flows(client, harness, job, flows)

    def complete() -> list[str]:
        found = sorted(_objects_of(client, harness.project, job.id))
        containers = sum(item.startswith("container ") for item in found)
        return found if containers >= 2 * flows else []

    return _wait_until(f"{flows} flows' containers in {job.name}", complete, 120, _logs(job))


def test_dood_a_later_jobs_sweep_removes_a_dead_jobs_objects_and_spares_a_live_jobs(
    docker_client: Any, harness: Any, runner_image: str, reaper_image: str
) -> None:
    config = harness.config(flows__path=str(harness.flows(SLOW_FLOWS)), **PATIENT)
    name = f"nocrud-e2e-{harness.project}"
    try:
        # A job whose flows run for the whole test, on the shared daemon.
        with _start_slow_job(
            docker_client,
            harness,
            config,
            f"{name}-live",
            environment={"SLOW_FLOW_SECONDS": "600"},
        ) as live:
            live_before = _settled(docker_client, harness, live, 2)

            # A job started beside it (its own start-up sweep spares the live job), killed
            # without a reaper (disabled, or none could start), then its container gone.
            with _start_slow_job(
                docker_client,
                harness,
                config,
                f"{name}-dead",
                environment={"TESTCONTAINERS_RYUK_DISABLED": "true"},
            ) as dead:
                _settled(docker_client, harness, dead, 2)
                _kill_nocrud(dead)
                dead_id = dead.id
                dead.remove(force=True)
            _wait_until(
                "the dead job's container gone",
                lambda: _container_gone(docker_client, dead_id),
                60,
                lambda: "",
            )
            left = _objects_of(docker_client, harness.project, dead_id)
            assert any(item.startswith("network ") for item in left), left
            assert sorted(_objects_of(docker_client, harness.project, live.id)) == live_before

            # A later job: its doctor reports the dead job's objects, its clean removes them.
            started = time.monotonic()
            with job_container(
                docker_client,
                harness,
                name=f"{name}-later",
                script=f"nocrud -c {config} doctor; nocrud -c {config} clean",
            ) as later:
                status = later.wait(timeout=120)
                output = _logs(later)()
            took = time.monotonic() - started
            print(f"\nDooD later job: the dead job's {len(left)} objects gone {took:.1f} s after")

            assert status["StatusCode"] == 0, output
            assert "whose process is gone" in output, output
            assert f"removed {sum(i.startswith('container ') for i in left)} container(s)" in (
                output
            )
            assert f"left {len(live_before)} object(s) of runs still going" in output, output
            assert _objects_of(docker_client, harness.project, dead_id) == []
            assert sorted(_objects_of(docker_client, harness.project, live.id)) == live_before
            live.reload()
            assert live.status == "running"
            assert "nocrud-ended" not in _logs(live)()
    finally:
        _remove_project_objects(docker_client, harness.project)
    assert harness.leftovers() == []


# ---------------------------------------------------------------- Docker-in-Docker

#: Why the DinD cases share one service: starting it is cheap, but filling an empty one
#: with the images (about 1 GB) is not. The recipe run fills it from the CI cache, as a
#: GitLab job would; the daemon-loss case then runs on the filled service and kills it, so
#: it comes last in this module.


@dataclass
class Service:
    """A DinD service (test_ci_shapes.dind_service) shared by this module's DinD cases."""

    name: str
    network: Any
    nested: Any


@pytest.fixture(scope="module")
def dind(docker_client: Any, dind_image: str) -> Iterator[Service]:
    name = f"nocrud-e2e-{PROJECT}-svc-{uuid.uuid4().hex[:6]}"
    with dind_service(docker_client, name, {TEST_LABEL: PROJECT}) as (network, nested):
        yield Service(name, network, nested)


def _missing(nested: Any, refs: list[str]) -> list[str]:
    import docker.errors

    missing = []
    for ref in refs:
        try:
            nested.images.get(ref)
        except docker.errors.ImageNotFound:
            missing.append(ref)
    return missing


def test_the_gitlab_recipe_runs_as_written_beside_a_dind_service_with_the_image_cache(
    docker_client: Any, harness: Any, runner_image: str, reaper_image: str, dind: Service
) -> None:
    variables, lines = gitlab_job()
    assert lines[0].startswith("pip install")
    # The CI cache is loaded first (the service starts empty), then doctor checks a run can go.
    assert lines[1].startswith("if [ -f .cache/nocrud-images.tar ]; then nocrud images import")
    assert lines[2] == "nocrud doctor --wait 30", lines
    assert dind.nested.images.list() == []  # a fresh service starts empty
    harness.flows(QUICK_FLOWS)
    harness.config(flows__path=str(harness.dir / "e2eflows"), **PATIENT)
    # The CI cache of an earlier job: nocrud's own images and this project's, exported here.
    cache = harness.dir / ".cache" / "nocrud-images.tar"
    cache.parent.mkdir()
    exported = harness.run("images", "export", str(cache))
    assert exported.returncode == 0, exported.stdout + exported.stderr

    started = time.monotonic()
    code, output = run_job_container(
        docker_client,
        harness,
        name=f"{dind.name}-recipe",
        script=job_script(lines),
        environment={**expand(variables, harness.dir), **OFFLINE_PIP},
        network=dind.network.name,
    )
    took = time.monotonic() - started
    print(f"\nGitLab recipe in DinD: {took:.1f} s from the job's start")

    assert code == 0, output
    assert_in_order(output, lines)
    assert "job-succeeded" in output, output
    assert "ready to run flows" in output, output
    assert "loaded " in output, output  # the cache filled the empty service
    assert "2 passed" in output, output
    assert dind.nested.containers.list(all=True) == []
    assert (harness.dir / "report.xml").exists()
    assert json.loads((harness.dir / "results.json").read_text())["totals"]["passed"] == 2
    assert harness.leftovers() == []


def test_dind_losing_the_daemon_mid_run_is_one_cause_line_exit_3_and_flows_in_flight_errors(
    docker_client: Any, harness: Any, runner_image: str, reaper_image: str, dind: Service
) -> None:
    from nocrud.config import load_config
    from nocrud.images.build import build_app_image

    config_path = harness.config(flows__path=str(harness.flows(SHORT_FLOWS)), **PATIENT)
    config = load_config(config_path, env={})
    app_ref, _ = build_app_image(docker_client, config, say=lambda _line: None)
    refs = ["debian:bookworm-slim", config.database.image, app_ref, reaper_image]
    missing = _missing(dind.nested, refs)  # none after the recipe's run: its cache filled them
    if missing:
        _copy_images(docker_client, dind.nested, missing)
    out = harness.dir / "out"
    out.mkdir()
    service = docker_client.containers.get(dind.name)
    script = (
        f"nocrud -c {config_path} up -j 2 --junit {out}/report.xml --json {out}/results.json;"
        " echo exit=$?"
    )
    with job_container(
        docker_client,
        harness,
        name=f"{dind.name}-lost",
        script=script,
        environment={"DOCKER_HOST": "tcp://docker:2375"},
        socket=False,
        network=dind.network.name,
    ) as job:
        _wait_until(
            "two flows passing",
            lambda: _logs(job)().count("PASSED ") >= 2,
            STARTUP_TIMEOUT,
            _logs(job),
        )
        service.kill()  # the service dies, as a crashed or OOM-killed dind does
        lost = time.monotonic()
        job.wait(timeout=300)
        took = time.monotonic() - lost
        output = _logs(job)()
        said = _said_at(job, "lost the Docker daemon") - (time.time() - (time.monotonic() - lost))
    print(
        f"\nDinD lost: the cause said {said:.1f} s and nocrud exited {took:.1f} s "
        "after the daemon died"
    )

    assert "exit=3" in output, output
    cause = [line for line in output.splitlines() if "lost the Docker daemon" in line]
    assert len(cause) == 1, output
    assert cause[0].startswith("error: lost the Docker daemon at tcp://docker:2375 after "), cause
    assert "Traceback" not in output, output
    assert "DockerException" not in output, output

    results = json.loads((out / "results.json").read_text())
    statuses = {f["name"]: f["status"] for f in results["flows"]}
    assert set(statuses) == {f"short_{i}" for i in range(8)}
    assert set(statuses.values()) <= {"passed", "error", "skipped"}, statuses
    passed = sum(1 for s in statuses.values() if s == "passed")
    assert passed >= 2, statuses
    assert f"after {passed} flow" in cause[0]
    assert results["infrastructure"] is True
    # The flows in flight when the daemon went are errors that say why; the rest not run.
    errors = [f for f in results["flows"] if f["status"] == "error"]
    skipped = [f for f in results["flows"] if f["status"] == "skipped"]
    assert errors, statuses
    assert all("lost its Docker daemon while this flow ran" in f["message"] for f in errors)
    assert all("not run: run lost its Docker daemon" in f["message"] for f in skipped), skipped
    assert results["totals"] == {
        "passed": passed,
        "failed": 0,
        "error": len(errors),
        "skipped": len(skipped),
        "total": 8,
    }
    # The JUnit report counts them the same: a CI test widget does not show a clean run.
    suite = ET.parse(out / "report.xml").getroot()
    assert suite.get("failures") == "0", ET.tostring(suite)
    assert suite.get("errors") == str(len(errors)) and suite.get("skipped") == str(len(skipped))
    in_junit = {
        case.get("name")
        for case in suite.iter("testcase")
        if "while this flow ran" in case.findtext("error", default="")
    }
    assert in_junit == {f["name"] for f in errors}
    reason = [p.get("value") for p in suite.iter("property") if p.get("name") == "stopped"]
    assert reason == [results["stopped"]] and reason[0].startswith("lost the Docker daemon")
    summary = f"{passed} passed, {len(errors)} error"
    assert summary in output, output
    assert harness.leftovers() == []


def _said_at(container: Any, text: str) -> float:
    """When ``container`` first wrote a line holding ``text`` (epoch seconds, the daemon's log)."""
    from datetime import datetime

    for line in container.logs(timestamps=True).decode(errors="replace").splitlines():
        stamp, _, rest = line.partition(" ")
        if text in rest:
            # RFC 3339 with nanoseconds: Python wants at most microseconds.
            base, _, fraction = stamp.rstrip("Z").partition(".")
            return datetime.fromisoformat(f"{base}.{fraction[:6]:0<6}+00:00").timestamp()
    return float("nan")
