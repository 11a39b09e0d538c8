"""The first schema of the run store: runs, flows, run_log, blobs, blob_chunks.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False, server_default=""),
        sa.Column("branch", sa.String(200), nullable=False, server_default=""),
        sa.Column("selection", sa.JSON, nullable=False),
        sa.Column("parallel", sa.Integer, nullable=False, server_default="1"),
        sa.Column("strategy", sa.String(32), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
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
        sa.Column("active_lock", sa.String(64), nullable=True, unique=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_runs_project", "runs", ["project"])
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_updated_at", "runs", ["updated_at"])
    op.create_table(
        "flows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.String(64),
            sa.ForeignKey("runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(300), nullable=False),
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
    op.create_index("ix_flows_name", "flows", ["name"])
    op.create_table(
        "run_log",
        sa.Column(
            "run_id",
            sa.String(64),
            sa.ForeignKey("runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("line", sa.Text, nullable=False),
    )
    op.create_table(
        "blobs",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
    )
    op.create_table(
        "blob_chunks",
        sa.Column(
            "hash",
            sa.String(64),
            sa.ForeignKey("blobs.hash", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("text", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("blob_chunks", "blobs", "run_log", "flows", "runs"):
        op.drop_table(table)
