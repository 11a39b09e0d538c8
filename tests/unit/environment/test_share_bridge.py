"""When a run's pairs share one ICC-off bridge: published ports, no --keep-failed, not Podman.

Podman's compat API accepts ``com.docker.network.bridge.enable_icc=false`` and drops it
(netavark has no such switch), so a bridge shared there would let one flow's app reach
another flow's database: on Podman every pair gets its own network.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import pytest

from nocrud.docker.podman import is_podman
from nocrud.environment.bridge import share_bridge

_engines = itertools.count()

DOCKER_VERSION = {"Version": "20.10.24", "Components": [{"Name": "Engine", "Version": "20.10.24"}]}
PODMAN_VERSION = {"Version": "4.3.1", "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}


class FakeClient:
    """Just ``version()`` and the API's base URL (one engine per fake)."""

    def __init__(self, version: dict[str, Any]) -> None:
        self.api = SimpleNamespace(base_url=f"unix:///engine{next(_engines)}.sock")
        self._version = version
        self.asked = 0

    def version(self) -> dict[str, Any]:
        self.asked += 1
        return self._version


def _run(client: FakeClient, *, mode: str = "local", keep_failed: bool = False) -> Any:
    connection = SimpleNamespace(uses_published_ports=mode != "container-network")
    return SimpleNamespace(
        engine=SimpleNamespace(client=client, connection=connection), keep_failed=keep_failed
    )


@pytest.mark.parametrize(
    ("version", "mode", "keep_failed", "shared"),
    [
        (DOCKER_VERSION, "local", False, True),
        (DOCKER_VERSION, "container-network", False, False),
        (DOCKER_VERSION, "local", True, False),
        (PODMAN_VERSION, "local", False, False),
    ],
)
def test_pairs_share_a_bridge_only_where_the_engine_keeps_icc_off(
    version: dict[str, Any], mode: str, keep_failed: bool, shared: bool
) -> None:
    assert share_bridge(_run(FakeClient(version), mode=mode, keep_failed=keep_failed)) is shared


def test_the_engine_is_asked_once() -> None:
    client = FakeClient(PODMAN_VERSION)
    assert is_podman(client) and is_podman(client)
    assert client.asked == 1
