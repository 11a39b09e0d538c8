"""What nocrud knows about the PostgreSQL inside its containers, in one place.

nocrud's PostgreSQL image (``images/postgres``) is initialised at build time with
the superuser ``postgres`` whose password is ``postgres``; every database it
serves lives for one build or one flow, and its ports are published on loopback
only. The image build uses that superuser to create the project's role and
database; every environment then replaces both passwords with fresh random ones
as soon as the server answers, so a leaked port is no way in. This module owns
those facts (the superuser, its first password, the port, the network alias)
and the few SQL steps both the image build and the environments perform.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

__all__ = [
    "ALIAS",
    "PORT",
    "SUPERUSER",
    "DatabaseAddress",
    "create_role_and_database",
    "new_password",
    "replace_passwords",
    "run_sql_file",
    "wait_until_accepting",
]

#: Network alias of the database wherever the app reaches it by name.
ALIAS = "db"
#: PostgreSQL's port inside its container.
PORT = 5432
#: The superuser of nocrud's PostgreSQL image.
SUPERUSER = "postgres"
#: The superuser's password as built into the image (replaced in every environment).
BUILT_IN_PASSWORD = "postgres"  # noqa: S105 - a documented, loopback-only build-time password


@dataclass(frozen=True)
class DatabaseAddress:
    """How this process reaches one database: the flow's own, or the superuser's view of it."""

    host: str
    port: int
    dbname: str
    user: str
    password: str

    def connect(self, timeout: float = 5.0) -> Any:
        """A new psycopg2 connection to this database."""
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            dbname=self.dbname,
            user=self.user,
            password=self.password,
            connect_timeout=max(1, int(timeout)),
        )

    def as_superuser(self, password: str = BUILT_IN_PASSWORD) -> DatabaseAddress:
        """The same server, as the superuser, on the ``postgres`` maintenance database."""
        return replace(self, dbname="postgres", user=SUPERUSER, password=password)


def new_password() -> str:
    """A fresh random password for one environment's roles."""
    return secrets.token_urlsafe(18)


def wait_until_accepting(
    address: DatabaseAddress, timeout: float, *, interval: float = 0.02
) -> str | None:
    """Poll until ``address`` accepts a connection; None when it did, else the last error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            address.connect(timeout=3).close()
            return None
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                return str(exc).strip()
        time.sleep(interval)


def create_role_and_database(
    superuser: DatabaseAddress, name: str, user: str, password: str
) -> None:
    """Create the project's role (or set the superuser's password) and its database."""
    conn = superuser.connect(timeout=3)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            if user != SUPERUSER:
                cur.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(user)),
                    (password,),
                )
            else:
                cur.execute("ALTER ROLE postgres PASSWORD %s", (password,))
            if name != "postgres":
                cur.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(name), sql.Identifier(user)
                    )
                )
    finally:
        conn.close()


def replace_passwords(address: DatabaseAddress, *, configured_password: str, password: str) -> None:
    """Connect as the superuser and give the app's role ``password`` and the superuser a new one.

    Args:
        address: The app's view of the database (its role, its database).
        configured_password: The password of ``database.password`` in nocrud.yaml, which the
            database image holds; it is the superuser's when the app's role is the superuser.
        password: This environment's own password for the app's role.
    """
    first = configured_password if address.user == SUPERUSER else BUILT_IN_PASSWORD
    conn = address.as_superuser(first).connect(timeout=2)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(address.user)),
                (password,),
            )
            if address.user != SUPERUSER:
                cur.execute("ALTER ROLE postgres PASSWORD %s", (new_password(),))
    finally:
        conn.close()


def run_sql_file(
    address: DatabaseAddress, path: Path, *, on_error: Callable[[str], Exception]
) -> None:
    """Run one SQL file in one transaction; a failure becomes ``on_error(message)``."""
    conn = address.connect(timeout=3)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(path.read_text())
    except psycopg2.Error as exc:
        raise on_error(f"{path} failed: {exc}".rstrip()) from exc
    finally:
        conn.close()
