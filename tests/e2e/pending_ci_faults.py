"""Issue 14 e2e cases written but NOT yet passing: pytest does not collect this file.

Run them with ``v/bin/pytest tests/e2e/pending_ci_faults.py -s`` (pass the file
explicitly) and move each into test_ci_faults_e2e.py / test_ci_shapes.py once it passes.

* ``test_dood_a_later_jobs_sweep_…``: failed once on the loaded 2-core machine: the later
  job's ``nocrud clean`` spared the dead job's objects ("6 object(s) of runs still going").
  The likely cause is the test's own: the dead job's container was removed with errors
  suppressed and may still have existed (a running owner is spared, by design). The wait
  for its removal below is the fix tried; not re-run yet.
* ``test_dind_losing_the_daemon_…`` and ``test_the_gitlab_recipe_runs_as_written_…``: not
  run to the end (the DinD image was being rebuilt under a load average of 50).
"""

from __future__ import annotations

import contextlib
import json
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from tests.e2e.test_ci_faults_e2e import (
    PATIENT,
    SHORT_FLOWS,
    SLOW_FLOWS,
    STARTUP_TIMEOUT,
    _kill_nocrud,
    _logs,
    _objects_of,
    _running_flows,
    _start_slow_job,
    _wait_until,
    job_container,
)
from tests.e2e.test_ci_shapes import (
    OFFLINE_PIP,
    QUICK_FLOWS,
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

__all__ = ["dind_image", "reaper_image", "runner_image"]


def _container_gone(client: Any, ident: str) -> bool:
    import docker.errors

    try:
        client.containers.get(ident)
    except docker.errors.NotFound:
        return True
    return False


def test_dood_a_later_jobs_sweep_removes_a_dead_jobs_objects_and_spares_a_live_jobs(
    docker_client: Any, harness: Any, runner_image: str, reaper_image: str
) -> None:
    config = harness.config(flows__path=str(harness.flows(SLOW_FLOWS)), **PATIENT)
    name = f"nocrud-e2e-{harness.project}"
    try:
        # A job killed without a reaper (disabled, or none could start), then gone itself.
        with _start_slow_job(
            docker_client,
            harness,
            config,
            f"{name}-dead",
            environment={"TESTCONTAINERS_RYUK_DISABLED": "true"},
        ) as dead:
            _running_flows(docker_client, harness, dead, 2)
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

        # A job whose flows are still running on the same daemon.
        with _start_slow_job(docker_client, harness, config, f"{name}-live") as live:
            _running_flows(docker_client, harness, live, 2)
            live_before = sorted(_objects_of(docker_client, harness.project, live.id))

            # A later job: its doctor sees the dead job's objects, its clean removes them.
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
            print(f"\nDooD later job: doctor + clean took {took:.1f} s")

            assert status["StatusCode"] == 0, output
            assert "whose process is gone" in output, output
            assert "of runs still going" in output, output
            assert _objects_of(docker_client, harness.project, dead_id) == []
            assert sorted(_objects_of(docker_client, harness.project, live.id)) == live_before
            live.reload()
            assert live.status == "running"
    finally:
        # This session's own project only: the live job's flows, if anything is left.
        for item in harness.leftovers():
            kind, _, object_name = item.partition(" ")
            with contextlib.suppress(Exception):
                if kind == "container":
                    docker_client.containers.get(object_name.lstrip("/")).remove(force=True)
        for network in docker_client.networks.list(
            filters={"label": f"nocrud.project={harness.project}"}
        ):
            network.reload()
            for member in network.attrs.get("Containers") or {}:
                with contextlib.suppress(Exception):
                    network.disconnect(member, force=True)
            with contextlib.suppress(Exception):
                network.remove()
    assert harness.leftovers() == []


def test_dind_losing_the_daemon_mid_run_is_one_cause_line_exit_3_and_flows_not_run(
    docker_client: Any, harness: Any, runner_image: str, dind_image: str, reaper_image: str
) -> None:
    from nocrud.config import load_config
    from nocrud.images.build import build_app_image

    config_path = harness.config(flows__path=str(harness.flows(SHORT_FLOWS)), **PATIENT)
    config = load_config(config_path, env={})
    app_ref, _ = build_app_image(docker_client, config, say=lambda _line: None)
    out = harness.dir / "out"
    out.mkdir()
    name = f"nocrud-e2e-{harness.project}-lost"

    with dind_service(docker_client, name, {TEST_LABEL: harness.project}) as (network, nested):
        _copy_images(
            docker_client,
            nested,
            ["debian:bookworm-slim", config.database.image, app_ref, reaper_image],
        )
        dind = docker_client.containers.get(name)
        script = (
            f"nocrud -c {config_path} up -j 2 --junit {out}/report.xml --json {out}/results.json;"
            " echo exit=$?"
        )
        with job_container(
            docker_client,
            harness,
            name=f"{name}-runner",
            script=script,
            environment={"DOCKER_HOST": "tcp://docker:2375"},
            socket=False,
            network=network.name,
        ) as job:
            _wait_until(
                "two flows passing",
                lambda: _logs(job)().count("PASSED ") >= 2,
                STARTUP_TIMEOUT,
                _logs(job),
            )
            dind.kill()  # the service dies, as a crashed or OOM-killed dind does
            lost = time.monotonic()
            job.wait(timeout=300)
            took = time.monotonic() - lost
            output = _logs(job)()
    print(f"\nDinD lost: nocrud exited {took:.1f} s after the daemon died")

    assert "exit=3" in output, output
    cause = [line for line in output.splitlines() if "lost the Docker daemon" in line]
    assert len(cause) == 1, output
    assert cause[0].startswith("error: lost the Docker daemon at tcp://docker:2375 after "), cause
    assert "Traceback" not in output, output
    assert "DockerException" not in output, output

    results = json.loads((out / "results.json").read_text())
    statuses = {f["name"]: f["status"] for f in results["flows"]}
    assert set(statuses) == {f"short_{i}" for i in range(8)}
    assert set(statuses.values()) <= {"passed", "skipped"}, statuses
    passed = sum(1 for s in statuses.values() if s == "passed")
    assert passed >= 2, statuses
    assert f"after {passed} flow" in cause[0]
    assert results["infrastructure"] is True
    skipped = [f for f in results["flows"] if f["status"] == "skipped"]
    assert skipped, statuses
    assert all("lost its Docker daemon" in f["message"] for f in skipped), skipped
    # The JUnit report does not blame the flows: no failure or error, the rest skipped.
    suite = ET.parse(out / "report.xml").getroot()
    assert suite.get("failures") == "0" and suite.get("errors") == "0", ET.tostring(suite)
    assert suite.get("skipped") == str(len(skipped))
    assert harness.leftovers() == []


def test_the_gitlab_recipe_runs_as_written_beside_a_dind_service_with_the_image_cache(
    docker_client: Any, harness: Any, runner_image: str, dind_image: str, reaper_image: str
) -> None:
    variables, lines = gitlab_job()
    assert lines[0].startswith("pip install")
    assert lines[1] == "nocrud doctor --wait 30", lines  # before anything that needs Docker
    harness.flows(QUICK_FLOWS)
    harness.config(flows__path=str(harness.dir / "e2eflows"), **PATIENT)
    # The CI cache of an earlier job: nocrud's own images and this project's, exported here.
    cache = harness.dir / ".cache" / "nocrud-images.tar"
    cache.parent.mkdir()
    exported = harness.run("images", "export", str(cache))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    name = f"nocrud-e2e-{harness.project}-recipe"

    with dind_service(docker_client, name, {TEST_LABEL: harness.project}) as (network, nested):
        started = time.monotonic()
        code, output = run_job_container(
            docker_client,
            harness,
            name=f"{name}-job",
            script=job_script(lines),
            environment={**expand(variables, harness.dir), **OFFLINE_PIP},
            network=network.name,
        )
        took = time.monotonic() - started
        assert nested.containers.list(all=True) == []
    print(f"\nGitLab recipe in DinD: {took:.1f} s from the job's start")

    assert code == 0, output
    assert_in_order(output, lines)
    assert "job-succeeded" in output, output
    assert "ready to run flows" in output, output
    assert "loaded " in output, output  # the cache filled the empty service
    assert "2 passed" in output, output
    assert (harness.dir / "report.xml").exists()
    assert json.loads((harness.dir / "results.json").read_text())["totals"]["passed"] == 2
    assert harness.leftovers() == []
