"""``run.pool_app_reload: auto`` on each common server, on the real daemon (issue 25.3, 21.12).

One tiny Django app (``tests/e2e/strangers/servers``) under each Python server, and the
compiled server of ``tests/e2e/strangers/binapp``: their images are built once for the
module (by ``benchmarks/reset_servers.py``'s own helpers, whose reduced run is the last
test). Each server gets one pool pair: ``auto`` must pick the expected reset, and one
reset must leave no process state of the last flow. Then what item 21.12 was about: a
signal that cannot work is refused at the first pair, and a reset that waits in vain says
what it waits for and gives up at its deadline instead of hanging.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nocrud.config import Config
from nocrud.docker import cleanup
from nocrud.docker.engine import Engine, detect_connection
from nocrud.environment import MisconfigurationError, ProvisionError, Run
from nocrud.environment.pool_provisioner import PoolProvisioner
from nocrud.environment.reload import Reload, last_renewal, reset_budget
from nocrud.images import BuiltImages
from tests.conftest import PROJECT, benchmark_module

# Two Debian image builds, then a pair per server: minutes when the machine is busy.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

bench = benchmark_module("reset_servers")
SHAPES = [s for s in bench.SERVERS if s.project in ("servers", "binapp")]
Projects = dict[str, tuple[Config, BuiltImages]]


@pytest.fixture(scope="module")
def built(
    docker_client: Any, base_images: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, Projects]]:
    engine = Engine(docker_client, detect_connection(docker_client))
    root = tmp_path_factory.mktemp("servers")
    with bench.projects(engine, root, PROJECT, {"servers", "binapp"}) as projects:
        yield engine, projects
    for config, _images in projects.values():
        left = docker_client.api.containers(
            all=True, filters={"label": f"nocrud.project={config.project}"}
        )
        assert left == [], left


def _server(label: str, **changes: Any) -> Any:
    return dataclasses.replace(next(s for s in bench.SERVERS if s.label == label), **changes)


def _with_reload(config: Config, how: str, app_ready: float | None = None) -> Config:
    timeouts = config.timeouts
    if app_ready is not None:
        timeouts = timeouts.model_copy(update={"app_ready": app_ready})
    return config.model_copy(
        update={
            "run": config.run.model_copy(update={"pool_app_reload": how}),
            "timeouts": timeouts,
        }
    )


@pytest.mark.parametrize("server", SHAPES, ids=[s.label for s in SHAPES])
def test_auto_picks_the_expected_reset_and_it_renews_the_app(
    built: tuple[Engine, Projects], server: Any
) -> None:
    engine, projects = built
    config, images = projects[server.project]
    with bench.server_pair(engine, config, images, server) as pair:
        assert pair.reload.kind == server.expected, pair.reload
        app = engine.client.containers.get(f"{pair.name}-app")
        started = app.attrs["State"]["StartedAt"]
        before = {bench.served(pair).get("pid") for _ in range(3)}

        pair.reset()

        after = {bench.served(pair).get("pid") for _ in range(3)}
        app.reload()
        if server.expected == "restart":
            assert app.attrs["State"]["StartedAt"] != started  # every process is new
        else:
            # A signal renews the workers without a restart: none that served answers again.
            assert app.attrs["State"]["StartedAt"] == started
            assert None not in before and not after & before, (before, after)
        if pair.reload.announced:
            # nocrud's launcher: the reset waited for its renewal line, not a process list.
            assert last_renewal(pair.app_logs(200)) == 1
            pair.reset()
            assert last_renewal(pair.app_logs(200)) == 2
            assert not {bench.served(pair).get("pid") for _ in range(3)} & (after | before)
            # A restart in between (the benchmark alternates them) starts the launcher's
            # count again: the next HUP's renewal is 1 again, and must still be seen.
            chosen, pair.reload = pair.reload, Reload(None, None, "the app", "restart")
            pair.reset()
            pair.reload = chosen
            restarted = {bench.served(pair).get("pid") for _ in range(3)}
            pair.reset()
            assert last_renewal(pair.app_logs(200)) == 1
            assert not {bench.served(pair).get("pid") for _ in range(3)} & restarted


def test_the_pool_says_once_how_it_resets_and_that_warm_pairs_hide_a_full_boot(
    built: tuple[Engine, Projects],
) -> None:
    """Django's runserver: restart is a full boot; the run's output says so once, not per flow."""
    engine, projects = built
    config, images = projects["servers"]
    server = _server("Django runserver")
    config = config.model_copy(
        update={"app": config.app.model_copy(update={"command": server.command})}
    )
    said: list[str] = []
    run_id = cleanup.new_run_id()
    run = Run(config=config, run_id=run_id, engine=engine, images=images, say=said.append)
    provisioner = PoolProvisioner()
    provisioner.prepare(run)
    pairs = []
    try:
        for flow in ("first", "second"):
            with provisioner.acquire(flow) as pair:
                bench.served(pair)
                pairs.append(pair)
    finally:
        provisioner.close()
    assert pairs[0] is pairs[1]  # the second flow got the first's pair, reset
    lines = [line for line in said if line.startswith("pool: the app is")]
    assert len(lines) == 1, said
    assert lines[0].startswith(
        "pool: the app is Django's runserver with its autoreloader: each reset renews it by a "
        "restart of the app's container"
    )
    assert "--warm N (run.warm) overlaps those boots" in lines[0]


def test_hup_on_a_shell_wrapper_is_refused_at_the_first_pair(
    built: tuple[Engine, Projects],
) -> None:
    """Item 21.12: followed, the old hint made every reset wait a minute for nothing."""
    engine, projects = built
    config, images = projects["servers"]
    server = _server("sh -c wrapper, gunicorn")
    with (
        pytest.raises(MisconfigurationError) as caught,
        bench.server_pair(engine, _with_reload(config, "HUP"), images, server),
    ):
        pass
    assert "SIGHUP reaches the shell, which does not pass it on" in str(caught.value)
    assert "run.pool_app_reload: auto" in str(caught.value)


def test_a_reset_that_waits_in_vain_says_for_what_and_gives_up_at_its_deadline(
    built: tuple[Engine, Projects],
) -> None:
    """HUP to uvicorn's ``--workers`` supervisor, which ignores it: bounded, and said."""
    engine, projects = built
    config, images = projects["servers"]
    server = _server(
        "uvicorn alone",
        command=(*bench.UVICORN, "--workers", "2", "tiny.asgi:application"),
    )
    said: list[str] = []
    deadline = 8.0  # timeouts.app_ready: at most this, twice the boot plus 5 s at least
    with bench.server_pair(
        engine, _with_reload(config, "HUP", deadline), images, server, say=said.append
    ) as pair:
        expected, _slow_after = reset_budget(pair.boot, deadline)
        began = time.monotonic()
        with pytest.raises(ProvisionError, match="did not renew its workers"):
            pair.reset()
        took = time.monotonic() - began
    assert expected <= took < expected + 10, (took, expected)
    slow = [line for line in said if "takes" in line]
    assert len(slow) == 1, said
    # Its children: two workers and multiprocessing's resource tracker.
    waiting = (
        r"waiting for uvicorn with \d child processes \(pid \d+ on the Docker host\) to stop "
        r"\d worker\(s\) of the last flow after SIGHUP \(pid \d+, "
    )
    assert re.search(waiting, slow[0]), slow[0]
    assert said[-1].startswith(f"pool: reset of {pair.name} abandoned after")
    first, *tail = said[-1].splitlines()
    assert first.endswith("rebuilding the pair")
    assert tail and all(line.startswith("    ") for line in tail)  # the app's last log lines


def test_the_benchmarks_reduced_run_prints_its_table(
    built: tuple[Engine, Projects], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``benchmarks/reset_servers.py`` on one server, one sample, on the module's images."""
    engine, projects = built
    config, images = projects["servers"]
    row = bench.measure(engine, config, images, _server("gunicorn sync --preload"), 1)
    lines = bench.table([row])
    assert lines[0].split()[:3] == ["server", "auto", "boot"]
    assert lines[1].split()[:5] == ["gunicorn", "sync", "--preload", "HUP", f"{row.boot:.2f}"]
    assert len(row.resets["restart"]) == len(row.resets["HUP"]) == 1
    assert row.resets["restart"][0]["restarted"] == 1.0
    assert row.resets["HUP"][0]["restarted"] == 0.0
