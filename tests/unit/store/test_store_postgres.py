"""The run store on a real PostgreSQL: the same migrations, the same race-free rule, retention."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from nocrud.results import FlowResult, Status
from nocrud.store import ActiveRunError, RunStatus, RunStore
from nocrud.store.schema import HEAD

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def postgres_url(docker_client: Any, base_images: None) -> Iterator[str]:
    """A PostgreSQL container of nocrud's image on a loopback port, removed after."""
    import psycopg2

    container = docker_client.containers.run(
        "nocrud/postgres:15",
        detach=True,
        labels={"nocrud.test": f"store-{uuid.uuid4().hex[:8]}"},
        ports={"5432/tcp": ("127.0.0.1", None)},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            container.reload()
            port = container.ports.get("5432/tcp")
            if port:
                url = f"postgresql://postgres:postgres@127.0.0.1:{port[0]['HostPort']}/postgres"
                try:
                    psycopg2.connect(
                        url.replace("postgresql://", "postgres://"), connect_timeout=2
                    ).close()
                    break
                except psycopg2.OperationalError:
                    pass
            if time.monotonic() > deadline:
                pytest.fail(f"PostgreSQL did not start: {container.logs(tail=20).decode()}")
            time.sleep(0.3)
        yield url
    finally:
        container.remove(force=True, v=True)


def test_postgres_store_migrates_records_races_and_retains(postgres_url: str) -> None:
    store = RunStore(postgres_url)
    assert store.dialect == "postgresql" and store.schema_version() == HEAD
    assert RunStore(postgres_url).schema_version() == HEAD  # reopening is a no-op

    winners: list[str] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        with contextlib.suppress(ActiveRunError):
            winners.append(store.create_run(project="pg", trigger="console", lock=True)[0])

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1

    run_id = winners[0]
    store.start_run(run_id, flow_names=["a", "b"])
    logs = "same start-up log\n" * 500
    store.flow_finished(run_id, FlowResult("a", Status.PASSED, app_logs=logs))
    store.flow_finished(run_id, FlowResult("b", Status.FAILED, message="x", app_logs=logs))
    store.append_log(run_id, ["one", "two"])
    store.finish_run(run_id, status=RunStatus.FAILED, exit_code=1)
    run = store.get_run(run_id)
    assert run is not None and (run["passed"], run["failed"], run["active_lock"]) == (1, 1, None)
    flows = store.run_flows(run_id)
    assert flows[0]["app_logs"] == flows[1]["app_logs"]
    assert store.blob_page(flows[0]["app_logs"])[1] == 3
    assert [line for _, line in store.log_lines(run_id)] == ["one", "two"]
    assert store.retain(keep_runs=0, keep_days=30) == 1
    assert store.list_runs()[1] == 0
    store.close()
