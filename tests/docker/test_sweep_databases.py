"""The ``external`` sweep on a real PostgreSQL server, judging owners that are containers.

A CI job that runs nocrud in a container owns its databases as ``container:<id>:…``;
the next job's sweep (and ``nocrud clean``) asks the daemon whether that container
still runs: a finished job's databases are dropped, a running job's are spared.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from psycopg2 import sql

from nocrud.docker import cleanup
from nocrud.docker.postgres import DatabaseAddress
from tests.conftest import nocrud_databases, postgres_server

pytestmark = pytest.mark.docker


def _make(url: str, name: str, owner: str) -> None:
    import psycopg2

    with contextlib.closing(psycopg2.connect(url)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            comment = f"nocrud run={name.split('_')[1]} owner={owner}"
            cur.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(name), sql.Literal(comment)
                )
            )


def test_a_finished_jobs_databases_are_dropped_and_a_running_jobs_spared(harness: Any) -> None:
    client = harness.client
    job = client.containers.run(
        "nocrud/postgres:15",  # any image that keeps running will do as the "live job"
        name=f"{harness.project}-livejob-{uuid.uuid4().hex[:6]}",
        detach=True,
        labels={"nocrud.test": harness.project},
    )
    try:
        with postgres_server(harness) as (url, _network):
            live, dead = uuid.uuid4().hex[:10], uuid.uuid4().hex[:10]
            _make(url, f"nocrud_{live}_template", f"container:{job.id}:1:1")
            _make(url, f"nocrud_{dead}_template", f"container:{'d' * 64}:7:9")
            parts = urlsplit(url)
            admin = DatabaseAddress(
                str(parts.hostname), int(parts.port or 5432), "postgres", "postgres", "postgres"
            )

            # Without the daemon nobody can tell a container owner is gone: both spared.
            assert cleanup.sweep_databases(admin) == []
            dropped = cleanup.sweep_databases(admin, client=client)

            assert dropped == [f"nocrud_{dead}_template"]
            assert nocrud_databases(url) == [f"nocrud_{live}_template"]
    finally:
        job.remove(force=True, v=True)
