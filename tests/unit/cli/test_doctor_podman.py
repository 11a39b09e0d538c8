"""``nocrud doctor`` on Podman's Docker-compatible service: engine and mode named, the
reaper's needs (its image in Podman's store, a socket to mount) failing the check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nocrud.cli.doctor import CheckStatus, exit_code
from nocrud.docker.podman import engine_kind
from tests.unit.cli.test_doctor import BASE_IMAGE, DEFAULT_DB_IMAGE, FakeDocker, checks_with, host

#: What Podman 4.3's compat ``/version`` answers (trimmed).
PODMAN_VERSION = {
    "Version": "4.3.1",
    "ApiVersion": "1.41",
    "Os": "linux",
    "Arch": "amd64",
    "Components": [
        {"Name": "Podman Engine", "Version": "4.3.1", "Details": {"APIVersion": "4.3.1"}},
        {"Name": "Conmon", "Version": "conmon version 2.1.6"},
    ],
}
PODMAN_SOCKET = {"DOCKER_HOST": "unix:///run/podman/podman.sock"}


class FakePodman(FakeDocker):
    def __init__(self, *, rootless: bool = False, **kwargs: Any) -> None:
        super().__init__(info={"Rootless": rootless}, **kwargs)

    def version(self) -> dict[str, Any]:
        return PODMAN_VERSION


def test_podman_is_named_with_its_mode(tmp_path: Path) -> None:
    checks = checks_with(FakePodman(), host(tmp_path, env=PODMAN_SOCKET))
    assert "Podman engine 4.3.1 (API 1.41, linux/amd64)" in checks["docker"].detail
    assert "Podman 4.3.1, rootful, through its Docker-compatible API" in checks["docker"].detail
    assert checks["reaper"].status is CheckStatus.OK
    assert exit_code(list(checks.values())) == 0
    rootless = checks_with(FakePodman(rootless=True), host(tmp_path, env=PODMAN_SOCKET))
    assert "Podman 4.3.1, rootless" in rootless["docker"].detail


def test_no_reaper_image_in_podmans_store_fails_with_the_fix(tmp_path: Path) -> None:
    client = FakePodman(images=[BASE_IMAGE, DEFAULT_DB_IMAGE])
    checks = checks_with(client, host(tmp_path, env=PODMAN_SOCKET))
    reaper = checks["reaper"]
    assert reaper.status is CheckStatus.FAIL
    assert "no reaper image in Podman's store" in reaper.detail
    assert "`nocrud build` builds nocrud/reaper:1 into Podman's store" in reaper.fix
    assert exit_code(list(checks.values())) == 3


def test_podman_over_tcp_without_a_socket_to_mount_fails(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": "tcp://127.0.0.1:8888"}
    checks = checks_with(FakePodman(), host(tmp_path, env=env))
    assert checks["reaper"].status is CheckStatus.FAIL
    assert "has none to mount" in checks["reaper"].detail
    assert "TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE" in checks["reaper"].fix
    told = {**env, "TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE": "/run/podman/podman.sock"}
    assert checks_with(FakePodman(), host(tmp_path, env=told))["reaper"].status is CheckStatus.OK


def test_docker_stays_docker_and_keeps_a_missing_reaper_a_warning(tmp_path: Path) -> None:
    """A fresh Docker-in-Docker CI service lacks it until the first `nocrud up` builds it."""
    checks = checks_with(FakeDocker(images=[BASE_IMAGE, DEFAULT_DB_IMAGE]), host(tmp_path))
    assert checks["docker"].detail.startswith("Docker engine 26.1.4")
    assert checks["reaper"].status is CheckStatus.WARN


def test_engine_kind_reads_docker_rootless_from_security_options() -> None:
    kind = engine_kind({"Version": "27.0"}, {"SecurityOptions": ["name=rootless"]})
    assert (kind.name, kind.rootless, kind.describe()) == ("Docker", True, "Docker 27.0, rootless")
    unknown = engine_kind({"Components": [{"Name": "Podman Engine", "Version": "5.0"}]}, {})
    assert unknown.describe() == "Podman 5.0"
