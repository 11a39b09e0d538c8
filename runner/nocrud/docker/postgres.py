"""What nocrud knows about the PostgreSQL inside its containers, in one place.

nocrud's PostgreSQL image (``nocrud/images/assets/postgres``) is initialised at build time with
the superuser ``postgres`` whose password is ``postgres``; every database it
serves lives for one build or one flow, and its ports are published on loopback
only. The image build uses that superuser to create the project's role and
database; every environment then replaces both passwords with fresh random ones
as soon as the server answers, so a leaked port is no way in. This module owns
those facts (the superuser, its first password, the port, the network alias)
and the few SQL steps both the image build and the environments perform.
"""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

__all__ = [
    "ALIAS",
    "COMMITTABLE_PGDATA",
    "PORT",
    "SUPERUSER",
    "DatabaseAddress",
    "DumpError",
    "base_image_environment",
    "clone_database",
    "create_role_and_database",
    "drop_database",
    "load_dump",
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


#: Where PGDATA goes when a base image keeps it on a VOLUME, which `docker commit` drops.
COMMITTABLE_PGDATA = "/var/lib/nocrud/pgdata"


def base_image_environment(image_config: Mapping[str, Any]) -> dict[str, str]:
    """What a database container from a base image needs for its data to survive a commit.

    The official ``postgres:<major>`` images declare ``VOLUME /var/lib/postgresql/data``
    with ``PGDATA`` inside it and initialise the cluster at first start from
    ``POSTGRES_USER``/``POSTGRES_PASSWORD``. ``docker commit`` keeps no volume, so a
    migrated database would vanish: PGDATA moves outside every volume, and the superuser
    is the one nocrud's own image has. nocrud's image (PGDATA outside any volume,
    initialised at build time) needs nothing.

    Args:
        image_config: The image's ``Config`` (``docker image inspect``): Env, Volumes,
            Entrypoint.
    """
    env = dict(item.split("=", 1) for item in image_config.get("Env") or [] if "=" in item)
    volumes = [str(v).rstrip("/") for v in image_config.get("Volumes") or {}]
    pgdata = env.get("PGDATA", "").rstrip("/")
    on_volume = bool(pgdata) and any(pgdata == v or pgdata.startswith(v + "/") for v in volumes)
    entrypoint = " ".join(image_config.get("Entrypoint") or [])
    if not on_volume and "docker-entrypoint" not in entrypoint:
        return {}
    extra = {"POSTGRES_USER": SUPERUSER, "POSTGRES_PASSWORD": BUILT_IN_PASSWORD}
    return {**extra, "PGDATA": COMMITTABLE_PGDATA} if on_volume else extra


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


def replace_passwords(
    address: DatabaseAddress,
    *,
    configured_password: str,
    password: str,
    superuser_password: str | None = None,
) -> None:
    """Connect as the superuser and give the app's role ``password`` and the superuser a new one.

    Args:
        address: The app's view of the database (its role, its database).
        configured_password: The password of ``database.password`` in nocrud.yaml, which the
            database image holds; it is the superuser's when the app's role is the superuser.
        password: This environment's own password for the app's role.
        superuser_password: The superuser's new password when the caller needs to keep
            using it (a server shared by a run's flows); random and forgotten when None.
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
                cur.execute(
                    "ALTER ROLE postgres PASSWORD %s", (superuser_password or new_password(),)
                )
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


def clone_database(admin: DatabaseAddress, template: str, name: str, *, owner: str) -> None:
    """``CREATE DATABASE name TEMPLATE template STRATEGY FILE_COPY OWNER owner``.

    FILE_COPY copies the template's files instead of WAL-logging every block: on a
    small test database it is several times faster than the default (WAL_LOG). The
    template must have no other session connected, or PostgreSQL refuses the clone.
    """
    conn = admin.connect(timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(template), sql.Identifier(owner)
                )
            )
    finally:
        conn.close()


def drop_database(admin: DatabaseAddress, name: str) -> None:
    """Drop ``name`` if it exists, ending any session still connected to it."""
    conn = admin.connect(timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        conn.close()


class DumpError(Exception):
    """An SQL dump could not be loaded; the message names the file, the line and the cause."""


def load_dump(address: DatabaseAddress, path: Path) -> None:
    """Load a plain-SQL ``pg_dump`` file into ``address``, as psql would, in one transaction.

    SQL between ``COPY ... FROM stdin;`` blocks is sent as it is (the server parses
    dollar-quoted bodies itself); each COPY block streams its rows with ``copy_expert``.
    psql meta-commands other than pg_dump's ``\\restrict``/``\\unrestrict`` markers
    are refused: a dump made with ``pg_dump --no-owner --no-privileges DB`` has none.

    Raises:
        DumpError: The file is not a plain-SQL dump, or a statement failed.
    """
    lines = path.read_text().splitlines(keepends=True)
    conn = address.connect(timeout=5)
    try:
        with conn, conn.cursor() as cur:
            pending: list[str] = []
            start = 1
            number = 0

            def flush() -> None:
                text = "".join(pending)
                # Only comments between two COPY blocks: the server calls that an empty query.
                if any(line.strip() and not line.lstrip().startswith("--") for line in pending):
                    try:
                        cur.execute(text)
                    except psycopg2.Error as exc:
                        raise DumpError(
                            f"{path}: the SQL from line {start} on failed: {str(exc).strip()}"
                        ) from exc
                pending.clear()

            while number < len(lines):
                line = lines[number]
                number += 1
                stripped = line.strip()
                if stripped.startswith("\\"):
                    if stripped.split()[0] in ("\\restrict", "\\unrestrict"):
                        continue
                    raise DumpError(
                        f"{path}:{number}: psql meta-command {stripped.split()[0]!r} is not "
                        "supported: make the dump with `pg_dump --no-owner --no-privileges "
                        "--format=plain` of one database"
                    )
                if stripped.upper().startswith("COPY ") and stripped.endswith("FROM stdin;"):
                    flush()
                    rows: list[str] = []
                    copy_line = number
                    while number < len(lines) and lines[number].rstrip("\r\n") != "\\.":
                        rows.append(lines[number])
                        number += 1
                    number += 1  # the terminating \.
                    try:
                        cur.copy_expert(stripped.rstrip(";"), io.StringIO("".join(rows)))
                    except psycopg2.Error as exc:
                        raise DumpError(
                            f"{path}:{copy_line}: COPY failed: {str(exc).strip()}"
                        ) from exc
                    start = number + 1
                    continue
                if not pending:
                    start = number
                pending.append(line)
            flush()
    finally:
        conn.close()
