"""Database access: a lazy per-process connection pool and one connection per request.

Nothing here connects when the app is created, so the app starts while PostgreSQL is
still coming up (nocrud starts both at once) and gunicorn can fork after ``--preload``
without sharing a socket between workers. A request borrows a connection on first
use; teardown rolls back whatever the view did not commit and returns it, closing it
instead when it is broken.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.pool
from flask import Flask, current_app, g

from inventory.errors import ServiceUnavailableError

log = logging.getLogger(__name__)

Connection = psycopg2.extensions.connection
Cursor = psycopg2.extensions.cursor

EXTENSION_KEY = "inventory.database"


class Database:
    """Connections to the app's PostgreSQL database, opened on demand.

    Args:
        url: libpq URL, or None when the app was started without one.
        max_connections: Upper bound of open connections in this process.
        connect_timeout: Seconds to wait for the server when opening a connection.
    """

    def __init__(self, url: str | None, *, max_connections: int, connect_timeout: int) -> None:
        self.url = url
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._pool: psycopg2.pool.ThreadedConnectionPool | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> psycopg2.pool.ThreadedConnectionPool:
        if self.url is None:
            raise ServiceUnavailableError("the app has no database configured: set DATABASE_URL")
        with self._lock:
            if self._pool is None:
                # minconn=0: creating the pool opens nothing; connections come on demand.
                self._pool = psycopg2.pool.ThreadedConnectionPool(
                    0,
                    self._max_connections,
                    self.url,
                    connect_timeout=self._connect_timeout,
                    application_name="inventory",
                )
            return self._pool

    def acquire(self) -> Connection:
        """Borrow a connection from the pool.

        Returns:
            An open connection, not in a transaction.

        Raises:
            ServiceUnavailableError: No database is configured or the pool is exhausted.
            psycopg2.OperationalError: The server cannot be reached.
        """
        pool = self._get_pool()
        try:
            conn: Connection = pool.getconn()
        except psycopg2.pool.PoolError:
            raise ServiceUnavailableError("too many concurrent requests, try again") from None
        return conn

    def release(self, conn: Connection) -> None:
        """Return a borrowed connection, rolling back or discarding it as needed.

        Args:
            conn: A connection from :meth:`acquire`.
        """
        pool = self._pool
        if pool is None:  # closed meanwhile
            conn.close()
            return
        broken = bool(conn.closed)
        if (
            not broken
            and conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE
        ):
            try:
                conn.rollback()
            except psycopg2.Error:
                broken = True
        pool.putconn(conn, close=broken)

    def close(self) -> None:
        """Close every pooled connection; the next :meth:`acquire` opens a new pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and not pool.closed:
            pool.closeall()

    def ping(self) -> None:
        """Run ``SELECT 1`` on a fresh borrow, for the health check.

        Raises:
            ServiceUnavailableError: No database configured, or the pool is exhausted.
            psycopg2.Error: The database did not answer.
        """
        conn = self.acquire()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchone()
        finally:
            self.release(conn)


def init_app(app: Flask, database: Database) -> None:
    """Attach ``database`` to ``app`` and return request connections at teardown.

    Args:
        app: The Flask app.
        database: The database the app's requests use.
    """
    app.extensions[EXTENSION_KEY] = database

    @app.teardown_appcontext
    def _release_connection(_error: BaseException | None) -> None:
        conn = g.pop("db_conn", None)
        if conn is not None:
            database.release(conn)


def get_database(app: Flask | None = None) -> Database:
    """The :class:`Database` of ``app`` (default: the current app)."""
    database: Database = (app or current_app).extensions[EXTENSION_KEY]
    return database


def connection() -> Connection:
    """The current request's connection, borrowed on first use."""
    if "db_conn" not in g:
        g.db_conn = get_database().acquire()
    conn: Connection = g.db_conn
    return conn


@contextmanager
def transaction() -> Iterator[Cursor]:
    """A cursor inside a transaction that commits on success and rolls back on error.

    Yields:
        A cursor on the request's connection.
    """
    conn = connection()
    with conn, conn.cursor() as cur:
        yield cur


def fetch_dicts(cur: Cursor) -> list[dict[str, Any]]:
    """All remaining rows of ``cur`` as dicts keyed by column name."""
    names = [column.name for column in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def fetch_dict(cur: Cursor) -> dict[str, Any] | None:
    """The next row of ``cur`` as a dict, or None when there is none."""
    row = cur.fetchone()
    if row is None:
        return None
    names = [column.name for column in cur.description or ()]
    return dict(zip(names, row, strict=True))
