"""A PostgreSQL server in memory whose database is reset from a template, for the pool.

The ``pool`` strategy resets a pair's database between flows instead of starting a new
server. Two facts make that cheap: the server's PGDATA lives on a tmpfs
(:func:`in_memory_options`; a tmpfs mounted over the image's PGDATA would hide the
migrated data, so it is copied there at start, a few tenths of a second for a small
schema read through the daemon's storage driver), and the flow's database is cloned
from a copy of the migrated one with
``STRATEGY FILE_COPY`` (:func:`keep_as_template` once per server, :func:`reset_database`
per flow). On tmpfs the checkpoints ``FILE_COPY`` forces cost next to nothing: a reset
takes tens of milliseconds, against hundreds on the container's overlay filesystem.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from psycopg2 import sql

from nocrud.docker.postgres import DatabaseAddress

__all__ = [
    "MEMORY_MOUNT",
    "MEMORY_PGDATA",
    "in_memory_options",
    "keep_as_template",
    "reset_database",
    "template_name",
]

#: Where the tmpfs is mounted, and the PGDATA served from it.
MEMORY_MOUNT = "/var/lib/nocrud/memory"
MEMORY_PGDATA = f"{MEMORY_MOUNT}/pgdata"
#: How often a reset looks whether the sessions it ended have gone, and for how long
#: (then ``DROP … WITH (FORCE)`` waits for the rest itself).
SESSIONS_INTERVAL = 0.003
SESSIONS_GONE_WITHIN = 2.0


def in_memory_options() -> dict[str, Any]:
    """``containers.create`` options that run the image's PostgreSQL with PGDATA on a tmpfs.

    Runs as the image's own user; the directory is made with the mode PostgreSQL requires.
    The copy keeps each file's mode and takes the owner from that user, which is all
    PostgreSQL needs: ``cp -a`` would also read every file's extended attributes and
    times through the daemon's storage driver, which on fuse-overlayfs made a pair's start
    cost 0.3 CPU s and 0.3 s more (1.76 against 1.43 CPU s, 1.94 against 1.59 s).
    """
    script = (
        f'mkdir -m 700 {MEMORY_PGDATA} && cp -R "$PGDATA"/. {MEMORY_PGDATA}/ '
        f"&& exec postgres -D {MEMORY_PGDATA}"
    )
    return {"tmpfs": {MEMORY_MOUNT: "rw,mode=1777"}, "command": ["sh", "-c", script]}


def template_name(name: str) -> str:
    """The database a flow's database is cloned from (PostgreSQL names stop at 63 bytes)."""
    return f"{name[:50]}_nocrud_tpl"


def _admin(superuser: DatabaseAddress, name: str) -> DatabaseAddress:
    """The superuser on a database that is neither the flow's nor its template."""
    return replace(superuser, dbname="template1" if name == "postgres" else "postgres")


def keep_as_template(superuser: DatabaseAddress, name: str) -> None:
    """Copy the migrated database ``name`` to its template, once per server.

    Nothing may be connected to ``name`` meanwhile (start the app afterwards).
    """
    conn = _admin(superuser, name).connect(timeout=3)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    sql.Identifier(template_name(name)), sql.Identifier(name)
                )
            )
    finally:
        conn.close()


def reset_database(superuser: DatabaseAddress, name: str, owner: str) -> None:
    """Drop ``name`` (ending its sessions) and clone it again from its template, on one session.

    ``DROP DATABASE … WITH (FORCE)`` ends the sessions itself, but then looks whether they
    have gone only every 100 ms: a reset would wait at least that long whenever the app
    was connected. So the sessions are ended first and watched every few milliseconds;
    ``FORCE`` stays as the backstop.
    """
    conn = _admin(superuser, name).connect(timeout=3)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            _end_sessions(cur, name)
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    sql.Identifier(name),
                    sql.Identifier(owner),
                    sql.Identifier(template_name(name)),
                )
            )
    finally:
        conn.close()


def _end_sessions(cur: Any, name: str) -> None:
    """Terminate every session on ``name`` and wait (a little) until none is left."""
    cur.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    deadline = time.monotonic() + SESSIONS_GONE_WITHIN
    while time.monotonic() < deadline:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,))
        if cur.fetchone()[0] == 0:
            return
        time.sleep(SESSIONS_INTERVAL)
