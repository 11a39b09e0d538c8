"""The two CI shapes for real: nocrud running in a job container, with no configuration.

* Docker-outside-of-Docker: the runner image with ``/var/run/docker.sock``
  mounted talks to this machine's daemon; it must find its own container and
  join each flow's network (``container-network`` mode).
* Docker-in-Docker, GitLab's shape: a ``docker:dind``-like service (images/dind)
  on a network of the test's own, alias ``docker``, and the runner beside it with
  ``DOCKER_HOST=tcp://docker:2375``; published ports are reached at ``docker``
  (``docker-host`` mode).

Both run ``nocrud up`` on the bundled example under this session's project name.
The images come from images/runner (build.sh) and images/dind; when one cannot
be built the tests are skipped with the build's last lines. Every object a test
makes carries the ``nocrud.e2e`` label and is removed in a ``finally``.

The CI recipes of docs/ci are run as written, their script lines in order: GitHub's
on this machine's daemon, and GitLab's in a job container whose Docker service is
missing, to see it stop at its first step with the cause. GitLab's full run beside a
DinD service, with the image cache, is in test_ci_faults_e2e.py, whose DinD cases share
one service.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT, benchmark_module

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

#: The tags images/runner/build.sh and images/dind build: shared with whoever else runs these
#: tests on the same daemon, who may remove them when their session ends.
RUNNER_TAG = "nocrud/runner:test"
DIND_TAG = "nocrud/dind:1"
#: What this session's containers run: its own tags on the same images, so another session
#: removing the shared tags cannot take the image away mid-test.
RUNNER_IMAGE = f"{RUNNER_TAG}-{PROJECT}"
DIND_IMAGE = f"nocrud/dind:1-{PROJECT}"
REAPER_IMAGE = "nocrud/reaper:1"
SELECTION = "isolation_01 or isolation_02"
FLOWS = {"isolation_01", "isolation_02"}
#: On every object these tests create, so a leak is easy to find: docker ps -a -f label=nocrud.e2e
TEST_LABEL = "nocrud.e2e"
#: One `nocrud up` of two flows in a job container, image builds included (~30-60 s here).
RUN_TIMEOUT = 420
BUILD_TIMEOUT = 900
SOCKET = "/var/run/docker.sock"
REPO = Path(__file__).resolve().parents[2]
#: benchmarks/workers.py, whose DinD daemon start stands in for GitLab's docker:dind here.
bench = benchmark_module("workers")


# ---------------------------------------------------------------- images


def _skip_unbuilt(image: str, output: str) -> None:
    tail = "\n".join(output.strip().splitlines()[-15:])
    pytest.skip(f"cannot build {image}, so this CI shape cannot be tested here:\n{tail}")


def _present(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _remove_if_new(client: Any, tag: str, existed: bool) -> None:
    """Tests remove the images they built; one that was here before is the developer's cache."""
    import docker.errors

    if not existed:
        with contextlib.suppress(docker.errors.NotFound):
            client.images.remove(tag, force=True)


@contextlib.contextmanager
def _session_tag(client: Any, shared: str, own: str, build: Callable[[], str]) -> Iterator[str]:
    """Build ``shared`` (cheap when current), tag it ``own`` for this session; untag both after.

    ``shared`` is removed only when this session built it: one that was here before is the
    developer's cache.
    """
    existed = _present(client, shared)
    repository, _, tag = own.rpartition(":")
    client.images.get(build()).tag(repository, tag)
    try:
        yield own
    finally:
        _remove_if_new(client, own, existed=False)
        _remove_if_new(client, shared, existed)


#: The image fixtures are session-scoped: test_ci_faults_e2e imports them too, and finds
#: the images still built (removing them after each module cost a rebuild in the next).
@pytest.fixture(scope="session")
def runner_image(docker_client: Any, base_images: None) -> Iterator[str]:
    """nocrud/runner:test from this working tree, as this session's own tag."""
    with _session_tag(docker_client, RUNNER_TAG, RUNNER_IMAGE, _build_runner_image) as image:
        yield image


def _build_runner_image() -> str:
    """Run images/runner/build.sh (a no-op when its sources did not change)."""
    script = REPO / "images" / "runner" / "build.sh"
    try:
        proc = subprocess.run(
            [str(script), RUNNER_TAG],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        _skip_unbuilt(RUNNER_TAG, f"{script} did not finish within {exc.timeout:.0f} s")
    if proc.returncode != 0:
        _skip_unbuilt(RUNNER_TAG, proc.stdout + proc.stderr)
    return RUNNER_TAG


def _build_image(client: Any, tag: str, directory: str) -> str:
    """``docker build -t TAG images/DIRECTORY``; the layer cache makes a rebuild take seconds."""
    import docker.errors

    log: list[str] = []
    try:
        for chunk in client.api.build(
            path=str(REPO / "images" / directory),
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            timeout=BUILD_TIMEOUT,
        ):
            log.extend(str(chunk.get("stream", "")).splitlines())
            if "error" in chunk:
                _skip_unbuilt(tag, "\n".join([*log, str(chunk["error"])]))
    except docker.errors.DockerException as exc:
        _skip_unbuilt(tag, "\n".join([*log, str(exc)]))
    return tag


@pytest.fixture(scope="session")
def dind_image(docker_client: Any, base_images: None) -> Iterator[str]:
    def build() -> str:
        return _build_image(docker_client, DIND_TAG, "dind")

    with _session_tag(docker_client, DIND_TAG, DIND_IMAGE, build) as image:
        yield image


@pytest.fixture(scope="session")
def reaper_image(docker_client: Any, base_images: None) -> str:
    """nocrud's Ryuk stand-in: in GitLab, testcontainers would pull Ryuk into the DinD service."""
    return _build_image(docker_client, REAPER_IMAGE, "reaper")


# ---------------------------------------------------------------- running the runner


@dataclass(frozen=True)
class RunnerOutcome:
    """What a runner container did: exit code, output, and the networks it was left on."""

    exit_code: int
    output: str
    container_id: str
    networks: frozenset[str]


def run_runner(
    client: Any,
    harness: Any,
    *,
    config: Path,
    name: str,
    out: Path,
    environment: dict[str, str],
    mounts: dict[str, dict[str, str]] | None = None,
    network: str | None = None,
    network_mode: str | None = None,
) -> RunnerOutcome:
    """``nocrud up`` of two flows in a runner container; the container is always removed.

    The repository is mounted read-only at its own path and the test's directory
    read-write at its own, so the absolute paths in ``harness.config()`` hold
    inside the container too; ``out`` is ``/work/out``.
    """
    import requests.exceptions

    volumes = {
        str(harness.repo): {"bind": str(harness.repo), "mode": "ro"},
        str(harness.dir): {"bind": str(harness.dir), "mode": "rw"},
        str(out): {"bind": "/work/out", "mode": "rw"},
        **(mounts or {}),
    }
    command = [
        "nocrud", "-c", str(config), "up", "-j", "2", "-k", SELECTION,
        "--json", "/work/out/results.json",
    ]  # fmt: skip
    container = client.containers.create(
        RUNNER_IMAGE,
        command=command,
        name=name,
        labels={TEST_LABEL: harness.project},
        environment={"NO_COLOR": "1", "COLUMNS": "120", **environment},
        volumes=volumes,
        working_dir=str(harness.dir),
        network=network,
        network_mode=network_mode,
    )
    try:
        container.start()
        try:
            status = container.wait(timeout=RUN_TIMEOUT)
        except requests.exceptions.RequestException:
            output = container.logs().decode(errors="replace")
            pytest.fail(f"the runner did not finish within {RUN_TIMEOUT} s; its output:\n{output}")
        container.reload()
        return RunnerOutcome(
            exit_code=int(status.get("StatusCode", -1)),
            output=container.logs().decode(errors="replace"),
            container_id=str(container.id),
            networks=frozenset(container.attrs["NetworkSettings"]["Networks"] or {}),
        )
    finally:
        # SIGTERM first: nocrud then tears down its flows' containers itself (a no-op after
        # a normal exit).
        with contextlib.suppress(Exception):
            container.stop(timeout=30)
        container.remove(force=True, v=True)


def assert_both_flows_passed(outcome: RunnerOutcome, results: Path) -> None:
    assert outcome.exit_code == 0, outcome.output
    assert "2 passed" in outcome.output, outcome.output
    # nocrud only speaks of the reaper when there is none (no image, or it did not start).
    assert "reaper" not in outcome.output, outcome.output
    data = json.loads(results.read_text())
    assert data["totals"]["total"] == data["totals"]["passed"] == 2, data["totals"]
    assert {f["name"]: f["status"] for f in data["flows"]} == dict.fromkeys(FLOWS, "passed")


# ---------------------------------------------------------------- Docker-outside-of-Docker


def test_dood_runner_in_a_container_joins_the_flow_networks(
    docker_client: Any, harness: Any, runner_image: str
) -> None:
    # An app env variable of its own changes the database image's cache key, so the
    # migrate-and-commit step runs from inside the runner container too, not only the flows.
    config = harness.config(app__env={"DATABASE_URL": "{database_url}", "NOCRUD_CI_SHAPE": "dood"})
    out = harness.dir / "out"
    out.mkdir()

    outcome = run_runner(
        docker_client,
        harness,
        config=config,
        name=f"nocrud-e2e-{harness.project}-dood",
        out=out,
        environment={},
        mounts={SOCKET: {"bind": SOCKET, "mode": "rw"}},
    )

    assert_both_flows_passed(outcome, out / "results.json")
    # Zero configuration: the runner found its own container and used the flows' networks.
    assert f"docker: container-network (this container {outcome.container_id[:12]} " in (
        outcome.output
    )
    assert "building db image" in outcome.output, outcome.output
    # It left every network it joined (flows' and the db build's): only its own remains.
    assert outcome.networks == {"bridge"}
    assert harness.leftovers() == []


def test_dood_runner_on_the_host_network_uses_published_ports(
    docker_client: Any, harness: Any, runner_image: str
) -> None:
    # `network_mode = "host"` in a GitLab runner's config.toml, `docker run --network host`
    # for a Jenkins agent: the job shares the host's 127.0.0.1, where ports are published,
    # and cannot join other networks, so it must use local mode, not container-network.
    import docker.errors

    from nocrud.docker import cleanup

    config = harness.config()
    out = harness.dir / "out"
    out.mkdir()
    # A run of this host still going (owned by this test's process): the job has the host's
    # hostname but pids of its own, and its start-up sweep once took that run for dead.
    labels = cleanup.run_labels("hostrun", harness.project, role="bridge")
    live = docker_client.networks.create(
        f"nocrud-e2e-{harness.project}-hostrun", labels={**labels, TEST_LABEL: harness.project}
    )
    try:
        outcome = run_runner(
            docker_client,
            harness,
            config=config,
            name=f"nocrud-e2e-{harness.project}-dood-host",
            out=out,
            environment={},
            mounts={SOCKET: {"bind": SOCKET, "mode": "rw"}},
            network_mode="host",
        )
        try:
            live.reload()
        except docker.errors.NotFound:
            pytest.fail(f"the job's sweep removed a live run of the host:\n{outcome.output}")
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            live.remove()

    assert_both_flows_passed(outcome, out / "results.json")
    assert "container-network" not in outcome.output, outcome.output
    assert harness.leftovers() == []


# ---------------------------------------------------------------- Docker-in-Docker


@contextlib.contextmanager
def dind_service(client: Any, name: str, labels: dict[str, str]) -> Iterator[tuple[Any, Any]]:
    """GitLab's ``services: [docker:dind]``: a nested daemon on a network of our own, alias docker.

    Started as benchmarks/workers.py starts its rig's daemons (the flags ENVIRONMENT.md
    gives where --privileged fails). Yields the network and a client of the nested daemon
    (through its API port, published on 127.0.0.1 only). Everything is removed on the way
    out.
    """
    with contextlib.ExitStack() as stack:
        network = client.networks.create(name, driver="bridge", labels=labels)
        stack.callback(network.remove)
        _dind, _port, nested = bench.start_dind(
            client, stack, name, labels, network.name,
            image=DIND_IMAGE, aliases=["docker"], own_cgroup=False,
        )  # fmt: skip
        yield network, nested


def _copy_images(source: Any, target: Any, refs: list[str]) -> None:
    """``docker save REF... | DOCKER_HOST=... docker load``, streamed.

    One archive for all: the images share the Debian base layers, which then cross once
    (docker-py's ``Image.save`` takes one image; this is the same endpoint with several).
    """
    response = source.api.get(
        f"{source.api.base_url}/images/get",
        params=[("names", ref) for ref in refs],
        stream=True,
        timeout=BUILD_TIMEOUT,
    )
    with response:
        response.raise_for_status()
        target.images.load(response.iter_content(chunk_size=2 * 1024 * 1024))


def test_dind_gitlab_shape_reaches_flows_at_the_docker_host(
    docker_client: Any, harness: Any, runner_image: str, dind_image: str, reaper_image: str
) -> None:
    from nocrud.config import load_config
    from nocrud.images.build import build_app_image

    # A fresh nested daemon has no images and no registry to pull from: give it the
    # PostgreSQL base and the app image, built here under the key nocrud computes so the
    # runner finds it; nocrud builds the migrated database image inside DinD. The Debian
    # base goes too: should example_app change between here and the runner's own look
    # (someone editing the checkout), nocrud rebuilds the app inside DinD instead of failing.
    config_path = harness.config()
    config = load_config(config_path, env={})
    app_ref, _ = build_app_image(docker_client, config, say=lambda _line: None)
    out = harness.dir / "out"
    out.mkdir()
    name = f"nocrud-e2e-{harness.project}-dind"
    labels = {TEST_LABEL: harness.project}

    with dind_service(docker_client, name, labels) as (network, nested):
        refs = ["debian:bookworm-slim", config.database.image, app_ref, reaper_image]
        _copy_images(docker_client, nested, refs)
        assert {tag for image in nested.images.list() for tag in image.tags} >= set(refs)
        since = int(time.time())

        outcome = run_runner(
            docker_client,
            harness,
            config=config_path,
            name=f"{name}-runner",
            out=out,
            environment={"DOCKER_HOST": "tcp://docker:2375"},
            network=network.name,
        )

        assert_both_flows_passed(outcome, out / "results.json")
        assert "docker: docker-host (published ports on 0.0.0.0, reached at docker)" in (
            outcome.output
        )
        assert "building db image" in outcome.output, outcome.output
        # The reaper ran inside DinD, where the flows ran, and like every other container
        # there it is gone: nothing left inside DinD, and nothing of this project ever
        # reached the outer daemon.
        started = [
            event["from"]
            for event in nested.events(
                since=since,
                until=int(time.time()) + 1,
                filters={"type": "container", "event": "start"},
                decode=True,
            )
        ]
        assert reaper_image in started, started
        assert nested.containers.list(all=True) == []
        assert nested.networks.list(filters={"label": "nocrud.run"}) == []
        assert harness.leftovers() == []


# ---------------------------------------------------------------- the recipes of docs/ci

#: The flows package of the recipe runs: `nocrud up` in a recipe runs every flow there is.
QUICK_FLOWS = """
from nocrud import flow


@flow
def health_answers(ctx):
    assert ctx.api.get("/health").data["status"] == "ok"


@flow
def health_answers_twice(ctx):
    for _ in range(2):
        assert ctx.api.get("/health").data["status"] == "ok"
"""
DOCS_CI = REPO / "docs" / "ci"
#: The runner image keeps the wheels it was installed from: `pip install nocrud` is then an
#: offline no-op there, as pip cannot reach an index from containers on these machines.
OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheels/app /wheels/deps"}
#: The 2-core test machine is shared and often loaded: PostgreSQL may take longer than the
#: default 30 s to accept connections there (a timeout, not what these tests are about).
PATIENT = {"timeouts__db_ready": 120, "timeouts__app_ready": 120}


def gitlab_job(
    recipe: str = "gitlab-ci.yml", name: str | None = None
) -> tuple[dict[str, str], list[str]]:
    """A GitLab job's variables and its script lines, in the order GitLab runs them.

    ``name`` picks the job when the recipe has several; ``extends`` is followed (one level
    of keys, as GitLab merges them: the job's own win).
    """
    import yaml

    document = yaml.safe_load((DOCS_CI / recipe).read_text())
    if name is None:
        (job,) = (v for v in document.values() if isinstance(v, dict) and "script" in v)
    else:
        job = document[name]
    if "extends" in job:
        job = {**document[job["extends"]], **job}
    variables = {**document.get("variables", {}), **job.get("variables", {})}
    return {k: str(v) for k, v in variables.items()}, [
        *job.get("before_script", []),
        *job["script"],
    ]


def github_job(
    recipe: str = "github-actions.yml", name: str | None = None
) -> tuple[dict[str, str], list[str]]:
    """A GitHub job's env and its ``run:`` lines in order (``uses:`` steps are GitHub's)."""
    import yaml

    document = yaml.safe_load((DOCS_CI / recipe).read_text())
    if name is None:
        (job,) = document["jobs"].values()
    else:
        job = document["jobs"][name]
    lines = [line for step in job["steps"] for line in step.get("run", "").splitlines() if line]
    return {k: str(v) for k, v in job.get("env", {}).items()}, lines


def job_script(lines: list[str]) -> str:
    """A shell script running ``lines`` in order, echoing each, stopping at the first failure."""
    steps = [f"echo {shlex.quote('$ ' + line)}\n{line}" for line in lines]
    return "set -e\n" + "\n".join(steps) + "\necho job-succeeded\n"


def expand(variables: dict[str, str], project_dir: Path) -> dict[str, str]:
    """GitLab's ``$CI_PROJECT_DIR`` in variable values, as the runner expands them."""
    return {k: v.replace("$CI_PROJECT_DIR", str(project_dir)) for k, v in variables.items()}


def run_job_container(
    client: Any, harness: Any, *, name: str, script: str, environment: dict[str, str], network: str
) -> tuple[int, str]:
    """The script in a job container of the runner image, on ``network``; always removed."""
    container = client.containers.create(
        RUNNER_IMAGE,
        command=["sh", "-c", script],
        name=name,
        labels={TEST_LABEL: harness.project},
        environment={"NO_COLOR": "1", "COLUMNS": "120", **environment},
        volumes={
            str(harness.repo): {"bind": str(harness.repo), "mode": "ro"},
            str(harness.dir): {"bind": str(harness.dir), "mode": "rw"},
        },
        working_dir=str(harness.dir),
        network=network,
    )
    try:
        container.start()
        status = container.wait(timeout=RUN_TIMEOUT)
        return int(status.get("StatusCode", -1)), container.logs().decode(errors="replace")
    finally:
        container.remove(force=True, v=True)


def assert_in_order(output: str, lines: list[str]) -> None:
    """Every line was echoed, in the recipe's order."""
    positions = [output.find(f"$ {line}") for line in lines]
    assert -1 not in positions, output
    assert positions == sorted(positions), output


@pytest.mark.parametrize(
    ("recipe", "job"), [("gitlab-ci.yml", None), ("gitlab-ci-sharded.yml", "api-flows")]
)
def test_the_gitlab_recipe_without_its_service_fails_first_naming_the_alias(
    docker_client: Any, harness: Any, runner_image: str, recipe: str, job: str | None
) -> None:
    variables, lines = gitlab_job(recipe, job)
    assert lines[0].startswith("pip install")
    assert lines[1].startswith("if [ -f .cache/nocrud-images.tar ]; then nocrud images"), lines
    assert lines[2].startswith("nocrud doctor --wait 30"), lines
    harness.config()
    network = docker_client.networks.create(
        f"nocrud-e2e-{harness.project}-noservice",
        driver="bridge",
        labels={TEST_LABEL: harness.project},
    )
    try:
        started = time.monotonic()
        code, output = run_job_container(
            docker_client,
            harness,
            name=f"nocrud-e2e-{harness.project}-noservice-job",
            script=job_script(lines),
            environment={**expand(variables, harness.dir), **OFFLINE_PIP},
            network=network.name,
        )
        took = time.monotonic() - started
    finally:
        network.remove()
    print(f"\nGitLab recipe without its service: failed after {took:.1f} s")

    assert code == 3, output
    assert_in_order(output, lines[:3])  # no cache yet: the import's `if` skips it
    assert "'docker' does not resolve" in output, output
    assert "alias: docker" in output, output
    assert "systemctl" not in output, output
    # Nothing after doctor ran: no image step hides the cause behind a later error.
    assert "$ " + lines[3] not in output, output


def test_a_docker_host_address_on_another_network_fails_in_seconds_naming_the_network(
    docker_client: Any, harness: Any, runner_image: str
) -> None:
    """The job's network cannot reach DOCKER_HOST's address: Docker drops packets between
    bridge networks, so the address is silent, as a DinD container's IP is from a job on
    another network. The address is an unused one inside a network this test creates."""
    import ipaddress

    config = harness.config()
    label = {TEST_LABEL: harness.project}
    job_net = docker_client.networks.create(
        f"nocrud-e2e-{harness.project}-jobnet", driver="bridge", labels=label
    )
    other = docker_client.networks.create(
        f"nocrud-e2e-{harness.project}-daemonnet", driver="bridge", labels=label
    )
    try:
        other.reload()
        subnet = ipaddress.ip_network(other.attrs["IPAM"]["Config"][0]["Subnet"])
        silent = str(subnet.network_address + 200)  # inside the test's own network, unused
        started = time.monotonic()
        code, output = run_job_container(
            docker_client,
            harness,
            name=f"nocrud-e2e-{harness.project}-silent-job",
            script=f"nocrud -c {config} up",
            environment={"DOCKER_HOST": f"tcp://{silent}:2375"},
            network=job_net.name,
        )
        took = time.monotonic() - started
    finally:
        job_net.remove()
        other.remove()
    print(f"\nDOCKER_HOST on another network: failed after {took:.1f} s (was 65 s)")

    assert code == 3, output
    text = " ".join(output.split())
    assert f"the address {silent} does not answer from this network" in text, output
    # The short TCP probe said it, not the Docker client's 60 s call timeout.
    assert "no answer to a TCP connection within 4 s" in text, output
    assert "runs on the Docker daemon's network" in text, output
    assert "Traceback" not in output, output


def test_the_github_recipe_runs_as_written_on_this_machines_daemon(
    docker_client: Any, harness: Any, base_images: None
) -> None:
    env, lines = github_job()
    assert lines[0].startswith("pip install")
    assert lines[1] == "nocrud doctor --wait 30", lines
    # The sharded recipe starts the same way (its shards' lines need GitHub's matrix).
    assert github_job("github-actions-sharded.yml", "flows")[1][:2] == lines[:2]
    harness.flows(QUICK_FLOWS)
    harness.config(flows__path=str(harness.dir / "e2eflows"), **PATIENT)
    path = f"{Path(harness.command[0]).parent}{os.pathsep}{os.environ['PATH']}"
    proc = subprocess.run(
        ["bash", "-c", job_script(lines)],
        cwd=harness.dir,
        env={**os.environ, **env, "PATH": path, "PIP_NO_INDEX": "1", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert_in_order(proc.stdout, lines)
    assert "2 passed" in output, output
    assert (harness.dir / "report.xml").exists()
    assert harness.leftovers() == []
