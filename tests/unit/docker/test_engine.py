"""The Docker seam's decisions without a daemon: where published ports are reached and bound."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nocrud.docker.engine import publish_address, published_host


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "127.0.0.1"),
        ({"DOCKER_HOST": "unix:///var/run/docker.sock"}, "127.0.0.1"),
        ({"DOCKER_HOST": "tcp://docker:2375"}, "docker"),
        ({"DOCKER_HOST": "tcp://10.1.2.3:2376"}, "10.1.2.3"),
        ({"DOCKER_HOST": "tcp://docker:2375", "NOCRUD_DOCKER_HOST_IP": "172.17.0.1"}, "172.17.0.1"),
    ],
)
def test_published_host_follows_docker_host_and_override(
    env: dict[str, str], expected: str
) -> None:
    assert published_host(env) == expected


def test_ports_bind_loopback_for_a_local_daemon_and_all_interfaces_for_a_remote_one() -> None:
    assert publish_address({}) == "127.0.0.1"
    assert publish_address({"DOCKER_HOST": "tcp://docker:2375"}) == "0.0.0.0"


# ---------------------------------------------------------------- labels and owners


def test_environment_is_not_read_at_import_time() -> None:
    code = (
        "import os\n"
        "from nocrud.docker.engine import published_host\n"
        "os.environ['DOCKER_HOST'] = 'tcp://late:2375'\n"
        "print(published_host())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "NOCRUD_DOCKER_HOST_IP")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "late"
