"""The reaper on a real daemon: a SIGKILLed process's containers and network are removed.

A child Python process starts the reaper with :func:`nocrud.docker.reaper.start_reaper`, creates
two containers and a network through nocrud's Docker resources, each labelled with this test's
``nocrud.test=<uuid>``, and prints READY; the test kills it (or lets it exit) and watches
the labelled objects disappear. Everything a test creates is removed in ``finally``, the
reaper container too, whatever the outcome.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
IMAGE = "nocrud/reaper:1"
POSTGRES = "nocrud/postgres:15"
#: The promise: everything is gone this long after the kill.
BUDGET = 15.0
POLL = 0.25

CHILD = """
import sys, time, uuid
from nocrud.docker.engine import open_engine
from nocrud.docker.reaper import session_labels, start_early, start_reaper
from nocrud.docker.resources import Container, Network
from testcontainers.core.labels import SESSION_ID

mode = sys.argv[2]
label = {"nocrud.test": sys.argv[1], **session_labels()}
print("SESSION", SESSION_ID, flush=True)
if mode.startswith("early"):
    start_early()  # as `nocrud up` does, before its imports and its flows
engine = open_engine()
described = start_reaper(
    engine.client, say=lambda line: print("SAY", line, flush=True), connection=engine.connection
)
print("REAPER", described, flush=True)
if described is None:
    sys.exit(3)
name = "nocrud-test-" + uuid.uuid4().hex[:8]
network = Network(engine.client, name, labels=label, connection=engine.connection).create()
made = [
    Container(engine.client, sys.argv[3], what="db", labels=label, network=name).start()
    for _ in range(2)
]
print("READY", flush=True)
if mode.endswith("sleep"):
    time.sleep(300)
if mode == "clean-exit":  # a run that removed its own, as every run does
    for container in made:
        container.remove()
    network.remove()
    print("EXITING", time.time(), flush=True)
# "exit": leave both containers and the network running and end normally.
"""


@pytest.fixture(scope="module")
def reaper_image(docker_client: Any, base_images: None) -> str:
    """nocrud/reaper:1, built from images/reaper when missing (kept, like the base images)."""
    import docker.errors

    try:
        docker_client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        subprocess.run(
            ["docker", "build", "-q", "-t", IMAGE, str(REPO / "images" / "reaper")],
            check=True,
            capture_output=True,
        )
    return IMAGE


def survivors(client: Any, tag: str) -> list[str]:
    """Containers and networks still carrying this test's label."""
    label = f"nocrud.test={tag}"
    found = [
        f"container {c.name}"
        for c in client.containers.list(all=True, ignore_removed=True, filters={"label": label})
    ]
    found += [f"network {n.name}" for n in client.networks.list(filters={"label": label})]
    return found


def reaper_containers(client: Any, session: str | None) -> list[Any]:
    if session is None:
        return []
    return client.containers.list(
        all=True, ignore_removed=True, filters={"name": f"testcontainers-ryuk-{session}"}
    )


def remove_leftovers(client: Any, tag: str, session: str | None) -> None:
    """Remove what this test made, whether or not the reaper did its job."""
    import docker.errors

    label = f"nocrud.test={tag}"
    for container in [
        *client.containers.list(all=True, ignore_removed=True, filters={"label": label}),
        *reaper_containers(client, session),
    ]:
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # "removal already in progress"
            if exc.status_code != 409:
                raise
    for network in client.networks.list(filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()


def wait_until(check: Any, timeout: float) -> tuple[bool, float]:
    """Poll ``check()`` every POLL seconds; (True, seconds taken) once it holds."""
    started = time.monotonic()
    while True:
        if check():
            return True, time.monotonic() - started
        if time.monotonic() - started > timeout:
            return False, time.monotonic() - started
        time.sleep(POLL)


class Child:
    """The child process, its output lines as they come, and what it told us."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.session: str | None = None
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, word: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {word} within {timeout:.0f}s; output so far:\n" + self.output())
            if line is None:
                pytest.fail(f"child ended before {word}; output:\n" + self.output())
            self.lines.append(line)
            if line.startswith("SESSION "):
                self.session = line.split()[1]
            if line == word:
                return

    def output(self) -> str:
        return "\n".join(self.lines)

    def finish(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self._reader.join(10)
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.lines.append(line)


def connection_env(client: Any) -> dict[str, str]:
    """Make testcontainers reach the reaper on 127.0.0.1 when nocrud itself would.

    Inside a container (as on the CI machine) testcontainers goes through docker0's
    gateway by default; the tests' network rule allows only ports published on
    127.0.0.1 and networks the tests created.
    """
    from nocrud.docker.engine import detect_connection

    if "TESTCONTAINERS_CONNECTION_MODE" in os.environ:
        return {}
    if detect_connection(client).mode == "local":
        return {"TESTCONTAINERS_CONNECTION_MODE": "docker_host"}
    return {}


@pytest.fixture
def child_run(docker_client: Any, reaper_image: str) -> Iterator[Any]:
    """Start the child in a given mode; afterwards kill it and remove whatever is left."""
    runs: list[tuple[Child, str]] = []

    def start(mode: str, image: str = reaper_image) -> tuple[Child, str]:
        tag = str(uuid.uuid4())
        env = {**os.environ, **connection_env(docker_client), "RYUK_CONTAINER_IMAGE": image}
        env.pop("TESTCONTAINERS_RYUK_DISABLED", None)
        env.pop("RYUK_RECONNECTION_TIMEOUT", None)
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, tag, mode, POSTGRES],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=REPO,
        )
        child = Child(proc)
        runs.append((child, tag))
        return child, tag

    try:
        yield start
    finally:
        for child, tag in runs:
            try:
                child.finish()
            finally:
                if child.proc.stdout is not None:
                    child.proc.stdout.close()
                remove_leftovers(docker_client, tag, child.session)


def test_sigkill_leaves_nothing_behind_within_15s(docker_client: Any, child_run: Any) -> None:
    """`nocrud up`'s path: the reaper starts on a thread while the run gets ready.

    Its filter is in place before the first container exists, and a SIGKILL leaves nothing.
    """
    child, tag = child_run("early-sleep")
    child.wait_for("READY", timeout=120)
    assert len(survivors(docker_client, tag)) == 3, child.output()
    (reaper,) = reaper_containers(docker_client, child.session)
    assert reaper.labels["org.testcontainers.ryuk"] == "true"
    assert reaper.labels["nocrud.role"] == "reaper"
    logs = reaper.logs(timestamps=True).decode()
    (added,) = [line.split()[0] for line in logs.splitlines() if "Adding filter" in line]
    created = [
        c.attrs["Created"]
        for c in docker_client.containers.list(all=True, filters={"label": f"nocrud.test={tag}"})
    ]
    # RFC 3339 with nanoseconds, both from the daemon's clock: they sort as text.
    assert len(created) == 2 and all(added < when for when in created), (added, created, logs)

    child.proc.send_signal(signal.SIGKILL)
    gone, seconds = wait_until(lambda: not survivors(docker_client, tag), BUDGET)
    left = survivors(docker_client, tag)
    assert gone, f"still there {BUDGET:.0f}s after SIGKILL: {left}\nchild output:\n{child.output()}"
    print(f"\nkill-to-gone: {seconds:.2f}s")
    reaper_gone, _ = wait_until(lambda: not reaper_containers(docker_client, child.session), 10)
    assert reaper_gone, "the reaper container outlived its work"


def test_a_run_that_removed_its_own_does_not_wait_for_the_reaper_which_goes_by_itself(
    docker_client: Any, child_run: Any
) -> None:
    """The backstop of not waiting: the reaper's SIGTERM, then Docker's auto_remove."""
    child, tag = child_run("clean-exit")
    child.wait_for("READY", timeout=120)
    assert child.proc.wait(60) == 0, child.output()
    child.finish()
    assert survivors(docker_client, tag) == []
    gone, seconds = wait_until(lambda: not reaper_containers(docker_client, child.session), 10)
    assert gone, "the reaper container outlived the run by 10 s"
    print(f"\nreaper gone {seconds:.2f}s after the exit")


def test_a_normal_exit_with_leftovers_cleans_up_and_removes_the_reaper(
    docker_client: Any, child_run: Any
) -> None:
    child, tag = child_run("exit")
    child.wait_for("READY", timeout=120)
    assert child.proc.wait(60) == 0, child.output()
    # The exit handler waited for the reaper to finish: nothing needs polling for long.
    gone, seconds = wait_until(lambda: not survivors(docker_client, tag), 5)
    assert gone, f"left after a normal exit: {survivors(docker_client, tag)}"
    assert not reaper_containers(docker_client, child.session)
    print(f"\nexit-to-gone: {seconds:.2f}s")


def test_an_unusable_reaper_image_turns_the_reaper_off_with_a_reason(
    docker_client: Any, child_run: Any
) -> None:
    child, _tag = child_run("exit", image="nocrud/no-such-reaper:0")
    child.wait_for("REAPER None", timeout=120)
    assert child.proc.wait(60) == 3
    said = [line for line in child.lines if line.startswith("SAY ")]
    assert len(said) == 1, child.output()
    assert said[0].startswith("SAY reaper nocrud/no-such-reaper:0 did not start (")
    assert said[0].endswith("removed by the next run or `nocrud clean`")
    assert not reaper_containers(docker_client, child.session)


# ----------------------------------------------------------------- the image on its own


@pytest.fixture
def run_reaper(docker_client: Any, reaper_image: str) -> Iterator[Any]:
    """Run the reaper container directly (not through testcontainers); removed afterwards."""
    from testcontainers.core.config import testcontainers_config

    from nocrud.docker.engine import publish_address

    started: list[Any] = []

    def run(**env: str) -> Any:
        container = docker_client.containers.run(
            reaper_image,
            detach=True,
            environment=env,
            volumes={testcontainers_config.ryuk_docker_socket: {"bind": "/var/run/docker.sock"}},
            ports={"8080/tcp": (publish_address(), None)},
            labels={"nocrud.test": "reaper-image"},
        )
        started.append(container)
        return container

    try:
        yield run
    finally:
        import docker.errors

        for container in started:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def _logs(container: Any) -> str:
    return str(container.logs().decode(errors="replace"))


def _connect(container: Any) -> socket.socket:
    from nocrud.docker.engine import published_host

    container.reload()
    port = int(container.ports["8080/tcp"][0]["HostPort"])
    deadline = time.monotonic() + 20
    while "Started!" not in _logs(container):
        assert time.monotonic() < deadline, _logs(container)
        time.sleep(0.1)
    return socket.create_connection((published_host(), port), timeout=10)


def _ack(sock: socket.socket, line: str) -> bytes:
    sock.sendall(line.encode())
    return sock.recv(16)


def test_it_exits_when_nobody_connects(run_reaper: Any) -> None:
    container = run_reaper(RYUK_CONNECTION_TIMEOUT="1s")
    assert container.wait(timeout=30)["StatusCode"] == 0
    logs = _logs(container)
    assert "Started!" in logs
    assert "nobody connected within the connection timeout" in logs


def test_sigterm_waits_for_the_client_then_removes_what_all_labels_of_a_set_match(
    docker_client: Any, run_reaper: Any
) -> None:
    tag = str(uuid.uuid4())
    docker_client.containers.create(
        POSTGRES, labels={"nocrud.test": tag, "nocrud.part": "a"}, command=["true"]
    )
    spared = docker_client.containers.create(
        POSTGRES, labels={"nocrud.test": tag, "nocrud.part": "b"}, command=["true"]
    )
    try:
        container = run_reaper(RYUK_RECONNECTION_TIMEOUT="10m", RYUK_SHUTDOWN_TIMEOUT="10m")
        with _connect(container) as sock:
            assert _ack(sock, f"label=nocrud.test={tag}&label=nocrud.part=a\r\n") == b"ACK\n"
            container.kill(signal="SIGTERM")
            time.sleep(1.0)  # a client is still connected: nothing may go yet
            assert len(survivors(docker_client, tag)) == 2, _logs(container)
        assert container.wait(timeout=30)["StatusCode"] == 0, _logs(container)
        assert survivors(docker_client, tag) == [f"container {spared.name}"], _logs(container)
        assert "Removed 1 container(s), 0 network(s), 0 volume(s) 0 image(s)" in _logs(container)
    finally:
        remove_leftovers(docker_client, tag, None)
