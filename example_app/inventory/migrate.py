"""Schema migrations: applies ``migrations/NNNN_description.sql`` in order.

Usage::

    export DATABASE_URL=postgresql://user:pw@host:5432/db
    python3 -m inventory.migrate [--dir DIR] [--wait SECONDS]

Each file runs in its own transaction together with its row in ``schema_migrations``
(version, file name, SHA-256 of the file, time taken), so a failing file leaves
nothing behind. A session advisory lock makes concurrent runs wait for each other.
A file whose checksum differs from the recorded one, or an applied version whose
file is gone, stops the run before anything is applied: history is append-only.
Prints one line per applied file; exit status 0 on success, 1 on any failure (the
file name and the SQL error on stderr), 2 for bad command-line arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extensions

MIGRATION_FILE = re.compile(r"(?P<version>[0-9]{4})_(?P<description>[a-z0-9_]+)\.sql")
DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "migrations"
# Arbitrary but fixed, shared by every run against the same database: "inventor".
LOCK_KEY = 0x696E76656E746F72

_CREATE_HISTORY = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer     NOT NULL
)
"""

Report = Callable[[str], None]


class MigrationError(Exception):
    """A migration cannot be applied; the message names the file and says why."""


@dataclass(frozen=True)
class Migration:
    """One migration file.

    Attributes:
        version: The number the file name starts with.
        name: The file name, e.g. ``0001_create_site.sql``.
        sql: The file's text.
        checksum: SHA-256 of the file's bytes, hex encoded.
    """

    version: int
    name: str
    sql: str
    checksum: str


def discover(directory: Path) -> list[Migration]:
    """Read the migration files of ``directory``, ordered by version.

    Args:
        directory: Folder holding ``NNNN_description.sql`` files; other files that do
            not end in ``.sql`` (a README) are ignored.

    Returns:
        The migrations, lowest version first.

    Raises:
        MigrationError: The folder is missing, a ``.sql`` file is misnamed or not
            UTF-8, or two files share a version.
    """
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_FILE.fullmatch(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: migration files must be named NNNN_description.sql "
                "(4 digits, lowercase letters, digits and underscores)"
            )
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MigrationError(f"{path.name}: not UTF-8 ({error})") from None
        version = int(match["version"])
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version:04d} is also used by {found[version].name}"
            )
        found[version] = Migration(version, path.name, text, hashlib.sha256(data).hexdigest())
    return [found[version] for version in sorted(found)]


def connect(database_url: str, *, wait_seconds: float = 0) -> psycopg2.extensions.connection:
    """Connect, retrying for up to ``wait_seconds`` while the server is not up yet.

    Args:
        database_url: libpq URL.
        wait_seconds: How long to keep retrying a refused connection.

    Returns:
        An open connection.

    Raises:
        MigrationError: No connection could be made in time.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return psycopg2.connect(
                database_url, connect_timeout=5, application_name="inventory-migrate"
            )
        except psycopg2.OperationalError as error:
            if time.monotonic() >= deadline:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else "no reason"
                raise MigrationError(f"cannot connect to the database: {reason}") from None
            time.sleep(0.1)


def migrate(
    database_url: str,
    directory: Path = DEFAULT_DIRECTORY,
    *,
    wait_seconds: float = 0,
    report: Report = lambda line: None,
) -> list[Migration]:
    """Apply every migration of ``directory`` not yet recorded in the database.

    Args:
        database_url: libpq URL of the database to migrate.
        directory: Folder of ``NNNN_description.sql`` files.
        wait_seconds: How long to wait for the server to accept connections.
        report: Called with one line per applied migration and a final summary.

    Returns:
        The migrations applied by this call (empty when already up to date).

    Raises:
        MigrationError: A file is invalid or changed since it was applied, the
            database is ahead of the files, or a migration's SQL failed.
    """
    migrations = discover(directory)
    conn = connect(database_url, wait_seconds=wait_seconds)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            row = cur.fetchone()
            if not (row and row[0]):
                report("waiting for another migration run to finish")
                cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            cur.execute(_CREATE_HISTORY)
            cur.execute("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
            applied = {version: (name, checksum) for version, name, checksum in cur.fetchall()}
        _check_history(migrations, applied, directory)
        pending = [m for m in migrations if m.version not in applied]
        conn.autocommit = False
        for migration in pending:
            report(f"applied {migration.name} in {_apply(conn, migration)} ms")
    finally:
        # Closing the session releases the advisory lock too.
        conn.close()
    latest = f"{migrations[-1].name}" if migrations else "no migrations"
    if pending:
        report(f"applied {len(pending)} migration(s); database is at {latest}")
    else:
        report(f"nothing to apply: database is up to date at {latest} ({len(applied)} applied)")
    return pending


def _check_history(
    migrations: Sequence[Migration], applied: dict[int, tuple[str, str]], directory: Path
) -> None:
    on_disk = {m.version: m for m in migrations}
    for version, (name, checksum) in sorted(applied.items()):
        migration = on_disk.get(version)
        if migration is None:
            raise MigrationError(
                f"{name} is recorded as applied but is missing from {directory}; "
                "is an older app running against a newer database?"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.name} was changed after it was applied (recorded checksum "
                f"{checksum[:12]}, file now {migration.checksum[:12]}); restore the file "
                "and put the change in a new migration"
            )


def _apply(conn: psycopg2.extensions.connection, migration: Migration) -> int:
    """Run one migration and record it, in one transaction; returns milliseconds taken."""
    started = time.monotonic()
    try:
        with conn.cursor() as cur:
            try:
                cur.execute(migration.sql)
            except psycopg2.ProgrammingError as error:
                # A file of only comments is an "empty query" to libpq; it is still a
                # (placeholder) step of the history, so it is recorded like any other.
                if error.pgcode is not None or "empty query" not in str(error):
                    raise
            duration_ms = round((time.monotonic() - started) * 1000)
            cur.execute(
                "INSERT INTO schema_migrations (version, name, checksum, duration_ms)"
                " VALUES (%s, %s, %s, %s)",
                (migration.version, migration.name, migration.checksum, duration_ms),
            )
        conn.commit()
    except psycopg2.Error as error:
        conn.rollback()
        detail = (error.pgerror or str(error)).strip()
        raise MigrationError(
            f"{migration.name} failed, nothing of it was applied:\n{detail}"
        ) from None
    return duration_ms


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 0 success, 1 failure.
    """
    parser = argparse.ArgumentParser(
        prog="python3 -m inventory.migrate",
        description="Apply the inventory app's SQL migrations to $DATABASE_URL.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIRECTORY,
        help="folder of NNNN_description.sql files (default: %(default)s)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="keep retrying the connection this long while the server starts (default: 0)",
    )
    args = parser.parse_args(argv)
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        sys.stderr.write("migrate: DATABASE_URL is not set (postgresql://user:pw@host:port/db)\n")
        return 1

    def report(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        migrate(database_url, args.dir, wait_seconds=args.wait, report=report)
    except (MigrationError, psycopg2.Error) as error:
        sys.stderr.write(f"migrate: {str(error).strip()}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
