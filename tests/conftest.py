"""Shared fixtures: a real Docker daemon (or a clear skip), the base images, leak checks.

Docker and e2e tests use the real daemon. Each test session gets its own
project name (``t<hex>``), so its images and labelled objects are told apart
from anything else on the machine, and everything it built is removed at the end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent

# The strangers are apps of other people, with their own pytest suites (fastapi_items'
# tests_shared and tests_nocrud); e2e tests run those suites in copies, never this session.
collect_ignore_glob = ["e2e/strangers/*"]


def benchmark_module(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module (loaded once), for tests that share its code."""
    key = f"nocrud_bench_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


PROJECT = f"t{uuid.uuid4().hex[:8]}"
NOCRUD = [str(Path(sys.executable).parent / "nocrud")]


#: Eight flows that each hold their environment for a minute: runs to interrupt or kill.
SLOW_FLOWS = """
import time
from nocrud.flows import flow

for _i in range(8):
    def _make(i):
        @flow(name=f"slow_{i}")
        def slow(ctx):
            ctx.api.get("/health")
            time.sleep(60)
        globals()[f"slow_{i}"] = slow
    _make(_i)
"""


def _docker() -> Any:
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        return f"no Docker daemon reachable ({type(exc).__name__}): start Docker or set DOCKER_HOST"
    return client


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    client = _docker()
    if isinstance(client, str):
        pytest.skip(client)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_images(docker_client: Any) -> None:
    """Make sure the images of images/build-all.sh exist (cheap when they do)."""
    import docker.errors

    try:
        for image in ("nocrud/postgres:15", "nocrud/reaper:1"):
            docker_client.images.get(image)
    except docker.errors.ImageNotFound:
        subprocess.run([str(REPO / "images" / "build-all.sh")], check=True)


@pytest.fixture(scope="session")
def project(docker_client: Any, base_images: None) -> Iterator[str]:
    """This session's project name; its images are removed when the session ends."""
    yield PROJECT
    for image in docker_client.images.list(filters={"label": f"nocrud.project={PROJECT}"}):
        for tag in image.tags:
            docker_client.images.remove(tag, force=True)
    for image in docker_client.images.list(name=f"nocrud/{PROJECT}-db"):
        for tag in image.tags:
            docker_client.images.remove(tag, force=True)


def labelled(client: Any, project: str) -> list[str]:
    """Containers and networks still labelled with this project."""
    label = f"nocrud.project={project}"
    # Low-level lists: they do not inspect each object, so they cannot race a removal.
    found = [
        f"container {c['Names'][0]}"
        for c in client.api.containers(all=True, filters={"label": label})
    ]
    found += [f"network {n['Name']}" for n in client.api.networks(filters={"label": label})]
    return found


def write_config(directory: Path, project: str, **changes: Any) -> Path:
    """A nocrud.yaml for the example app under a test's own project name.

    ``changes`` are dotted keys (``app__command``) replacing values of the bundled config.
    """
    import yaml

    data = yaml.safe_load((REPO / "nocrud.yaml").read_text())
    data["project"] = project
    data["app"]["build"] = str(REPO / "example_app")
    data["database"]["migrations"] = [str(REPO / "example_app" / "migrations")]
    data["flows"]["path"] = str(REPO / "flows")
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        data.setdefault(section, {})[key] = value
    path = directory / "nocrud.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_flows(directory: Path, source: str, package: str = "e2eflows") -> Path:
    """A flows package with one module holding ``source``."""
    package_dir = directory / package
    package_dir.mkdir(parents=True, exist_ok=True)
    (package_dir / "__init__.py").write_text("")
    (package_dir / "test_flows.py").write_text(source)
    return package_dir


def run_nocrud(
    *args: str, cwd: Path, timeout: float = 600, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    env.pop("NOCRUD_CONFIG", None)
    return subprocess.run(
        [*NOCRUD, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def copy_example_app(directory: Path) -> Path:
    target = directory / "example_app"
    shutil.copytree(
        REPO / "example_app", target, ignore=shutil.ignore_patterns("__pycache__", "tests")
    )
    return target


class Harness:
    """What e2e tests need, bound to this session's project and one test's directory."""

    repo = REPO
    command = NOCRUD

    def __init__(self, client: Any, project: str, directory: Path) -> None:
        self.client = client
        self.project = project
        self.dir = directory

    def config(self, **changes: Any) -> Path:
        return write_config(self.dir, self.project, **changes)

    def flows(self, source: str) -> Path:
        return write_flows(self.dir, source)

    def copy_example_app(self) -> Path:
        return copy_example_app(self.dir)

    def run(
        self, *args: str, cwd: Path | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return run_nocrud(*args, cwd=cwd or self.dir, timeout=timeout)

    def leftovers(self, project: str | None = None) -> list[str]:
        return labelled(self.client, project or self.project)

    def running(self, role: str) -> list[Any]:
        """This project's running containers of ``role`` (``db``, ``app``, ...)."""
        labels = [f"nocrud.project={self.project}", f"nocrud.role={role}"]
        # The low-level list does not inspect each container, so it cannot race a removal.
        return list(self.client.api.containers(filters={"label": labels}))

    def sigkill_leaves_nothing(
        self, *up_args: str, role: str, count: int, timeout: float, waiting_for: str
    ) -> None:
        """SIGKILL ``nocrud up`` once ``count`` ``role`` containers run; 15 s later none is left.

        Only the reaper cleans up: no later command runs.
        """
        self.run("build")
        proc = subprocess.Popen(
            [*self.command, "up", *up_args],
            cwd=self.dir,
            env={**os.environ, "NO_COLOR": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + timeout
            while len(self.running(role)) < count:
                assert time.monotonic() < deadline, f"{waiting_for} never came up"
                time.sleep(0.2)
        finally:
            proc.kill()
            proc.wait()
        killed = time.monotonic()
        assert self.leftovers(), (
            "the run had nothing up when it was killed: the test proves nothing"
        )
        while self.leftovers() and time.monotonic() - killed < 15:
            time.sleep(0.25)
        assert self.leftovers() == [], f"still there 15 s after SIGKILL: {self.leftovers()}"

    def benchmark(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``benchmarks/<name>.py`` (at the reduced size ``args`` ask for); it must pass."""
        proc = subprocess.run(
            [sys.executable, str(self.repo / "benchmarks" / f"{name}.py"), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc


@pytest.fixture(scope="session")
def example_config(project: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A nocrud.yaml for example_app under this session's project name."""
    return write_config(tmp_path_factory.mktemp("example"), project)


@pytest.fixture
def harness(docker_client: Any, project: str, tmp_path: Path) -> Harness:
    return Harness(docker_client, project, tmp_path)


@contextlib.contextmanager
def postgres_server(harness: Harness) -> Iterator[tuple[str, str]]:
    """A user's PostgreSQL server for ``external``: a container on a network of the test's own.

    Yields its URL from here and the network's name (nocrud's app containers join it and
    reach the server as ``extpg:5432``); both are removed afterwards.
    """
    client = harness.client
    name = f"{harness.project}-extpg-{uuid.uuid4().hex[:6]}"
    labels = {"nocrud.test": harness.project}
    network = client.networks.create(f"{name}-net", labels=labels)
    container = None
    try:
        container = client.containers.run(
            "nocrud/postgres:15",
            name=name,
            detach=True,
            labels=labels,
            ports={"5432/tcp": ("127.0.0.1", None)},
        )
        network.connect(container, aliases=["extpg"])  # how nocrud's app containers reach it
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"]
        url = f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 60
        while True:
            code, _ = container.exec_run(["pg_isready", "-q", "-h", "127.0.0.1"])
            if code == 0:
                break
            assert time.monotonic() < deadline, container.logs(tail=30).decode()
            time.sleep(0.2)
        yield url, network.name
    finally:
        if container is not None:
            container.remove(force=True, v=True)
        network.remove()


def nocrud_databases(url: str) -> list[str]:
    """The databases nocrud made (``nocrud_…``) that are still on the server at ``url``."""
    import psycopg2

    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'nocrud%%'")
        return sorted(row[0] for row in cur.fetchall())
