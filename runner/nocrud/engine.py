"""The Docker seam: connecting to the engine and knowing where published ports live.

Every other module gets its Docker client from :func:`connect`, so there is one
place that turns "the daemon is not there" into an error a user can act on, and
one place (:func:`published_host`) that decides which address reaches a port a
container published: 127.0.0.1 for a local daemon, the daemon's host for
``DOCKER_HOST=tcp://HOST:PORT`` (GitLab's ``docker:dind`` service), or whatever
``NOCRUD_DOCKER_HOST_IP`` says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import docker
import docker.errors
import requests.exceptions


class DockerUnavailableError(Exception):
    """The Docker engine cannot be reached; the message says where we looked and what to do."""


@dataclass(frozen=True)
class EngineInfo:
    """What we learned about the engine when connecting."""

    docker_host: str
    server_version: str
    api_version: str
    published_host: str


def describe_docker_host(env: Mapping[str, str] | None = None) -> str:
    """Where the Docker client will look, for messages: DOCKER_HOST or the default socket."""
    env = os.environ if env is None else env
    return env.get("DOCKER_HOST") or "unix:///var/run/docker.sock (default; DOCKER_HOST is unset)"


def published_host(env: Mapping[str, str] | None = None) -> str:
    """The address on which ports published by containers can be reached from this process.

    Args:
        env: Environment to read; ``os.environ`` at call time when omitted.

    Returns:
        ``NOCRUD_DOCKER_HOST_IP`` when set; the host of ``DOCKER_HOST`` when it is
        ``tcp://HOST:PORT``; otherwise ``127.0.0.1``.
    """
    env = os.environ if env is None else env
    override = env.get("NOCRUD_DOCKER_HOST_IP", "").strip()
    if override:
        return override
    docker_host = env.get("DOCKER_HOST", "")
    if docker_host.startswith("tcp://"):
        host = urlparse(docker_host).hostname
        if host:
            return host
    return "127.0.0.1"


def publish_address(env: Mapping[str, str] | None = None) -> str:
    """The host IP that published ports bind to.

    A local daemon binds 127.0.0.1 so nothing outside this machine can reach a
    test database; a remote daemon (DinD) must bind all of its interfaces,
    because we reach it from outside its own loopback.
    """
    return "127.0.0.1" if published_host(env) in ("127.0.0.1", "localhost") else "0.0.0.0"  # noqa: S104


def connect(timeout: float = 60.0) -> docker.DockerClient:
    """A client for the engine the environment names, or :class:`DockerUnavailableError`.

    The client is checked with a ping, so a missing daemon fails here, once,
    with a message, instead of deep inside a worker thread.
    """
    where = describe_docker_host()
    try:
        client = docker.from_env(timeout=int(timeout))
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(
            f"cannot reach Docker at {where}: is it running? ({_short(exc)}). "
            "Start the Docker daemon or set DOCKER_HOST, then check with `docker info`."
        ) from exc
    try:
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        client.close()
        raise DockerUnavailableError(
            f"cannot reach Docker at {where}: is it running? ({_short(exc)}). "
            "Start the Docker daemon or set DOCKER_HOST, then check with `docker info`."
        ) from exc
    return client


def engine_info(client: docker.DockerClient) -> EngineInfo:
    """Version facts about the engine, for `nocrud doctor` and the run header."""
    version: dict[str, Any] = client.version()
    return EngineInfo(
        docker_host=describe_docker_host(),
        server_version=str(version.get("Version", "?")),
        api_version=str(version.get("ApiVersion", "?")),
        published_host=published_host(),
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
