"""Database access: lazily opened, reused connections, one per request.

Nothing here connects when the app is created, so the app starts while PostgreSQL is
still coming up (nocrud starts both at once) and gunicorn can fork after ``--preload``
without sharing a socket between workers. A request borrows a connection on first
use; teardown rolls back whatever the view did not commit and returns it, closing it
instead when it is broken.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg2
import psycopg2.extensions
from flask import Flask, current_app, g

from inventory.errors import ServiceUnavailableError

Connection = psycopg2.extensions.connection
Cursor = psycopg2.extensions.cursor

EXTENSION_KEY = "inventory.database"


class Database:
    """Connections to the app's PostgreSQL database, opened on demand and reused.

    A small LIFO of idle connections: :meth:`acquire` reuses the most recently
    returned one (or connects), :meth:`release` keeps at most ``max_idle`` of them.
    Concurrent requests are not capped here; gunicorn's worker count caps them.

    Args:
        url: libpq URL, or None when the app was started without one.
        max_idle: Most idle connections kept open in this process.
        connect_timeout: Seconds to wait for the server when opening a connection.
    """

    def __init__(self, url: str | None, *, max_idle: int, connect_timeout: int) -> None:
        self.url = url
        self._max_idle = max_idle
        self._connect_timeout = connect_timeout
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def acquire(self) -> Connection:
        """Borrow a connection: an idle one that is still alive, or a new one.

        Returns:
            An open connection, not in a transaction.

        Raises:
            ServiceUnavailableError: No database is configured.
            psycopg2.OperationalError: The server cannot be reached.
        """
        if self.url is None:
            raise ServiceUnavailableError("the app has no database configured: set DATABASE_URL")
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                new: Connection = psycopg2.connect(
                    self.url, connect_timeout=self._connect_timeout, application_name="inventory"
                )
                return new
            if conn.closed or _has_unread_data(conn):
                conn.close()
                continue
            return conn

    def release(self, conn: Connection) -> None:
        """Take back a borrowed connection: roll back, then keep or close it.

        Args:
            conn: A connection from :meth:`acquire`.
        """
        if not conn.closed and (
            conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE
        ):
            try:
                conn.rollback()
            except psycopg2.Error:
                conn.close()
        if conn.closed:
            return
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def ping(self) -> None:
        """Run ``SELECT 1``, for the health check.

        Raises:
            ServiceUnavailableError: No database configured.
            psycopg2.Error: The database did not answer.
        """
        conn = self.acquire()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchone()
        finally:
            self.release(conn)


def _has_unread_data(conn: Connection) -> bool:
    """Whether the server sent something to a connection that sat idle.

    An idle session only hears from the server unprompted when it is being ended
    (restart, ``pg_terminate_backend``): a termination notice or end-of-file. One
    non-blocking poll of the socket finds that without a round trip, so the request
    gets a fresh connection instead of a 503.
    """
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))


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

    Unlike ``with conn:``, a rollback on a connection the server has already dropped
    does not replace the original error, so a lost database still answers 503.

    Yields:
        A cursor on the request's connection.
    """
    conn = connection()
    try:
        with conn.cursor() as cur:
            yield cur
        conn.commit()
    except BaseException:
        if not conn.closed:
            with suppress(psycopg2.Error):
                conn.rollback()
        raise


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
