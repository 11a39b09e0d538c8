"""One flow's environment on the real daemon: readiness, labels, ports, teardown; a pool reset."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests

from nocrud.config import Config, load_config
from nocrud.docker import cleanup
from nocrud.docker.engine import Engine, detect_connection
from nocrud.docker.resources import DaemonGate
from nocrud.environment import MisconfigurationError, ProvisionError, Run
from nocrud.environment.bridge import SharedBridge
from nocrud.environment.image import FreshPair
from nocrud.environment.pair import Pair
from nocrud.environment.pool import Pool
from nocrud.environment.pool_provisioner import PoolProvisioner
from nocrud.images import BuiltImages, build_images

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def built(docker_client: Any, example_config: Path) -> Iterator[tuple[Any, Config, BuiltImages]]:
    client, config = docker_client, load_config(example_config, env={})
    images = build_images(
        client,
        config,
        say=lambda _line: None,
        run_id=cleanup.new_run_id(),
        connection=detect_connection(client),
    )
    yield client, config, images


def _environment(config: Config, images: BuiltImages, client: Any, name: str) -> FreshPair:
    run = Run(
        config=config,
        run_id=cleanup.new_run_id(),
        engine=Engine(client, detect_connection(client)),
        images=images,
        say=lambda _line: None,
    )
    return FreshPair(run, name, 1)


def test_environment_is_ready_labelled_on_loopback_and_gone_after(
    built: tuple[Any, Config, BuiltImages],
) -> None:
    client, config, images = built
    with _environment(config, images, client, "ready check / with odd name") as env:
        assert requests.get(env.base_url + "/health", timeout=5).status_code == 200
        assert env.database is not None
        conn = env.database.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM schema_migrations")
                (applied,) = cur.fetchone()
        finally:
            conn.close()
        assert applied >= 15  # the image is pre-migrated: no migration ran for this flow
        containers = client.api.containers(filters={"label": f"nocrud.flow={env.flow}"})
        assert {c["Labels"]["nocrud.role"] for c in containers} == {"db", "app"}
        for container in containers:
            assert container["Labels"]["nocrud.owner"] == cleanup.owner()
            for port in container["Ports"]:
                if "PublicPort" in port:
                    assert port["IP"] == "127.0.0.1"
        run_id = containers[0]["Labels"]["nocrud.run"]
    assert client.api.containers(all=True, filters={"label": f"nocrud.run={run_id}"}) == []
    assert client.api.networks(filters={"label": f"nocrud.run={run_id}"}) == []


def test_two_environments_have_separate_databases(built: tuple[Any, Config, BuiltImages]) -> None:
    client, config, images = built
    with (
        _environment(config, images, client, "one") as one,
        _environment(config, images, client, "two") as two,
    ):
        assert one.database is not None and two.database is not None
        assert one.database.port != two.database.port
        first = one.database.connect()
        second = two.database.connect()
        try:
            first.autocommit = second.autocommit = True
            with first.cursor() as cur:
                cur.execute("CREATE TABLE only_here (id int)")
            with second.cursor() as cur, pytest.raises(psycopg2.errors.UndefinedTable):
                cur.execute("SELECT * FROM only_here")
        finally:
            first.close()
            second.close()


def test_kill_from_another_thread_unblocks_and_removes_everything(
    built: tuple[Any, Config, BuiltImages],
) -> None:
    client, config, images = built
    env = _environment(config, images, client, "killed")
    with env:
        killer = threading.Thread(target=env.kill)
        killer.start()
        killer.join(30)
        assert env.killed
        with pytest.raises(requests.RequestException):
            requests.get(env.base_url + "/health", timeout=5)
    assert client.api.containers(all=True, filters={"label": f"nocrud.flow={env.flow}"}) == []


def test_app_that_crashes_is_a_provision_error_with_evidence(
    built: tuple[Any, Config, BuiltImages],
) -> None:
    client, config, images = built
    broken = config.model_copy(
        update={
            "app": config.app.model_copy(
                update={"command": ("sh", "-c", "echo 'missing SECRET_KEY' >&2; exit 4")}
            )
        }
    )
    env = _environment(broken, images, client, "crashes")
    with pytest.raises(ProvisionError) as caught, env:
        pass
    assert "exited with code 4" in str(caught.value)
    assert "missing SECRET_KEY" in str(caught.value)
    assert client.api.containers(all=True, filters={"label": f"nocrud.flow={env.flow}"}) == []


# --------------------------------------------------------------------------- the pool's pair


def _run(config: Config, images: BuiltImages, client: Any) -> Run:
    return Run(
        config=config,
        run_id=cleanup.new_run_id(),
        engine=Engine(client, detect_connection(client)),
        images=images,
        say=lambda _line: None,
    )


@contextlib.contextmanager
def _pool_pairs(config: Config, images: BuiltImages, client: Any) -> Iterator[Callable[[], Pair]]:
    """Makes resettable pairs of one run, as the pool does; nothing of the run is left after."""
    run = _run(config, images, client)
    labels = cleanup.run_labels(run.run_id, config.project, role="pool")
    gate = DaemonGate(2)
    bridge = SharedBridge(run, labels, gate) if run.engine.connection.uses_published_ports else None
    numbers = itertools.count(1)

    def make() -> Pair:
        name = f"nocrud-{run.run_id}-pool-{next(numbers)}"
        return Pair(run, name, labels, gate=gate, bridge=bridge, resettable=True)

    try:
        yield make
    finally:
        if bridge is not None:
            bridge.close()
    assert client.api.containers(all=True, filters={"label": f"nocrud.run={run.run_id}"}) == []
    assert client.api.networks(filters={"label": f"nocrud.run={run.run_id}"}) == []


def _reloading(config: Config, how: str, **app: Any) -> Config:
    """``config`` with ``run.pool_app_reload: how`` (and ``app`` settings changed)."""
    return config.model_copy(
        update={
            "run": config.run.model_copy(update={"pool_app_reload": how}),
            "app": config.app.model_copy(update=app),
        }
    )


def test_pool_pair_reset_forgets_rows_and_the_app_process_but_keeps_app_files(
    built: tuple[Any, Config, BuiltImages],
) -> None:
    """What survives a reset is what docs/config.md says: files in the app's filesystem."""
    client, config, images = built
    config = _reloading(config, "restart")
    with _pool_pairs(config, images, client) as make, make() as pair:
        for role in ("db", "app"):
            # nocrud/postgres has a HEALTHCHECK; nocrud polls readiness itself instead.
            config_of = client.api.inspect_container(f"{pair.name}-{role}")["Config"]
            assert config_of["Healthcheck"]["Test"] == ["NONE"], config_of.get("Healthcheck")
        conn = pair.database.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE left_by_flow_one (id int)")
                cur.execute("INSERT INTO site (name) VALUES ('flow one')")
        finally:
            conn.close()
        app = client.containers.get(f"{pair.name}-app")
        app.exec_run(["sh", "-c", "echo from-flow-one > /tmp/written-by-the-app"])
        started_before = app.attrs["State"]["StartedAt"]

        pair.reset()

        conn = pair.database.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass('left_by_flow_one'), (SELECT count(*) FROM site)")
                assert cur.fetchone() == (None, 0)
                cur.execute("SELECT count(*) FROM schema_migrations")
                (applied,) = cur.fetchone()
        finally:
            conn.close()
        assert applied >= 15  # the migrated schema is back, from the template
        app.reload()
        assert app.attrs["State"]["StartedAt"] != started_before  # a new app process
        assert requests.get(pair.base_url + "/health", timeout=5).status_code == 200
        survived = app.exec_run(["cat", "/tmp/written-by-the-app"]).output.decode().strip()
        assert survived == "from-flow-one"  # the documented survivor


def test_a_fresh_flow_under_the_pool_gets_a_pair_without_the_last_flows_files(
    built: tuple[Any, Config, BuiltImages],
) -> None:
    """``@flow(fresh=True)``: the one thing a reset keeps (app files) is gone for it."""
    client, config, images = built
    with _pool_pairs(config, images, client) as make:
        pool: Pool[Pair] = Pool(make, capacity=1)
        try:
            first = pool.acquire()
            first_env = first.env  # the slot stays; its environment is what a renewal replaces
            app = client.containers.get(f"{first.env.name}-app")
            app.exec_run(["sh", "-c", "echo from-flow-one > /tmp/written-by-the-app"])
            pool.release(first)

            again = pool.acquire()  # a plain flow: the same pair, reset, the file still there
            assert again.env is first_env
            assert app.exec_run(["cat", "/tmp/written-by-the-app"]).exit_code == 0
            pool.release(again)

            fresh = pool.acquire(fresh=True)
            assert fresh.env is not first_env
            new_app = client.containers.get(f"{fresh.env.name}-app")
            assert new_app.id != app.id
            assert new_app.exec_run(["cat", "/tmp/written-by-the-app"]).exit_code != 0
            assert requests.get(fresh.env.base_url + "/health", timeout=5).status_code == 200
            pool.release(fresh)
        finally:
            pool.close()


def test_a_pool_reset_by_signal_forks_new_workers_and_forgets_rows(
    built: tuple[Any, Config, BuiltImages],
) -> None:
    """``run.pool_app_reload: HUP``: gunicorn --preload forks every worker anew, no restart."""
    client, config, images = built

    def processes() -> tuple[set[int], set[int]]:
        top = app.top(ps_args="-o pid,ppid")["Processes"]
        pids = {int(pid) for pid, _ in top}
        workers = {int(pid) for pid, ppid in top if int(ppid) in pids}
        return pids - workers, workers

    with _pool_pairs(_reloading(config, "HUP"), images, client) as make, make() as pair:
        app = client.containers.get(f"{pair.name}-app")
        started_before = app.attrs["State"]["StartedAt"]
        master, workers = processes()
        assert len(master) == 1 and workers, (master, workers)
        conn = pair.database.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("INSERT INTO site (name) VALUES ('flow one')")
        finally:
            conn.close()

        pair.reset()

        app.reload()
        assert app.attrs["State"]["StartedAt"] == started_before  # not restarted
        master_after, workers_after = processes()
        assert master_after == master  # the preloaded master stays
        assert workers_after and not workers_after & workers  # every worker is new
        conn = pair.database.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM site")
                assert cur.fetchone() == (0,)
        finally:
            conn.close()
        assert requests.get(pair.base_url + "/health", timeout=5).status_code == 200


def test_a_signal_reload_refuses_an_app_without_workers(
    built: tuple[Any, Config, BuiltImages],
) -> None:
    """One process serving requests would keep its state across a signal: a config error."""
    client, config, images = built
    single = ("python3", "-m", "flask", "--app", "inventory:create_app", "run")
    config = _reloading(config, "HUP", command=(*single, "--host", "0.0.0.0", "--port", "8000"))
    with _pool_pairs(config, images, client) as make, pytest.raises(MisconfigurationError) as info:
        make().__enter__()
    assert "runs a single process" in str(info.value)
    assert "run.pool_app_reload: auto" in str(info.value)


@pytest.mark.parametrize("workers", [True, False], ids=["gunicorn workers", "single process"])
def test_the_pool_suggests_a_signal_reload_once_and_only_for_an_app_with_workers(
    built: tuple[Any, Config, BuiltImages], workers: bool
) -> None:
    """Under ``restart``, a gunicorn app gets one line pointing at ``auto`` (which sends HUP)."""
    client, config, images = built
    single = ("python3", "-m", "flask", "--app", "inventory:create_app", "run")
    app = {} if workers else {"command": (*single, "--host", "0.0.0.0", "--port", "8000")}
    said: list[str] = []
    run = dataclasses.replace(
        _run(_reloading(config, "restart", **app), images, client), say=said.append
    )
    provisioner = PoolProvisioner()
    provisioner.prepare(run)
    try:
        for flow in ("first", "second"):  # the second gets the first's pair, reset
            with provisioner.acquire(flow) as pair:
                assert requests.get(pair.base_url + "/health", timeout=5).status_code == 200
    finally:
        provisioner.close()
    hints = [line for line in said if "run.pool_app_reload: auto would" in line]
    assert len(hints) == (1 if workers else 0), said
    assert client.api.containers(all=True, filters={"label": f"nocrud.run={run.run_id}"}) == []
