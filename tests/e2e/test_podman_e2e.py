"""nocrud on Podman, through the real CLI and a Podman API service this module starts.

The service listens on a socket of its own under a temporary directory (never the
machine's ``/run/podman/podman.sock``) and is stopped at the end; ``DOCKER_HOST`` points
nocrud at it. Every strategy runs the isolation flows (they fail if two flows share
rows) and leaves nothing labelled; a run SIGKILLed under ``pool --warm 2`` leaves
nothing 15 s later (the reaper, started in Podman with Podman's socket mounted);
doctor fails, with the fix, when the reaper image is missing from Podman's store.

nocrud's base images are copied from the Docker daemon when it has them (faster than
building them again); otherwise nocrud builds them into Podman's store on first use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT, SLOW_FLOWS, Harness, postgres_server

pytestmark = [pytest.mark.e2e, pytest.mark.podman]

#: Two isolation flows and a CRUD flow: small, and they fail if two flows share data.
SELECTION = "isolation_01 or isolation_02 or site_crud"
#: A shared 2-core machine can take a minute to start PostgreSQL or gunicorn under load.
PATIENT = {"timeouts__app_ready": 240, "timeouts__db_ready": 120}
#: The Docker daemon's address before any test here pointed DOCKER_HOST at Podman.
DOCKER_HOST = os.environ.get("DOCKER_HOST")
#: Images a run needs that nocrud would otherwise build into Podman's store.
BASE_IMAGES = ("debian:bookworm-slim", "nocrud/postgres:15", "nocrud/reaper:1")


@pytest.fixture(scope="module")
def podman_url() -> Iterator[str]:
    """A Podman API service on a socket of this module's own; stopped at the end."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (Debian: apt-get install podman; .ci/run does)")
    directory = Path(tempfile.mkdtemp(prefix="nocrud-podman-"))
    url = f"unix://{directory / 'podman.sock'}"
    log = (directory / "service.log").open("w")
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", url], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            assert service.poll() is None, (directory / "service.log").read_text()
            assert time.monotonic() < deadline, "the Podman service did not answer in 30 s"
            time.sleep(0.2)
        yield url
    finally:
        service.terminate()
        try:
            service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def _answers(url: str) -> bool:
    import docker

    if not Path(url.removeprefix("unix://")).exists():
        return False
    client = docker.DockerClient(base_url=url, timeout=30)
    try:
        return bool(client.ping())
    except Exception:  # not listening yet
        return False
    finally:
        client.close()


@pytest.fixture(scope="module")
def podman_client(podman_url: str) -> Iterator[Any]:
    import docker

    client = docker.DockerClient(base_url=podman_url, timeout=120)
    yield client
    # This session's images in Podman's store (its app and database images).
    for image in client.images.list(filters={"label": f"nocrud.project={PROJECT}"}):
        for tag in image.tags:
            client.images.remove(tag, force=True)
    for image in client.images.list():
        for tag in image.tags:
            if f"nocrud/{PROJECT}-" in tag:
                client.images.remove(tag, force=True)
    client.close()


def _has(client: Any, ref: str) -> bool:
    import docker.errors

    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


@pytest.fixture(scope="module")
def podman_images(podman_client: Any) -> None:
    """Copy the base images from the Docker daemon into Podman's store when it has them."""
    missing = [ref for ref in BASE_IMAGES if not _has(podman_client, ref)]
    if not missing or shutil.which("docker") is None:
        return
    present = subprocess.run(
        ["docker", "image", "inspect", *missing], capture_output=True, check=False
    )
    if present.returncode != 0:
        return  # nocrud builds them into Podman on first use
    with subprocess.Popen(["docker", "save", *missing], stdout=subprocess.PIPE) as save:
        subprocess.run(["podman", "load"], stdin=save.stdout, capture_output=True, check=True)
    assert save.returncode == 0, f"docker save {' '.join(missing)} failed"
    for ref in missing:
        # `podman load` of an unqualified name keeps it under localhost/; the Docker API
        # (and so nocrud) looks short names up under docker.io/library/ too.
        if not _has(podman_client, ref):
            qualified = f"docker.io/library/{ref}" if "/" not in ref else f"docker.io/{ref}"
            subprocess.run(["podman", "tag", f"localhost/{ref}", qualified], check=True)


@pytest.fixture
def podman(
    podman_client: Any, podman_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Harness:
    """The e2e harness with nocrud (and the reaper) pointed at the test's Podman service."""
    monkeypatch.setenv("DOCKER_HOST", podman_url)
    for name in ("RYUK_CONTAINER_IMAGE", "TESTCONTAINERS_RYUK_DISABLED", "NOCRUD_STRATEGY"):
        monkeypatch.delenv(name, raising=False)
    return Harness(podman_client, PROJECT, tmp_path)


def _passed(harness: Harness, proc: subprocess.CompletedProcess[str], count: int) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"{count} passed" in out, out
    assert harness.leftovers() == [], harness.leftovers()


def test_doctor_names_podman_and_fails_with_the_fix_without_the_reaper_image(
    podman: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _has(podman.client, "nocrud/reaper:1"):
        # Not this test's to remove from a shared store: name a reaper image that is not there.
        monkeypatch.setenv("RYUK_CONTAINER_IMAGE", f"nocrud/{PROJECT}-no-reaper:0")
    podman.config()
    proc = podman.run("doctor", "--json", timeout=120)
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Podman engine" in checks["docker"]["detail"], checks["docker"]
    assert "rootful" in checks["docker"]["detail"] or "rootless" in checks["docker"]["detail"]
    assert checks["reaper"]["status"] == "fail", checks["reaper"]
    assert "nocrud build" in checks["reaper"]["fix"], checks["reaper"]


@pytest.mark.usefixtures("podman_images")
@pytest.mark.parametrize("strategy", ["image", "pool", "template", "migrate"])
def test_a_strategy_passes_the_isolation_flows_on_podman_and_leaves_nothing(
    podman: Harness, strategy: str
) -> None:
    podman.config(run__strategy=strategy, **PATIENT)
    proc = podman.run("up", "-j", "2", "-k", SELECTION, "--no-record", timeout=900)
    _passed(podman, proc, 3)


@pytest.mark.usefixtures("podman_images")
def test_external_on_podman_drops_every_database(podman: Harness) -> None:
    from tests.conftest import nocrud_databases

    with postgres_server(podman) as (url, network):
        podman.config(
            run__strategy="external",
            database__external={"app_host": "extpg:5432", "network": network},
            **PATIENT,
        )
        env_url = {"NOCRUD_EXTERNAL_URL": url}
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env_url.items():
                patch.setenv(key, value)
            proc = podman.run("up", "-j", "2", "-k", SELECTION, "--no-record", timeout=900)
        _passed(podman, proc, 3)
        assert nocrud_databases(url) == []


@pytest.mark.usefixtures("podman_images")
def test_sigkill_under_pool_warm_2_leaves_nothing_on_podman(podman: Harness) -> None:
    podman.config(
        run__strategy="pool",
        flows__path=str(podman.flows(SLOW_FLOWS)),
        timeouts__db_ready=120,
    )
    # Two pairs for the running flows and at least one warm one ahead of them.
    podman.sigkill_leaves_nothing(
        "-j", "2", "--warm", "2", role="db", count=3, timeout=300, waiting_for="the warm pairs"
    )


@pytest.mark.docker
@pytest.mark.usefixtures("podman_images", "docker_client")
def test_engines_benchmark_compares_docker_and_podman_at_reduced_size(
    podman: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """benchmarks/engines.py with one flow, one round: both engines timed, a ratio printed."""
    # Docker as the session found it; Podman: a service the script starts on its own socket.
    if DOCKER_HOST is None:
        monkeypatch.delenv("DOCKER_HOST")
    else:
        monkeypatch.setenv("DOCKER_HOST", DOCKER_HOST)
    proc = podman.benchmark(
        "engines", "--strategies", "image", "-k", "isolation_01", "--rounds", "1"
    )
    lines = proc.stdout.splitlines()
    timed = [line.split() for line in lines if line.startswith("round 1")]
    assert [(row[2], row[3]) for row in timed] == [("image", "docker"), ("image", "podman")]
    assert all(float(row[4]) > 0 for row in timed), lines
    summary = next(line for line in lines if line.startswith("image "))
    assert "podman/docker speed-up" in summary, lines
