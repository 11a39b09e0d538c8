"""Fixtures of djangoshop's tests: Django against a real PostgreSQL, set up once per session.

The server is ``$DJANGOSHOP_TEST_DATABASE_URL`` when set (its role needs CREATEDB), else
a ``nocrud/postgres:15`` container published on a random 127.0.0.1 port and removed at
session end whatever happens. Django's own test machinery creates the test database and
migrates it (the whole migration history, once); each test runs in a transaction that is
rolled back, as ``django.test.TestCase`` does. The tests run on the Django and DRF in the
host's virtual environment (PyPI); the image runs Debian's Django 3.2 and DRF 3.14, which
the flows exercise.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

APP_DIR = Path(__file__).resolve().parent.parent


def _register_djangoshop() -> None:
    """Make ``import djangoshop`` find the app's package, and nothing else of its folder.

    The app is not an installed distribution: its package lives next to this folder, as it
    is copied into the image. Putting that folder on sys.path would also expose its
    ``flows`` package, which shadows the repository's own ``flows`` in this process.
    """
    if "djangoshop" in sys.modules:
        return
    package = APP_DIR / "djangoshop"
    spec = importlib.util.spec_from_file_location(
        "djangoshop", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["djangoshop"] = module
    spec.loader.exec_module(module)


_register_djangoshop()

POSTGRES_IMAGE = "nocrud/postgres:15"
LABELS = {"nocrud.test": "djangoshop"}
READY_TIMEOUT_SECONDS = 120  # generous: CI runners are shared, and waiting costs nothing when fast
FAST_MOUNT = "/var/lib/nocrud/fast"


def wait_for_postgres(url: str) -> None:
    """Poll until the server at ``url`` accepts connections, or raise TimeoutError."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            psycopg2.connect(url, connect_timeout=2).close()
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL at {url} not ready: {error}") from None
            time.sleep(0.05)
        else:
            return


def put_new_databases_on_tmpfs(container: Any, url: str) -> None:
    """Make every database created from now on live on the container's tmpfs.

    Migrating writes the system catalogs hundreds of times; through the storage driver
    (fuse-overlayfs on the CI machines) that is several times slower than in memory. A
    new database takes its template's tablespace, so template1 moves to the tmpfs.
    """
    container.exec_run(["mkdir", f"{FAST_MOUNT}/ts"], user="postgres")
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLESPACE fast LOCATION '{FAST_MOUNT}/ts'")
            cur.execute("ALTER DATABASE template1 SET TABLESPACE fast")
    finally:
        conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL server whose role may create databases."""
    url = os.environ.get("DJANGOSHOP_TEST_DATABASE_URL")
    if url:
        wait_for_postgres(url)
        yield url
        return
    import docker
    import docker.errors

    try:
        client = docker.from_env()
        client.ping()
        client.images.get(POSTGRES_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"image {POSTGRES_IMAGE} is missing: build it with images/build-all.sh")
    except docker.errors.DockerException as error:
        pytest.skip(
            f"Docker is not reachable ({error}) and DJANGOSHOP_TEST_DATABASE_URL is not set; "
            "start Docker or point DJANGOSHOP_TEST_DATABASE_URL at a PostgreSQL server"
        )
    container: Any = None
    try:
        container = client.containers.run(
            POSTGRES_IMAGE,
            detach=True,
            labels=LABELS,
            ports={"5432/tcp": ("127.0.0.1",)},
            tmpfs={FAST_MOUNT: "size=768m,mode=1777"},
        )
        container.reload()
        port = container.ports["5432/tcp"][0]["HostPort"]
        url = f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"
        try:
            wait_for_postgres(url)
        except TimeoutError as error:
            logs = container.logs(tail=20).decode(errors="replace")
            raise TimeoutError(f"{error}\nlast container logs:\n{logs}") from None
        put_new_databases_on_tmpfs(container, url)
        yield url
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        client.close()


@pytest.fixture(scope="session")
def django_db(postgres_url: str) -> Iterator[None]:
    """Django configured on the server, with a migrated test database."""
    saved = {name: os.environ.get(name) for name in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    os.environ["DATABASE_URL"] = postgres_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "djangoshop.settings"
    try:
        import django
        from django.conf import settings
        from django.test.utils import (
            override_settings,
            setup_databases,
            setup_test_environment,
            teardown_databases,
            teardown_test_environment,
        )

        # The app's LOGGING sends the root logger to stderr, as a server should; in this
        # process the root logger is pytest's.
        settings.LOGGING_CONFIG = None
        django.setup()
    finally:
        # Settings are read once, at setup: nothing else in this process sees them.
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    setup_test_environment()
    # The seeded users' PBKDF2 hashes still verify; new passwords (and the upgrade of the
    # seeded ones on first login) use a fast hasher, as Django recommends for tests.
    fast_hashing = override_settings(
        PASSWORD_HASHERS=[
            "django.contrib.auth.hashers.MD5PasswordHasher",
            "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        ]
    )
    fast_hashing.enable()
    config = setup_databases(verbosity=0, interactive=False)
    try:
        yield
    finally:
        teardown_databases(config, verbosity=0)
        fast_hashing.disable()
        teardown_test_environment()


@pytest.fixture
def db(django_db: None) -> Iterator[None]:
    """This test's changes, rolled back afterwards."""
    from django.db import transaction

    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def api(db: None) -> Any:
    """A DRF test client, anonymous until a test authenticates it."""
    from rest_framework.test import APIClient

    return APIClient()


def as_user(username: str) -> Any:
    """An API client authenticated as a seeded user (no password check)."""
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(User.objects.get(username=username))
    return client


@pytest.fixture
def users(db: None) -> Any:
    """``users("alice")``: a client signed in as that seeded user."""
    return as_user
