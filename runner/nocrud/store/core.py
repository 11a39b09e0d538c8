"""The run store: every run's flows, statuses, steps, timings, logs, in one database.

:class:`RunStore` writes what a run produces as it happens (a run row, a row per flow,
numbered log lines) and answers the console's questions (runs by page and filter, a
run's flows, a flow's history, a page of a log). SQLite (WAL, so a ``nocrud up`` writing
and a ``nocrud serve`` reading never block each other) under ``.nocrud/`` by default;
any SQLAlchemy URL otherwise, PostgreSQL tested. Opening a store migrates it to the
newest schema with Alembic, so a newer nocrud opens an older history.

Rows come back as plain dicts (JSON-ready); large texts come back as references to
stored blobs and are read a page at a time (:meth:`RunStore.blob_page`).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from nocrud.masking import mask_text
from nocrud.results import FlowResult, RunResult
from nocrud.store import schema
from nocrud.store.schema import CHUNK_LINES, blob_chunks, blobs, flows, run_log, runs

__all__ = [
    "ACTIVE",
    "DEFAULT_FILE",
    "ActiveRunError",
    "RunFilter",
    "RunStatus",
    "RunStore",
    "StoreError",
    "default_url",
    "hash_token",
]

#: Where a store's URL is set, for messages: the key, its variable, the flag.
_WHERE: Final = "store.url in nocrud.yaml (or NOCRUD_STORE_URL, or serve --store)"

#: The history database's file name under ``.nocrud/``.
DEFAULT_FILE: Final = "history.db"


class StoreError(Exception):
    """The store cannot be opened or used; the message says which store and what to do."""


class ActiveRunError(StoreError):
    """A console run of this project is still active.

    Attributes:
        run_id: The active run, for a link to it.
    """

    def __init__(self, project: str, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"project {project!r} already has an active run ({run_id}): "
            "wait for it or cancel it first"
        )


class RunStatus(enum.StrEnum):
    """Where a run is in its life; the last five are final."""

    QUEUED = "queued"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


#: Statuses of a run that is not over yet.
ACTIVE: Final = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})


@dataclass(frozen=True)
class RunFilter:
    """What the runs page filters by; empty fields filter nothing."""

    project: str = ""
    status: str = ""
    flow: str = ""
    branch: str = ""
    since: float | None = None
    until: float | None = None


def default_url(root: Path) -> str:
    """The SQLite history of the project whose nocrud.yaml is in ``root``."""
    return f"sqlite:///{root / '.nocrud' / DEFAULT_FILE}"


def hash_token(token: str) -> str:
    """What the store keeps of a per-run token (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> float:
    return time.time()


class RunStore:
    """One history database. Thread-safe: every call takes its own connection.

    Args:
        url: A SQLAlchemy URL (``sqlite:///path``, ``postgresql://user:pw@host/db``).
        migrate: Bring the schema up to date (the default); False for a store
            another process keeps current.

    Raises:
        StoreError: The database cannot be reached or migrated.
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self._engine = _engine(url)
        # sha256 of a raw text -> its stored (masked) blob: a log seen twice is masked once.
        self._masked: dict[bytes, str] = {}
        if migrate:
            self._migrate()

    def close(self) -> None:
        self._engine.dispose()

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    # -- schema --------------------------------------------------------------------

    def schema_version(self) -> str | None:
        """The migration the database is at; None when it has none yet."""
        with self._engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def _migrate(self) -> None:
        try:
            if self.schema_version() == schema.HEAD:
                return  # current: Alembic is not even imported
            from alembic import command
            from alembic.config import Config as AlembicConfig

            config = AlembicConfig()
            config.set_main_option("script_location", "nocrud.store:migrations")
            with self._engine.begin() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the run store {_display(self.url)}: {exc.__class__.__name__}: "
                f"{mask_text(str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc))}; "
                f"check {_WHERE}, or record nothing with --no-record"
            ) from None

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            yield conn

    # -- writing a run -------------------------------------------------------------

    def create_run(
        self,
        *,
        project: str,
        trigger: str,
        run_id: str | None = None,
        selection: Mapping[str, Any] | None = None,
        parallel: int = 1,
        strategy: str = "",
        status: RunStatus = RunStatus.QUEUED,
        lock: bool = False,
        owner: str = "",
    ) -> tuple[str, str]:
        """Add a run; returns its id and a new per-run token (kept only as a hash).

        Args:
            lock: Take the project's one active-run slot: a second locked run of the
                same project raises :class:`ActiveRunError` until the first finishes,
                decided by a unique index (two racing requests cannot both win).

        Raises:
            ActiveRunError: ``lock`` and the project already has an active run.
        """
        run_id = run_id or secrets.token_hex(5)
        token = secrets.token_urlsafe(24)
        now = _now()
        row = {
            "id": run_id,
            "project": project,
            "status": str(status),
            "trigger": trigger,
            "selection": dict(selection or {}),
            "parallel": parallel,
            "strategy": strategy,
            "created_at": now,
            "started_at": now if status is RunStatus.RUNNING else None,
            "owner": owner,
            "token_hash": hash_token(token),
            "active_lock": project if lock else None,
            "updated_at": now,
        }
        try:
            with self._begin() as conn:
                conn.execute(runs.insert().values(**row))
        except sa.exc.IntegrityError:
            if not lock:
                raise StoreError(f"a run with id {run_id!r} is already recorded") from None
            active = self.active_run(project)
            raise ActiveRunError(project, active["id"] if active else "?") from None
        return run_id, token

    def active_run(self, project: str) -> dict[str, Any] | None:
        """The project's locked (console-started) run that is still active."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.active_lock == project)).first()
        return dict(row._mapping) if row else None

    def start_run(
        self,
        run_id: str,
        *,
        flow_names: Sequence[str] = (),
        commit: str = "",
        branch: str = "",
        nocrud_run_id: str = "",
        nocrud_version: str = "",
        owner: str | None = None,
        parallel: int | None = None,
        strategy: str | None = None,
    ) -> None:
        """The run has its flows: mark it running and list them as queued."""
        now = _now()
        values: dict[str, Any] = {
            "status": str(RunStatus.RUNNING),
            "started_at": now,
            "commit": commit[:64],
            "branch": branch[:200],
            "nocrud_run_id": nocrud_run_id,
            "nocrud_version": nocrud_version,
            "total": len(flow_names),
            "updated_at": now,
        }
        if owner is not None:
            values["owner"] = owner
        if parallel is not None:
            values["parallel"] = parallel
        if strategy is not None:
            values["strategy"] = strategy
        with self._begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(**values))
            existing = {
                r.name
                for r in conn.execute(sa.select(flows.c.name).where(flows.c.run_id == run_id))
            }
            fresh = [n for n in dict.fromkeys(flow_names) if n not in existing]
            if fresh:
                conn.execute(
                    flows.insert(),
                    [
                        {
                            "run_id": run_id,
                            "name": n,
                            "status": "queued",
                            "steps": [],
                            "requests": [],
                        }
                        for n in fresh
                    ],
                )

    def set_owner(self, run_id: str, owner: str) -> None:
        """The ``host:pid`` of the process running ``run_id`` (to tell a dead run on restart)."""
        with self._begin() as conn:
            conn.execute(
                runs.update().where(runs.c.id == run_id).values(owner=owner, updated_at=_now())
            )

    def flow_started(self, run_id: str, name: str, worker: int) -> None:
        now = _now()
        with self._begin() as conn:
            done = conn.execute(
                flows.update()
                .where(flows.c.run_id == run_id, flows.c.name == name)
                .values(status="running", worker=worker, started_at=now)
            )
            if not done.rowcount:
                conn.execute(
                    flows.insert().values(
                        run_id=run_id,
                        name=name,
                        status="running",
                        worker=worker,
                        started_at=now,
                        steps=[],
                        requests=[],
                    )
                )
            self._touch(conn, run_id, now)

    def flow_finished(self, run_id: str, result: FlowResult) -> None:
        """Record one flow's result; its texts are masked and large ones stored once."""
        now = _now()
        with self._begin() as conn:
            values = {
                "kind": result.kind,
                "status": result.status.value,
                "message": mask_text(result.message),
                "traceback": self._put_text(conn, result.traceback),
                "output": self._put_text(conn, result.output),
                "app_logs": self._put_text(conn, result.app_logs),
                "steps": [s.to_dict() | {"message": mask_text(s.message)} for s in result.steps],
                "requests": [r.to_dict() for r in result.requests],
                "provision": result.timings.provision,
                "run": result.timings.run,
                "teardown": result.timings.teardown,
                "worker": result.worker,
                "finished_at": now,
            }
            done = conn.execute(
                flows.update()
                .where(flows.c.run_id == run_id, flows.c.name == result.name)
                .values(**values)
            )
            if not done.rowcount:
                conn.execute(flows.insert().values(run_id=run_id, name=result.name, **values))
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(**_counts(conn, run_id), updated_at=now)
            )

    def append_log(self, run_id: str, lines: Iterable[str]) -> None:
        """Add lines to the run's own log (masked), numbered after the last one."""
        masked = [mask_text(line) for line in lines]
        if not masked:
            return
        with self._begin() as conn:
            # Touch the run first: that write locks its row (PostgreSQL) or the database
            # (SQLite) until commit, so the last number is read after any other writer's
            # lines are in, and two writers never number a line alike.
            self._touch(conn, run_id, _now())
            last = conn.execute(
                sa.select(sa.func.max(run_log.c.seq)).where(run_log.c.run_id == run_id)
            ).scalar()
            start = (last or 0) + 1
            conn.execute(
                run_log.insert(),
                [
                    {"run_id": run_id, "seq": start + i, "line": line}
                    for i, line in enumerate(masked)
                ],
            )

    def finish_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        result: RunResult | None = None,
        exit_code: int | None = None,
        message: str = "",
    ) -> None:
        """The run is over: record its final status, results and release its slot."""
        if result is not None:
            for flow in result.flows:
                if not self._has_result(run_id, flow.name):
                    self.flow_finished(run_id, flow)
        now = _now()
        with self._begin() as conn:
            # Flows that never got a result did not run: the run ended first.
            conn.execute(
                flows.update()
                .where(flows.c.run_id == run_id, flows.c.status.in_(("queued", "running")))
                .values(status="skipped" if status is not RunStatus.INTERRUPTED else "error")
            )
            run = conn.execute(sa.select(runs.c.started_at).where(runs.c.id == run_id)).first()
            values: dict[str, Any] = {
                "status": str(status),
                "finished_at": now,
                "exit_code": exit_code,
                "message": mask_text(message),
                "active_lock": None,
                "updated_at": now,
                **_counts(conn, run_id),
            }
            if result is not None:
                values["wall_time"] = result.wall_time
                values["nocrud_version"] = result.nocrud_version
            elif run is not None and run.started_at is not None:
                values["wall_time"] = now - run.started_at
            conn.execute(runs.update().where(runs.c.id == run_id).values(**values))

    def _has_result(self, run_id: str, name: str) -> bool:
        with self._engine.connect() as conn:
            status = conn.execute(
                sa.select(flows.c.status).where(flows.c.run_id == run_id, flows.c.name == name)
            ).scalar()
        return status not in (None, "queued", "running")

    def mark_interrupted(self, run_ids: Iterable[str], reason: str) -> int:
        """Runs that were active when their process died are over: interrupted."""
        count = 0
        for run_id in run_ids:
            self.append_log(run_id, [f"nocrud: {reason}"])
            self.finish_run(run_id, status=RunStatus.INTERRUPTED, message=reason)
            count += 1
        return count

    def active_runs(self) -> list[dict[str, Any]]:
        """Every run still queued or running, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(runs)
                .where(runs.c.status.in_([str(s) for s in ACTIVE]))
                .order_by(runs.c.created_at)
            ).all()
        return [dict(r._mapping) for r in rows]

    def request_cancel(self, run_id: str) -> bool:
        """Ask the run's own process to stop (it polls :meth:`cancel_requested`).

        Returns:
            True when the run is still active, so the request can be heard.
        """
        now = _now()
        with self._begin() as conn:
            done = conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status.in_([str(s) for s in ACTIVE]))
                .values(
                    cancel_requested=sa.func.coalesce(runs.c.cancel_requested, now), updated_at=now
                )
            )
        return bool(done.rowcount)

    def cancel_requested(self, run_id: str) -> bool:
        """True once someone asked the console to cancel ``run_id``."""
        with self._engine.connect() as conn:
            asked = conn.execute(
                sa.select(runs.c.cancel_requested).where(runs.c.id == run_id)
            ).scalar()
        return asked is not None

    def check_token(self, run_id: str, token: str) -> bool:
        """True when ``token`` is the one issued for ``run_id``."""
        with self._engine.connect() as conn:
            stored = conn.execute(sa.select(runs.c.token_hash).where(runs.c.id == run_id)).scalar()
        return bool(stored) and secrets.compare_digest(str(stored), hash_token(token))

    def _touch(self, conn: Connection, run_id: str, now: float) -> None:
        conn.execute(runs.update().where(runs.c.id == run_id).values(updated_at=now))

    def _put_text(self, conn: Connection, raw: str) -> str | None:
        """Mask ``raw`` and store it once; a text seen before is not masked again."""
        if not raw:
            return None
        seen = hashlib.sha256(raw.encode()).digest()
        digest = self._masked.get(seen)
        if (
            digest is not None
            and conn.execute(sa.select(blobs.c.hash).where(blobs.c.hash == digest)).first()
        ):
            return digest
        digest = self._put_blob(conn, mask_text(raw))
        if len(self._masked) >= 1024:
            self._masked.pop(next(iter(self._masked)))
        if digest is not None:
            self._masked[seen] = digest
        return digest

    def _put_blob(self, conn: Connection, text: str) -> str | None:
        """Store ``text`` once (by content hash) in chunks of lines; None when empty."""
        if not text:
            return None
        digest = hashlib.sha256(text.encode()).hexdigest()
        if conn.execute(sa.select(blobs.c.hash).where(blobs.c.hash == digest)).first():
            return digest
        lines = text.splitlines(keepends=True)
        _insert_ignore(
            conn, blobs, [{"hash": digest, "size": len(text), "lines": len(lines)}], "hash"
        )
        _insert_ignore(
            conn,
            blob_chunks,
            [
                {"hash": digest, "seq": i, "text": "".join(lines[start : start + CHUNK_LINES])}
                for i, start in enumerate(range(0, len(lines), CHUNK_LINES))
            ],
            "hash",
        )
        return digest

    # -- retention -----------------------------------------------------------------

    def retain(self, *, keep_runs: int, keep_days: float, now: float | None = None) -> int:
        """Delete finished runs beyond the newest ``keep_runs`` or older than ``keep_days``.

        Active runs are never deleted; blobs no other flow refers to go with them.
        Returns how many runs were deleted.
        """
        cutoff = (now or _now()) - keep_days * 86400
        with self._begin() as conn:
            finished = runs.c.status.not_in([str(s) for s in ACTIVE])
            keep = (
                sa.select(runs.c.id)
                .where(finished)
                .order_by(runs.c.created_at.desc())
                .limit(max(keep_runs, 0))
            )
            doomed = [
                r.id
                for r in conn.execute(
                    sa.select(runs.c.id).where(
                        finished,
                        sa.or_(
                            runs.c.id.not_in(keep.scalar_subquery()), runs.c.created_at < cutoff
                        ),
                    )
                )
            ]
            for start in range(0, len(doomed), 500):
                batch = doomed[start : start + 500]
                conn.execute(run_log.delete().where(run_log.c.run_id.in_(batch)))
                conn.execute(flows.delete().where(flows.c.run_id.in_(batch)))
                conn.execute(runs.delete().where(runs.c.id.in_(batch)))
            if doomed:
                used = sa.union(
                    sa.select(flows.c.traceback.label("h")).where(flows.c.traceback.is_not(None)),
                    sa.select(flows.c.output).where(flows.c.output.is_not(None)),
                    sa.select(flows.c.app_logs).where(flows.c.app_logs.is_not(None)),
                ).subquery()
                orphans = sa.select(blobs.c.hash).where(blobs.c.hash.not_in(sa.select(used.c.h)))
                conn.execute(blob_chunks.delete().where(blob_chunks.c.hash.in_(orphans)))
                conn.execute(
                    blobs.delete().where(
                        blobs.c.hash.not_in(sa.select(blob_chunks.c.hash).distinct())
                    )
                )
        return len(doomed)

    # -- reading -------------------------------------------------------------------

    def changed_at(self, run_id: str | None = None) -> float:
        """When anything (or the run ``run_id``) last changed: what live pages poll."""
        query = sa.select(sa.func.max(runs.c.updated_at))
        if run_id is not None:
            query = query.where(runs.c.id == run_id)
        with self._engine.connect() as conn:
            return float(conn.execute(query).scalar() or 0.0)

    def list_runs(
        self, where: RunFilter = RunFilter(), *, page: int = 1, per_page: int = 25
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of runs, newest first, and how many match in all."""
        conditions: list[Any] = []
        if where.project:
            conditions.append(runs.c.project == where.project)
        if where.status:
            conditions.append(runs.c.status == where.status)
        if where.branch:
            conditions.append(runs.c.branch == where.branch)
        if where.since is not None:
            conditions.append(runs.c.created_at >= where.since)
        if where.until is not None:
            conditions.append(runs.c.created_at < where.until)
        if where.flow:
            conditions.append(
                runs.c.id.in_(sa.select(flows.c.run_id).where(flows.c.name == where.flow))
            )
        with self._engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(runs).where(*conditions)
            ).scalar_one()
            rows = conn.execute(
                sa.select(*_run_columns())
                .where(*conditions)
                .order_by(runs.c.created_at.desc())
                .limit(per_page)
                .offset((max(page, 1) - 1) * per_page)
            ).all()
        return [dict(r._mapping) for r in rows], int(total)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(*_run_columns()).where(runs.c.id == run_id)).first()
        return dict(row._mapping) if row else None

    def run_flows(self, run_id: str) -> list[dict[str, Any]]:
        """The run's flows in the order they were listed (texts as blob references)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(flows).where(flows.c.run_id == run_id).order_by(flows.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def flow_history(
        self, name: str, *, project: str = "", limit: int = 30
    ) -> list[dict[str, Any]]:
        """The flow's last ``limit`` results, newest first, with their run's commit."""
        query = (
            sa.select(
                flows.c.run_id,
                flows.c.status,
                flows.c.message,
                flows.c.provision,
                flows.c.run,
                flows.c.teardown,
                runs.c.commit,
                runs.c.branch,
                runs.c.created_at,
                runs.c.project,
            )
            .join(runs, runs.c.id == flows.c.run_id)
            .where(flows.c.name == name, flows.c.status.not_in(("queued", "running")))
            .order_by(runs.c.created_at.desc())
            .limit(limit)
        )
        if project:
            query = query.where(runs.c.project == project)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def previous_run(self, run: Mapping[str, Any]) -> dict[str, Any] | None:
        """The finished run of the same project just before ``run``."""
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(*_run_columns())
                .where(
                    runs.c.project == run["project"],
                    runs.c.created_at < run["created_at"],
                    runs.c.status.not_in([str(s) for s in ACTIVE]),
                )
                .order_by(runs.c.created_at.desc())
                .limit(1)
            ).first()
        return dict(row._mapping) if row else None

    def log_lines(self, run_id: str, *, after: int = 0, limit: int = 500) -> list[tuple[int, str]]:
        """The run's log lines numbered after ``after``, at most ``limit``."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(run_log.c.seq, run_log.c.line)
                .where(run_log.c.run_id == run_id, run_log.c.seq > after)
                .order_by(run_log.c.seq)
                .limit(limit)
            ).all()
        return [(int(r.seq), str(r.line)) for r in rows]

    def blob_page(self, digest: str, page: int = 0) -> tuple[str, int]:
        """Page ``page`` (0-based, :data:`CHUNK_LINES` lines) of a stored text, and the count."""
        with self._engine.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(blob_chunks)
                .where(blob_chunks.c.hash == digest)
            ).scalar_one()
            text = conn.execute(
                sa.select(blob_chunks.c.text).where(
                    blob_chunks.c.hash == digest, blob_chunks.c.seq == page
                )
            ).scalar()
        return (str(text) if text is not None else ""), int(count)

    def blob_tail(self, digest: str | None, lines: int = 40) -> str:
        """The last ``lines`` lines of a stored text (one or two chunks, never the whole)."""
        if not digest:
            return ""
        _, pages = self.blob_page(digest)
        if not pages:
            return ""
        last, _ = self.blob_page(digest, pages - 1)
        text = last
        if pages > 1 and last.count("\n") < lines:
            before, _ = self.blob_page(digest, pages - 2)
            text = before + last
        return "".join(text.splitlines(keepends=True)[-lines:])

    def projects(self) -> list[str]:
        with self._engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(sa.select(runs.c.project).distinct())]

    def branches(self) -> list[str]:
        with self._engine.connect() as conn:
            return [
                str(r[0])
                for r in conn.execute(
                    sa.select(runs.c.branch).where(runs.c.branch != "").distinct()
                )
            ]


def _run_columns() -> list[sa.Column[Any]]:
    """Every column of a run but its token's hash, which never leaves the store."""
    return [c for c in runs.columns if c.name != "token_hash"]


def _counts(conn: Connection, run_id: str) -> dict[str, int]:
    rows = conn.execute(
        sa.select(flows.c.status, sa.func.count())
        .where(flows.c.run_id == run_id)
        .group_by(flows.c.status)
    ).all()
    by = {str(status): int(n) for status, n in rows}
    return {
        "total": sum(by.values()),
        "passed": by.get("passed", 0),
        "failed": by.get("failed", 0),
        "errors": by.get("error", 0),
        "skipped": by.get("skipped", 0),
    }


def _insert_ignore(conn: Connection, table: sa.Table, rows: list[dict[str, Any]], key: str) -> None:
    """Insert rows, skipping any another writer stored first (same content hash)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover - other databases: plain insert, a racing duplicate fails loudly
        conn.execute(table.insert(), rows)
    del key


def _engine(url: str) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(
            f"run store URL {_display(url)!r} is not a database URL: set {_WHERE} to "
            "sqlite:///path/history.db or postgresql://user:password@host:5432/db"
        ) from None
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot open the run store {_display(url)}: {exc.strerror}: {exc.filename}; "
                    f"check {_WHERE}, or record nothing with --no-record"
                ) from None
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    try:
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=4)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise StoreError(f"run store URL {_display(url)}: {exc}") from None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _display(url: str) -> str:
    return mask_text(url)
