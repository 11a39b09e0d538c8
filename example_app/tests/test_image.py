"""Smoke test of the Docker image: build, migrate, serve /health and a login.

Everything runs on a private network this test creates; the app is reached only
through its port published on 127.0.0.1. Containers, network and image carry the
label ``nocrud.test=example_app`` and are removed in a ``finally``.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

APP_DIR = Path(__file__).resolve().parent.parent
TAG = "nocrud-test/example-app:test"
POSTGRES_IMAGE = "nocrud/postgres:15"
LABELS = {"nocrud.test": "example_app"}
HEALTH_TIMEOUT_SECONDS = 60.0

pytestmark = pytest.mark.docker


@pytest.fixture
def docker_client() -> Iterator[Any]:
    """A Docker client, or a skip saying why there is none."""
    import docker
    import docker.errors

    try:
        client = docker.from_env()
    except docker.errors.DockerException as error:
        pytest.skip(f"Docker is not reachable: {error}")
    try:
        client.ping()
        client.images.get(POSTGRES_IMAGE)
    except docker.errors.ImageNotFound:
        client.close()
        pytest.skip(f"image {POSTGRES_IMAGE} is missing: build it from images/postgres")
    except docker.errors.DockerException as error:
        client.close()
        pytest.skip(f"Docker is not reachable: {error}")
    yield client
    client.close()


def _wait_healthy(container: Any, base_url: str, http: requests.Session) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if http.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.02)
    container.reload()
    logs = container.logs(tail=30).decode(errors="replace")
    pytest.fail(
        f"app not healthy after {HEALTH_TIMEOUT_SECONDS}s "
        f"(status {container.status}); last logs:\n{logs}"
    )


def test_image_migrates_and_serves(docker_client: Any, request: pytest.FixtureRequest) -> None:
    import docker.errors

    suffix = secrets.token_hex(4)
    containers: list[Any] = []
    network: Any = None
    try:
        image, _ = docker_client.images.build(
            path=str(APP_DIR), tag=TAG, rm=True, forcerm=True, labels=LABELS
        )
        config = image.attrs["Config"]
        assert config["User"] == "inventory"
        assert "8000/tcp" in config["ExposedPorts"]
        assert "PORT=8000" in config["Env"]

        network = docker_client.networks.create(f"inventory-test-{suffix}", labels=LABELS)
        db_name = f"inventory-test-db-{suffix}"
        containers.append(
            docker_client.containers.run(
                POSTGRES_IMAGE, name=db_name, network=network.name, labels=LABELS, detach=True
            )
        )
        environment = {"DATABASE_URL": f"postgresql://postgres:postgres@{db_name}:5432/postgres"}

        migrate = docker_client.containers.run(
            TAG,
            ["python3", "-m", "inventory.migrate", "--wait", "30"],
            environment=environment,
            network=network.name,
            labels=LABELS,
            detach=True,
        )
        containers.append(migrate)
        exit_code = migrate.wait(timeout=120)["StatusCode"]
        output = migrate.logs().decode()
        assert exit_code == 0, output
        assert "applied 0001_create_site.sql in " in output

        started = time.monotonic()
        app = docker_client.containers.run(
            TAG,
            environment=environment,
            network=network.name,
            labels=LABELS,
            ports={"8000/tcp": ("127.0.0.1",)},
            detach=True,
        )
        containers.append(app)
        app.reload()
        base_url = f"http://127.0.0.1:{app.ports['8000/tcp'][0]['HostPort']}"
        with requests.Session() as http:
            _wait_healthy(app, base_url, http)
            # user_properties rather than record_property, which warns under xunit2.
            request.node.user_properties.append(
                ("docker_run_to_healthy_seconds", round(time.monotonic() - started, 2))
            )
            assert http.get(f"{base_url}/health", timeout=5).json() == {"status": "ok"}

            login = http.post(
                f"{base_url}/api/auth/login",
                json={"username": "editor", "password": "editor-password"},
                timeout=10,
            )
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            # Several requests, so both gunicorn workers are likely to see the token.
            for n in range(4):
                created = http.post(
                    f"{base_url}/api/sites", json={"name": f"Site {n}"}, headers=headers, timeout=10
                )
                assert created.status_code == 201, created.text

        app.stop(timeout=10)
        assert app.wait(timeout=30)["StatusCode"] == 0
        assert "GET /health" in app.logs().decode()
    finally:
        for container in reversed(containers):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        if network is not None:
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(TAG, force=True)
