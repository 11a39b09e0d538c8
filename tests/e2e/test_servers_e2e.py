"""The pool's reset through the real CLI on ``tests/e2e/strangers/servers`` (issues 25.3, 21.12).

One tiny Django app, its server chosen by ``app.command``; the images are built once for
the module. Under ``auto`` (the default) a run says once how it resets its pairs. What
issue 21 item 12 met: ``HUP`` followed where it cannot work made every reset wait a
minute in silence, and SIGTERM then raised from the store. Now a reset waiting in vain
says for what and gives up at its deadline, and SIGTERM during such resets stops the run
cleanly (exit 130, no traceback, nothing left). (A shell wrapper is refused at the first
pair: tests/docker/test_reset_servers.py.)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import NOCRUD, PROJECT, labelled, run_nocrud

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(900)]

SERVERS = Path(__file__).resolve().parent / "strangers" / "servers"
NAME = f"{PROJECT}-servers-e2e"
GUNICORN = "gunicorn -b 0.0.0.0:8000 -w 2 tiny.wsgi"


def _configure(root: Path, **run: Any) -> None:
    """Set ``run`` keys and ``app.command`` (``command=``) in the copy's nocrud.yaml."""
    path = root / "nocrud.yaml"
    data = yaml.safe_load(path.read_text())
    data["app"]["command"] = run.pop("command")
    data["run"] = {"strategy": "pool", "parallel": 1, **run}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def servers(
    docker_client: Any, base_images: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A copy of the app under this session's project name, its images built once."""
    root = tmp_path_factory.mktemp("servers")
    shutil.copytree(SERVERS, root, dirs_exist_ok=True)
    path = root / "nocrud.yaml"
    data = yaml.safe_load(path.read_text())
    data["project"] = NAME
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    built = run_nocrud("build", cwd=root, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    yield root
    run_nocrud("clean", "--all", "--images", cwd=root, timeout=300)
    for image in docker_client.images.list(filters={"label": f"nocrud.project={NAME}"}):
        for tag in image.tags:
            docker_client.images.remove(tag, force=True)


def test_auto_says_once_that_it_resets_gunicorn_with_hup(servers: Path, docker_client: Any) -> None:
    _configure(servers, command=GUNICORN)
    done = run_nocrud("up", cwd=servers, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    said = [line for line in out.splitlines() if "pool: the app is" in line]
    assert len(said) == 1, out
    assert "gunicorn, a master with 2 workers: each reset renews it by SIGHUP" in said[0]
    assert labelled(docker_client, NAME) == []


def test_sigterm_while_resets_wait_in_vain_stops_cleanly(servers: Path, docker_client: Any) -> None:
    """uvicorn's ``--workers`` supervisor ignores HUP: each reset waits until its deadline."""
    _configure(
        servers,
        command="uvicorn --host 0.0.0.0 --port 8000 --workers 2 tiny.asgi:application",
        pool_app_reload="HUP",
    )
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    env.pop("NOCRUD_CONFIG", None)
    proc = subprocess.Popen(
        [*NOCRUD, "up"],
        cwd=servers,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 300
        for line in proc.stdout:
            lines.append(line)
            if "pool: resetting" in line and "waiting for" in line:
                break
            assert time.monotonic() < deadline, "".join(lines)
        else:
            pytest.fail("the run ended before a reset said what it waits for:\n" + "".join(lines))
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "IntegrityError" not in out, out
    assert "after SIGHUP" in out
    assert labelled(docker_client, NAME) == []
