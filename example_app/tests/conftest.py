"""Fixtures of the inventory app's tests: one PostgreSQL server, a fresh database per test.

The server is ``$EXAMPLE_APP_DATABASE_URL`` when set (its role needs CREATEDB), else a
``nocrud/postgres:15`` container published on a random 127.0.0.1 port and removed at
session end whatever happens. The schema is migrated once into a template database;
each test gets ``CREATE DATABASE ... TEMPLATE`` of it (about 0.1 s), which also holds
ready-made bearer tokens for the three seeded users (see ``inventory_testing.TOKENS``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
import pytest
from flask import Flask
from flask.testing import FlaskClient

TESTS_DIR = Path(__file__).resolve().parent
APP_DIR = TESTS_DIR.parent
# The app is not an installed distribution: its package lives next to this folder,
# exactly as it is copied into the image. pytest runs with --import-mode=importlib,
# which puts nothing on sys.path, so the app and the test helpers are added here.
for directory in (APP_DIR, TESTS_DIR):
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))

from inventory import create_app  # noqa: E402
from inventory.auth import hash_token  # noqa: E402
from inventory.db import get_database  # noqa: E402
from inventory.migrate import migrate  # noqa: E402
from inventory_testing import TOKENS, Api, Server, wait_for_postgres  # noqa: E402

POSTGRES_IMAGE = "nocrud/postgres:15"
LABELS = {"nocrud.test": "example_app"}
FAST_MOUNT = "/var/lib/nocrud/fast"
FAST_TABLESPACE = "inventory_tests"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """A PostgreSQL server whose role may create databases."""
    url = os.environ.get("EXAMPLE_APP_DATABASE_URL")
    if url:
        wait_for_postgres(url)
        yield Server(url)
        return
    yield from _postgres_container()


def _postgres_container() -> Iterator[Server]:
    import docker
    import docker.errors

    try:
        client = docker.from_env()
    except docker.errors.DockerException as error:
        pytest.skip(
            f"Docker is not reachable ({error}) and EXAMPLE_APP_DATABASE_URL is not set; "
            "start Docker or point EXAMPLE_APP_DATABASE_URL at a PostgreSQL server"
        )
    container: Any = None
    try:
        try:
            client.ping()
            client.images.get(POSTGRES_IMAGE)
        except docker.errors.ImageNotFound:
            pytest.skip(f"image {POSTGRES_IMAGE} is missing: build it from images/postgres")
        except docker.errors.DockerException as error:
            pytest.skip(
                f"Docker is not reachable ({error}) and EXAMPLE_APP_DATABASE_URL is not set"
            )
        container = client.containers.run(
            POSTGRES_IMAGE,
            detach=True,
            labels=LABELS,
            ports={"5432/tcp": ("127.0.0.1",)},
            # Test databases live on a tmpfs: copying the template there is ~3x faster
            # than through the storage driver (fuse-overlayfs on the CI machines).
            tmpfs={FAST_MOUNT: "size=512m,mode=1777"},
        )
        container.reload()
        port = container.ports["5432/tcp"][0]["HostPort"]
        url = f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"
        try:
            wait_for_postgres(url)
        except TimeoutError as error:
            logs = container.logs(tail=20).decode(errors="replace")
            raise TimeoutError(f"{error}\nlast container logs:\n{logs}") from None
        # A tablespace directory must belong to the server's user, whatever its uid.
        container.exec_run(["mkdir", f"{FAST_MOUNT}/ts"], user="postgres")
        server = Server(url)
        server._execute(f"CREATE TABLESPACE {FAST_TABLESPACE} LOCATION '{FAST_MOUNT}/ts'")
        yield Server(url, FAST_TABLESPACE, file_copy=True)
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        client.close()


@pytest.fixture(scope="session")
def template_database(postgres_server: Server) -> Iterator[str]:
    """Name of a fully migrated database, with a test token for each seeded user."""
    name = f"inventory_tmpl_{secrets.token_hex(4)}"
    url = postgres_server.create_database(name)
    try:
        migrate(url)
        conn = psycopg2.connect(url)
        try:
            with conn, conn.cursor() as cur:
                for username, token in TOKENS.items():
                    cur.execute(
                        "INSERT INTO auth_token (token_hash, user_id, expires_at) SELECT %s, id,"
                        " now() + interval '1 day' FROM app_user WHERE username = %s",
                        (hash_token(token), username),
                    )
        finally:
            conn.close()
        yield name
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def fresh_database(postgres_server: Server) -> Iterator[str]:
    """URL of a new, empty database (nothing migrated), dropped after the test."""
    name = f"inventory_empty_{secrets.token_hex(4)}"
    try:
        yield postgres_server.create_database(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def migrated_database(postgres_server: Server, template_database: str) -> Iterator[str]:
    """URL of this test's own copy of the migrated template, dropped after the test."""
    name = f"inventory_test_{secrets.token_hex(4)}"
    try:
        yield postgres_server.create_database(name, template=template_database)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def app(migrated_database: str) -> Iterator[Flask]:
    """The app on this test's database; its connection pool is closed afterwards."""
    application = create_app(migrated_database)
    application.config["TESTING"] = True
    yield application
    get_database(application).close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Flask test client of :func:`app`."""
    return app.test_client()


@pytest.fixture
def api(client: FlaskClient) -> Api:
    """Builders that create objects through the API as the editor."""
    return Api(client)


@pytest.fixture
def db(migrated_database: str) -> Iterator[psycopg2.extensions.connection]:
    """A direct connection to this test's database, for checks behind the API."""
    conn = psycopg2.connect(migrated_database)
    yield conn
    conn.close()
