"""Ownership a shared daemon can check, and advice that matches why Docker is unreachable.

Issue 14: under Docker-outside-of-Docker every CI job container has a new hostname,
so ``host:pid`` owners made a finished job's objects look like another host's forever.
In a container the daemon knows, the owner is that container; whoever sweeps asks the
daemon whether it still runs. Fakes stand in for the daemon (the Docker seam).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from nocrud.docker import cleanup
from nocrud.docker.engine import unreachable

LIVE = "a" * 64
DEAD = "b" * 64
STOPPED = "c" * 64


class _Api:
    """``client.api`` as far as the owner rules use it: inspect a container."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def inspect_container(self, ident: str) -> dict[str, Any]:
        self.asked.append(ident)
        states = {LIVE: "running", STOPPED: "exited"}
        if ident not in states:
            raise docker.errors.NotFound(f"No such container: {ident}")
        return {"Id": ident, "State": {"Status": states[ident]}}


class _Object:
    def __init__(self, name: str, labels: dict[str, str], removed: list[str]) -> None:
        self.name = name
        self.labels = labels
        self.attrs = {"Labels": labels, "Containers": {}}
        self._removed = removed

    def remove(self, **_kwargs: object) -> None:
        self._removed.append(self.name)

    def reload(self) -> None:
        pass


class _Collection:
    def __init__(self, objects: list[_Object]) -> None:
        self.objects = objects

    def list(self, **_kwargs: object) -> list[_Object]:
        return self.objects


class _Daemon:
    def __init__(self, owners: dict[str, str]) -> None:
        self.api = _Api()
        self.removed: list[str] = []
        self.containers = _Collection(
            [
                _Object(name, {cleanup.LABEL_RUN: "r", cleanup.LABEL_OWNER: owner}, self.removed)
                for name, owner in owners.items()
            ]
        )
        self.networks = _Collection([])


@pytest.fixture
def in_container() -> Iterator[str]:
    """This process as if it ran in a container the daemon knows."""
    own = "d" * 64
    cleanup.claim_container(own)
    try:
        yield own
    finally:
        cleanup.claim_container(None)


def _dead_process_owner() -> str:
    return subprocess.run(
        [sys.executable, "-c", "import os; print(f'{os.getpid()}:1')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_in_a_known_container_the_owner_is_the_container_and_this_process(
    in_container: str,
) -> None:
    owner = cleanup.owner()
    assert owner.startswith(f"container:{in_container}:")
    assert not cleanup.owner_is_gone(owner)
    # The same container's earlier, killed run: judged by its pid, so the next run sweeps it.
    assert cleanup.owner_is_gone(f"container:{in_container}:{_dead_process_owner()}")


def test_another_jobs_container_is_judged_by_the_daemon() -> None:
    daemon = _Daemon({})
    assert not cleanup.owner_is_gone(f"container:{LIVE}:1:1", daemon)  # type: ignore[arg-type]
    assert cleanup.owner_is_gone(f"container:{DEAD}:1:1", daemon)  # type: ignore[arg-type]
    assert cleanup.owner_is_gone(f"container:{STOPPED}:1:1", daemon)  # type: ignore[arg-type]
    # Without a daemon to ask, nobody else's objects are judged gone.
    assert not cleanup.owner_is_gone(f"container:{DEAD}:1:1")


def test_a_sweep_removes_a_finished_jobs_objects_and_spares_a_running_jobs() -> None:
    daemon = _Daemon(
        {
            "live-job-db": f"container:{LIVE}:1:1",
            "live-job-app": f"container:{LIVE}:1:1",
            "dead-job-db": f"container:{DEAD}:7:9",
            "dead-job-app": f"container:{DEAD}:7:9",
            "finished-job": f"container:{STOPPED}:1:1",
            "another-host": "elsewhere:1:1",
        }
    )
    report = cleanup.sweep(daemon)  # type: ignore[arg-type]
    assert daemon.removed == ["dead-job-db", "dead-job-app", "finished-job"]
    assert report.spared == 3
    # One question per owner container, not one per object.
    assert sorted(daemon.api.asked) == sorted([LIVE, DEAD, STOPPED])


# ---------------------------------------------------------------- the reaper


def _reaper_server() -> Any:
    path = Path(__file__).resolve().parents[3] / "images" / "reaper" / "reaper.py"
    spec = importlib.util.spec_from_file_location("nocrud_reaper_server_dood", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _ReaperApi:
    """The low-level client calls the reaper makes for a network."""

    def __init__(self) -> None:
        self.attached = {"net": {"job-container": {}, "gone-meanwhile": {}}}
        self.calls: list[str] = []

    def inspect_network(self, network: str) -> dict[str, Any]:
        return {"Containers": dict(self.attached[network])}

    def disconnect_container_from_network(self, container: str, network: str, force: bool) -> None:
        assert force
        self.calls.append(f"disconnect {container}")
        del self.attached[network][container]
        if container == "gone-meanwhile":
            raise docker.errors.NotFound("it was removed while we looked")

    def remove_network(self, network: str) -> None:
        if self.attached[network]:
            raise docker.errors.APIError("network has active endpoints")
        self.calls.append(f"remove {network}")


def test_the_reaper_disconnects_a_still_attached_job_container_before_removing_a_network() -> None:
    api = _ReaperApi()
    assert _reaper_server().DockerApi(api).remove("network", "net")
    assert api.calls == ["disconnect job-container", "disconnect gone-meanwhile", "remove net"]


# ---------------------------------------------------------------- unreachable daemon


def test_an_unresolvable_docker_host_name_points_at_the_ci_service_not_the_daemon() -> None:
    env = {"DOCKER_HOST": "tcp://no-such-service.invalid:2375"}
    message = unreachable(OSError("[Errno -2] Name or service not known"), env)
    assert "'no-such-service.invalid' does not resolve" in message
    assert "alias: no-such-service.invalid" in message
    assert "network" in message
    assert "systemctl" not in message
    assert "Start the Docker daemon" not in message


def test_a_refused_tcp_port_suggests_waiting_for_the_service() -> None:
    env = {"DOCKER_HOST": "tcp://127.0.0.1:9"}
    message = unreachable(OSError("[Errno 111] Connection refused"), env)
    assert "nothing answers there" in message
    assert "nocrud doctor --wait 30" in message


def test_a_local_socket_keeps_the_start_the_daemon_advice() -> None:
    message = unreachable(FileNotFoundError("[Errno 2] No such file or directory"), {})
    assert "Start the Docker daemon" in message


# ---------------------------------------------------------------- an address that is silent


def test_a_silent_docker_host_address_fails_in_seconds_naming_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from nocrud.docker import engine

    asked: list[tuple[tuple[str, int], float]] = []

    def dropped(address: tuple[str, int], timeout: float) -> socket.socket:
        asked.append((address, timeout))
        raise TimeoutError("timed out")

    monkeypatch.setattr(engine.socket, "create_connection", dropped)
    monkeypatch.setenv("DOCKER_HOST", "tcp://172.31.7.9:2375")
    with pytest.raises(engine.DockerUnavailableError) as caught:
        engine.connect(wait=30)  # silence is not a daemon starting: no waiting
    message = str(caught.value)
    assert asked == [(("172.31.7.9", 2375), engine.CONNECT_PROBE_SECONDS)]
    assert "the address 172.31.7.9 does not answer from this network" in message
    assert "no answer to a TCP connection within 4 s" in message
    assert "runs on the Docker daemon's network" in message and "docker -H" in message


def test_a_refused_or_local_docker_host_is_left_to_the_clients_own_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from nocrud.docker import engine

    def refused(address: tuple[str, int], timeout: float) -> socket.socket:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(engine.socket, "create_connection", refused)
    engine.probe_tcp({"DOCKER_HOST": "tcp://127.0.0.1:2375"})  # no SilentAddressError
    engine.probe_tcp({"DOCKER_HOST": "unix:///var/run/docker.sock"})
    engine.probe_tcp({})


def test_a_daemon_slow_to_answer_is_asked_again_before_the_host_rule_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under load one inspect may time out: the job still owns its objects as its container."""
    import requests.exceptions

    from nocrud.docker import engine

    answers: list[object] = [requests.exceptions.ReadTimeout("slow"), {"Id": "c0ffee" * 10}]

    def inspect_container(ref: str) -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = SimpleNamespace(api=SimpleNamespace(inspect_container=inspect_container))
    monkeypatch.setenv("NOCRUD_SELF_CONTAINER", "c0ffee")
    monkeypatch.setattr(engine.time, "sleep", lambda seconds: None)
    try:
        engine._claim_own_container(client)  # type: ignore[arg-type]
        assert cleanup.owner().startswith(f"{cleanup.CONTAINER_OWNER}{'c0ffee' * 10}:")
    finally:
        cleanup.claim_container(None)
