"""``python3 -m inventory.migrate``: order, idempotence, checksums, failures, locking, backfills."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
import pytest
from inventory.migrate import DEFAULT_DIRECTORY, LOCK_KEY, MigrationError, discover

APP_DIR = Path(__file__).resolve().parent.parent
MIGRATION_FILES = sorted(p.name for p in DEFAULT_DIRECTORY.glob("*.sql"))
LATEST = MIGRATION_FILES[-1]


def run_migrate(
    url: str | None, directory: Path | None = None, *extra: str
) -> subprocess.CompletedProcess[str]:
    """Run the migrate command in a child process, as the Docker image does."""
    return subprocess.run(
        _command(directory, extra),
        env=_env(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _command(directory: Path | None, extra: Sequence[str] = ()) -> list[str]:
    command = [sys.executable, "-m", "inventory.migrate"]
    if directory is not None:
        command += ["--dir", str(directory)]
    return [*command, *extra]


def _env(url: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["PYTHONPATH"] = str(APP_DIR)
    if url is not None:
        env["DATABASE_URL"] = url
    return env


@contextmanager
def connect(url: str) -> Iterator[psycopg2.extensions.cursor]:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def query(url: str, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with connect(url) as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def table_exists(url: str, name: str) -> bool:
    return query(url, "SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0] is True


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """A copy of the real migrations that a test may change."""
    directory = tmp_path / "migrations"
    shutil.copytree(DEFAULT_DIRECTORY, directory)
    return directory


def test_the_repository_has_a_real_history() -> None:
    found = discover(DEFAULT_DIRECTORY)
    assert len(found) >= 15
    assert [m.version for m in found] == list(range(1, len(found) + 1))


def test_applies_every_migration_in_order_one_line_each(fresh_database: str) -> None:
    result = run_migrate(fresh_database)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines[:-1]] == MIGRATION_FILES
    assert all(line.startswith("applied 0") and line.endswith(" ms") for line in lines[:-1])
    assert lines[-1] == f"applied {len(MIGRATION_FILES)} migration(s); database is at {LATEST}"

    recorded = query(fresh_database, "SELECT version, name, checksum FROM schema_migrations")
    assert [(v, n) for v, n, _ in sorted(recorded)] == [
        (int(name[:4]), name) for name in MIGRATION_FILES
    ]
    for _, name, checksum in recorded:
        assert checksum == hashlib.sha256((DEFAULT_DIRECTORY / name).read_bytes()).hexdigest()
    for relation in ("site", "computer", "freezer", "container", "app_user", "site_inventory"):
        assert table_exists(fresh_database, relation), relation
    assert query(fresh_database, "SELECT username, role FROM app_user ORDER BY id") == [
        ("admin", "admin"),
        ("editor", "editor"),
        ("viewer", "viewer"),
    ]


def test_second_run_applies_nothing_and_says_so(fresh_database: str) -> None:
    assert run_migrate(fresh_database).returncode == 0
    again = run_migrate(fresh_database)
    assert again.returncode == 0
    assert again.stdout == (
        f"nothing to apply: database is up to date at {LATEST} ({len(MIGRATION_FILES)} applied)\n"
    )
    assert query(fresh_database, "SELECT count(*) FROM schema_migrations") == [
        (len(MIGRATION_FILES),)
    ]


def test_only_new_migrations_are_applied(fresh_database: str, migrations: Path) -> None:
    assert run_migrate(fresh_database, migrations).returncode == 0
    (migrations / "0100_add_note.sql").write_text("ALTER TABLE site ADD COLUMN note text;\n")
    result = run_migrate(fresh_database, migrations)
    assert result.returncode == 0
    assert result.stdout.splitlines()[0].startswith("applied 0100_add_note.sql in ")
    assert len(result.stdout.splitlines()) == 2


def test_changed_migration_is_refused_before_anything_runs(
    fresh_database: str, migrations: Path
) -> None:
    assert run_migrate(fresh_database, migrations).returncode == 0
    changed = migrations / "0003_create_freezer.sql"
    changed.write_text(changed.read_text() + "-- tweak\n")
    (migrations / "0100_pending.sql").write_text("CREATE TABLE pending (id int);\n")
    result = run_migrate(fresh_database, migrations)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        "migrate: 0003_create_freezer.sql was changed after it was applied (recorded checksum "
    )
    assert "restore the file and put the change in a new migration" in result.stderr
    assert not table_exists(fresh_database, "pending")


def test_failing_migration_exits_1_with_file_name_and_sql_error(
    fresh_database: str, migrations: Path
) -> None:
    (migrations / "0100_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;\n"
    )
    result = run_migrate(fresh_database, migrations)
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == len(MIGRATION_FILES)  # the good ones applied
    assert result.stderr.startswith("migrate: 0100_broken.sql failed, nothing of it was applied:")
    assert 'relation "no_such_table" does not exist' in result.stderr
    assert not table_exists(fresh_database, "half_done")  # its own transaction rolled back
    assert query(fresh_database, "SELECT max(version) FROM schema_migrations") == [
        (len(MIGRATION_FILES),)
    ]

    (migrations / "0100_broken.sql").write_text("CREATE TABLE half_done (id int);\n")
    fixed = run_migrate(fresh_database, migrations)
    assert fixed.returncode == 0
    assert fixed.stdout.startswith("applied 0100_broken.sql in ")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("18_short.sql", "18_short.sql: migration files must be named NNNN_description.sql"),
        ("0018-dash.sql", "0018-dash.sql: migration files must be named NNNN_description.sql"),
        ("0001_again.sql", "0001_create_site.sql: version 0001 is also used by 0001_again.sql"),
    ],
)
def test_badly_named_files_are_refused(
    fresh_database: str, migrations: Path, name: str, message: str
) -> None:
    (migrations / name).write_text("SELECT 1;\n")
    result = run_migrate(fresh_database, migrations)
    assert result.returncode == 1
    assert result.stderr.startswith(f"migrate: {message}")
    assert not table_exists(fresh_database, "site")


def test_applied_migration_missing_from_disk_is_refused(
    fresh_database: str, migrations: Path
) -> None:
    assert run_migrate(fresh_database, migrations).returncode == 0
    (migrations / LATEST).unlink()
    result = run_migrate(fresh_database, migrations)
    assert result.returncode == 1
    assert f"{LATEST} is recorded as applied but is missing from {migrations}" in result.stderr


def test_missing_database_url_exits_1() -> None:
    result = run_migrate(None)
    assert result.returncode == 1
    assert result.stderr == (
        "migrate: DATABASE_URL is not set (postgresql://user:pw@host:port/db)\n"
    )


def test_unreachable_database_exits_1_after_waiting(fresh_database: str) -> None:
    missing = fresh_database.rsplit("/", 1)[0] + "/inventory_no_such_db"
    result = run_migrate(missing, None, "--wait", "0.3")
    assert result.returncode == 1
    assert result.stderr.startswith("migrate: cannot connect to the database: ")
    assert "inventory_no_such_db" in result.stderr


def test_missing_directory_exits_1(fresh_database: str, tmp_path: Path) -> None:
    result = run_migrate(fresh_database, tmp_path / "nowhere")
    assert result.returncode == 1
    assert result.stderr == f"migrate: migrations directory {tmp_path / 'nowhere'} does not exist\n"


def test_bad_arguments_exit_2() -> None:
    result = subprocess.run(
        [*_command(None), "--wait", "soon"],
        env=_env(None),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--wait" in result.stderr


def test_a_run_waits_for_the_advisory_lock(fresh_database: str) -> None:
    holder = psycopg2.connect(fresh_database)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        with subprocess.Popen(
            _command(None),
            env=_env(fresh_database),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            assert process.stdout is not None
            assert process.stdout.readline() == "waiting for another migration run to finish\n"
            assert process.poll() is None
            assert not table_exists(fresh_database, "site")
            with holder.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            assert sum(line.endswith(" ms") for line in out.splitlines()) == len(MIGRATION_FILES)
    finally:
        holder.close()


def test_concurrent_runs_apply_each_migration_once(fresh_database: str) -> None:
    processes = [
        subprocess.Popen(
            _command(None),
            env=_env(fresh_database),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    for process in processes:
        with process:
            out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs.append(out)
    applied = [line for out in outputs for line in out.splitlines() if line.endswith(" ms")]
    assert sorted(line.split()[1] for line in applied) == MIGRATION_FILES
    assert any(out.startswith("nothing to apply") or "waiting" in out for out in outputs)


def test_later_migrations_backfill_existing_rows(fresh_database: str, tmp_path: Path) -> None:
    """Data from before 0011/0012/0015 is carried through the later migrations."""
    early = tmp_path / "early"
    early.mkdir()
    for name in MIGRATION_FILES[:10]:
        shutil.copy(DEFAULT_DIRECTORY / name, early / name)
    assert run_migrate(fresh_database, early).returncode == 0
    with connect(fresh_database) as cur:
        cur.execute(
            "INSERT INTO site (id, name) VALUES (1, 'North Lab'), (2, 'north lab'), (3, '¡Über!')"
        )
        cur.execute("INSERT INTO freezer (id, name, site_id) VALUES (1, 'F1', 1)")
        cur.execute(
            "INSERT INTO container (uuid, freezer_id) VALUES (gen_random_uuid(), 1), "
            "(gen_random_uuid(), 1)"
        )
        cur.execute("SELECT setval(pg_get_serial_sequence('site', 'id'), 3)")

    result = run_migrate(fresh_database)
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()[:-1]] == MIGRATION_FILES[10:]
    assert query(fresh_database, "SELECT id, name, code FROM site ORDER BY id") == [
        (1, "North Lab", "NORTHLAB-1"),
        (2, "north lab (2)", "NORTHLAB-2"),
        (3, "¡Über!", "BER-3"),
    ]
    assert query(fresh_database, "SELECT count(*) FROM container WHERE created_at IS NULL") == [
        (0,)
    ]
    assert query(
        fresh_database,
        "SELECT computers, freezers, containers FROM site_inventory WHERE site_id = 1",
    ) == [(0, 1, 2)]
    with connect(fresh_database) as cur:
        cur.execute("INSERT INTO site (name) VALUES ('%%%') RETURNING code")
        assert cur.fetchone() == ("SITE-4",)


def test_discover_ignores_files_that_are_not_sql(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("notes")
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "0002_empty.sql").write_text("-- nothing yet\n")
    assert [m.name for m in discover(tmp_path)] == ["0001_first.sql", "0002_empty.sql"]


def test_discover_refuses_files_that_are_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "0001_latin1.sql").write_bytes(b"-- caf\xe9\n")
    with pytest.raises(MigrationError, match=r"0001_latin1\.sql: not UTF-8"):
        discover(tmp_path)


def test_comment_only_migration_is_recorded(fresh_database: str, tmp_path: Path) -> None:
    (tmp_path / "0001_placeholder.sql").write_text("-- reserved\n")
    result = run_migrate(fresh_database, tmp_path)
    assert result.returncode == 0, result.stderr
    assert query(fresh_database, "SELECT name FROM schema_migrations") == [
        ("0001_placeholder.sql",)
    ]
