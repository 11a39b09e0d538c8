"""The run store's tables, in SQLAlchemy Core: runs, their flows, their log lines, log blobs.

One row per run (``runs``), one per flow of a run (``flows``), the run's own log as
numbered lines (``run_log``, appended while it runs so a console can stream it) and
large texts (app logs, output, tracebacks) stored once by content hash and cut into
chunks of :data:`CHUNK_LINES` lines (``blobs``, ``blob_chunks``), so the same start-up
log of a hundred flows costs one copy and a page of it is one small query.

The schema is created and upgraded by the Alembic migrations in
``nocrud/store/migrations``; :data:`HEAD` names the newest one, so opening a store that
is already current costs one query and never loads Alembic.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

__all__ = [
    "CHUNK_LINES",
    "HEAD",
    "blob_chunks",
    "blobs",
    "flows",
    "metadata",
    "run_log",
    "runs",
]

#: The newest migration; a test checks it against Alembic's head.
HEAD: Final = "0002"

#: Lines per stored chunk of a large log: one page of the console's log viewer.
CHUNK_LINES: Final = 200

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("commit", sa.String(64), nullable=False, server_default=""),
    sa.Column("branch", sa.String(200), nullable=False, server_default=""),
    sa.Column("selection", sa.JSON, nullable=False),
    sa.Column("parallel", sa.Integer, nullable=False, server_default="1"),
    sa.Column("strategy", sa.String(32), nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("wall_time", sa.Float, nullable=True),
    sa.Column("total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("passed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
    sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("owner", sa.String(200), nullable=False, server_default=""),
    sa.Column("nocrud_run_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("nocrud_version", sa.String(32), nullable=False, server_default=""),
    sa.Column("token_hash", sa.String(64), nullable=False, server_default=""),
    # The project's name while a console-started run is active, NULL otherwise: the
    # unique index makes "one active run per project" the database's rule, race-free.
    sa.Column("active_lock", sa.String(64), nullable=True, unique=True),
    sa.Column("updated_at", sa.Float, nullable=False, index=True),
    # When someone asked the console to cancel the run; the run's own process (a CLI or CI
    # run polling the store or its console) stops when it sees it. NULL: never asked.
    sa.Column("cancel_requested", sa.Float, nullable=True),
)

flows = sa.Table(
    "flows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(300), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False, server_default="flow"),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("traceback", sa.String(64), nullable=True),
    sa.Column("output", sa.String(64), nullable=True),
    sa.Column("app_logs", sa.String(64), nullable=True),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("requests", sa.JSON, nullable=False),
    sa.Column("provision", sa.Float, nullable=False, server_default="0"),
    sa.Column("run", sa.Float, nullable=False, server_default="0"),
    sa.Column("teardown", sa.Float, nullable=False, server_default="0"),
    sa.Column("worker", sa.Integer, nullable=False, server_default="0"),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.UniqueConstraint("run_id", "name", name="uq_flows_run_name"),
)

run_log = sa.Table(
    "run_log",
    metadata,
    sa.Column(
        "run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("line", sa.Text, nullable=False),
)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("lines", sa.Integer, nullable=False),
)

blob_chunks = sa.Table(
    "blob_chunks",
    metadata,
    sa.Column(
        "hash", sa.String(64), sa.ForeignKey("blobs.hash", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("text", sa.Text, nullable=False),
)
