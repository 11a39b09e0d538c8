"""Helpers shared by the inventory tests: the test server, auth headers, object builders.

Builders create objects through the API (as the editor) with unique names, MACs and
UUIDs, create their prerequisites when not given, and assert the 201, so a test
states only what it is about. :class:`Server` creates and drops the per-test
databases on the session's PostgreSQL server.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from flask.testing import FlaskClient

READY_TIMEOUT_SECONDS = 30.0
READY_POLL_SECONDS = 0.02

#: Bearer tokens inserted into the template database for the seeded users.
TOKENS = {
    "admin": "test-token-admin",
    "editor": "test-token-editor",
    "viewer": "test-token-viewer",
}

#: Passwords of the seeded users (migration 0010).
PASSWORDS = {
    "admin": "admin-password",
    "editor": "editor-password",
    "viewer": "viewer-password",
}


def bearer(role: str) -> dict[str, str]:
    """``Authorization`` header with the test token of the seeded user ``role``."""
    return {"Authorization": f"Bearer {TOKENS[role]}"}


EDITOR = bearer("editor")
VIEWER = bearer("viewer")
ADMIN = bearer("admin")


class Api:
    """Object builders over a Flask test client.

    Args:
        client: The test client of the app under test.
    """

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self._serial = itertools.count(1)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(path, json=body, headers=EDITOR)
        assert response.status_code == 201, (path, response.status_code, response.json)
        created: dict[str, Any] = response.json  # type: ignore[assignment]
        return created

    def mac(self) -> str:
        """A MAC address no other builder call returns."""
        n = next(self._serial)
        return f"02:00:00:{n >> 16 & 0xFF:02x}:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}"

    def site(self, **fields: Any) -> dict[str, Any]:
        """Create a site; ``fields`` override the defaults."""
        body = {"name": f"Site {next(self._serial)}", "country": "United Kingdom", **fields}
        return self._post("/api/sites", body)

    def computer(self, **fields: Any) -> dict[str, Any]:
        """Create a computer, and a site for it unless ``site_id`` is given."""
        if "site_id" not in fields:
            fields["site_id"] = self.site()["id"]
        body = {"name": f"pc-{next(self._serial)}", "mac": self.mac(), **fields}
        return self._post("/api/computers", body)

    def freezer(self, **fields: Any) -> dict[str, Any]:
        """Create a freezer, and a site for it unless ``site_id`` is given."""
        if "site_id" not in fields:
            fields["site_id"] = self.site()["id"]
        body = {"name": f"Freezer {next(self._serial)}", "temperature_c": -80, **fields}
        return self._post("/api/freezers", body)

    def container(self, **fields: Any) -> dict[str, Any]:
        """Create a container, and a freezer for it unless ``freezer_id`` is given."""
        if "freezer_id" not in fields:
            fields["freezer_id"] = self.freezer()["id"]
        body = {"uuid": str(uuid.uuid4()), "description": "PBMC aliquots", **fields}
        return self._post("/api/containers", body)

    def create(self, resource: str, **fields: Any) -> dict[str, Any]:
        """Create an object of ``resource`` (``site``, ``computer``, ...)."""
        builder = getattr(self, resource)
        created: dict[str, Any] = builder(**fields)
        return created


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database name replaced by ``name``."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def wait_for_postgres(url: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Poll ``psycopg2.connect`` every 20 ms until the server accepts connections.

    Args:
        url: Server to reach.
        timeout: Seconds before giving up.

    Raises:
        TimeoutError: The server did not accept a connection in time (with the last error).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(url, connect_timeout=2).close()
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"PostgreSQL at {url} not ready after {timeout}s: {error}"
                ) from None
            time.sleep(READY_POLL_SECONDS)
        else:
            return


@dataclass(frozen=True)
class Server:
    """The PostgreSQL server of the session.

    Attributes:
        url: URL of a maintenance database on it, as a role that may create databases.
        tablespace: Tablespace on a tmpfs for test databases (None: server default).
        file_copy: Copy templates with ``STRATEGY FILE_COPY`` (PostgreSQL 15+): on a
            tmpfs about 3x faster than the default, which writes WAL for every block.
    """

    url: str
    tablespace: str | None = None
    file_copy: bool = False

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` (a copy of ``template`` if given); returns its URL."""
        statement = f"CREATE DATABASE {name}"
        if template is not None:
            statement += f" TEMPLATE {template}"
        if self.tablespace is not None:
            statement += f" TABLESPACE {self.tablespace}"
        if template is not None and self.file_copy:
            statement += " STRATEGY FILE_COPY"
        self._execute(statement)
        return database_url(self.url, name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, ending any session still connected to it."""
        self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _execute(self, statement: str) -> None:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        conn = psycopg2.connect(self.url)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()
