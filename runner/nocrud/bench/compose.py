"""The baseline a team would otherwise write: a Docker Compose project per flow.

:class:`ComposeProvisioner` is a :class:`~nocrud.environment.Provisioner`, so the
bench runs the same flows through the same executor under it as under nocrud's
own strategies. Per flow it writes a Compose file (services ``db`` from
``database.image``, ``init`` creating the project's role and database, ``schema``
running ``database.migrate`` from the app image or loading ``database.dump`` with
``psql``, ``app``; each waiting for the one
before it with ``depends_on`` conditions), runs ``docker-compose up -d``, polls the
app's health path (docker-compose 1.29 has no ``--wait``), and after the flow runs
``docker-compose down -v``. Every object carries the run's labels, so the reaper
and the sweep treat it like nocrud's own.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from nocrud.docker import cleanup
from nocrud.docker.postgres import ALIAS, BUILT_IN_PASSWORD, PORT, SUPERUSER, DatabaseAddress
from nocrud.environment import PrepareError, ProvisionError, Run
from nocrud.environment.app import EnvironmentSet, flow_labels
from nocrud.environment.lifecycle import EnvironmentLifecycle

__all__ = ["COMPOSE", "ComposeProvisioner", "compose_file"]

#: The command; Debian's docker-compose package (1.29) has no ``docker compose`` plugin.
COMPOSE = "docker-compose"


def compose_file(run: Run, flow: str) -> dict[str, Any]:
    """The Compose project of one flow, as a team would write it for its app.

    Every ``$`` in it is doubled, as Compose wants for a literal ``$`` (see :func:`_literal`).
    """
    return dict(_literal(_compose_file(run, flow)))


def _compose_file(run: Run, flow: str) -> dict[str, Any]:
    config = run.config
    dbc = config.database
    if dbc.schema_source == "dump":
        assert dbc.dump is not None
        # What a team would write: psql loads the dump, bind-mounted from the checkout.
        schema = {
            "image": dbc.image,
            "labels": {**flow_labels(run, flow, role="compose"), cleanup.LABEL_ROLE: "load"},
            "environment": {"PGPASSWORD": dbc.password.get_secret_value()},
            "volumes": [f"{dbc.dump}:/nocrud/dump.sql:ro"],
            "command": [
                *("psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", ALIAS),
                *("-U", dbc.user, "-d", dbc.name, "-f", "/nocrud/dump.sql"),
            ],
        }
    elif dbc.migrate is not None:
        schema = {
            "image": run.images.app,
            "labels": {**flow_labels(run, flow, role="compose"), cleanup.LABEL_ROLE: "migrate"},
            "environment": config.render_app_env(ALIAS, PORT),
            "command": list(dbc.migrate),
        }
    else:
        raise PrepareError(
            "the compose-per-flow baseline makes the schema with database.migrate or "
            "database.dump: set one of them"
        )
    labels = flow_labels(run, flow, role="compose")
    env = config.render_app_env(ALIAS, PORT)
    # Two -c: psql runs one -c's statements in one transaction, which CREATE DATABASE refuses.
    role = f"CREATE ROLE {dbc.user} LOGIN PASSWORD '{dbc.password.get_secret_value()}'"
    database = f"CREATE DATABASE {dbc.name} OWNER {dbc.user}"
    return {
        "version": "2.4",
        "services": {
            "db": {
                "image": dbc.image,
                "labels": {**labels, cleanup.LABEL_ROLE: "db"},
                "ports": [f"127.0.0.1::{PORT}"],
                "healthcheck": {
                    "test": ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-U", SUPERUSER],
                    "interval": "1s",
                    "timeout": "2s",
                    "retries": 30,
                },
            },
            "init": {
                "image": dbc.image,
                "labels": {**labels, cleanup.LABEL_ROLE: "init"},
                "environment": {"PGPASSWORD": BUILT_IN_PASSWORD},
                "command": [
                    "psql",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    ALIAS,
                    "-U",
                    SUPERUSER,
                    "-d",
                    "postgres",
                    "-c",
                    role,
                    "-c",
                    database,
                ],
                "depends_on": {"db": {"condition": "service_healthy"}},
            },
            "schema": {
                **schema,
                "depends_on": {"init": {"condition": "service_completed_successfully"}},
            },
            "app": {
                "image": run.images.app,
                "labels": {**labels, cleanup.LABEL_ROLE: "app"},
                "environment": env,
                "ports": [f"127.0.0.1::{config.app.port}"],
                **({"command": list(config.app.command)} if config.app.command else {}),
                "depends_on": {"schema": {"condition": "service_completed_successfully"}},
            },
        },
        "networks": {"default": {"labels": labels}},
    }


def _literal(value: Any) -> Any:
    """``value`` with every ``$`` of its strings doubled: Compose interpolates ``$NAME``
    everywhere in a file (and refuses a lone ``$``), while nocrud's commands and env values
    mean every ``$`` as written, for the app's own shell to expand."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {key: _literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_literal(item) for item in value]
    return value


class _Project(EnvironmentLifecycle):
    """One flow's Compose project; the flow's Target."""

    def __init__(self, run: Run, flow: str, index: int, workdir: Path) -> None:
        self.run = run
        self.flow = flow
        self.name = cleanup.object_name(run.run_id, index, flow).replace(".", "-")
        self.file = workdir / f"{self.name}.yml"
        self.file.write_text(yaml.safe_dump(compose_file(run, flow), sort_keys=False))
        self._base_url = ""
        self._database: DatabaseAddress | None = None
        self._killed = False
        self._lock = threading.Lock()
        self._down = False
        self._logs_at_teardown = ""

    def _compose(self, *args: str, timeout: float = 300) -> str:
        command = [COMPOSE, "-p", self.name, "-f", str(self.file), *args]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise ProvisionError(
                f"`{shlex.join(command)}` failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
            )
        return proc.stdout

    def _port(self, service: str, port: int) -> int:
        out = self._compose("port", service, str(port)).strip()
        return int(out.rsplit(":", 1)[1])

    def start(self) -> None:
        import requests

        config = self.run.config
        self._compose("up", "-d", "--no-color", "--quiet-pull")
        host = self.run.engine.connection.host
        self._base_url = f"http://{host}:{self._port('app', config.app.port)}"
        dbc = config.database
        self._database = DatabaseAddress(
            host, self._port("db", PORT), dbc.name, dbc.user, dbc.password.get_secret_value()
        )
        deadline = time.monotonic() + config.timeouts.app_ready
        url = self._base_url + config.app.health_path
        while True:
            if self._killed:
                raise ProvisionError("environment torn down while starting (run interrupted)")
            with contextlib.suppress(requests.RequestException):
                if requests.get(url, timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise ProvisionError(
                    f"app not healthy after {config.timeouts.app_ready:g}s:\n" + self.app_logs(40)
                )
            time.sleep(0.05)

    def teardown(self) -> None:
        with self._lock:
            if self._down:
                return
            self._down = True
        with contextlib.suppress(Exception):
            self._logs_at_teardown = self._compose(
                "logs", "--no-color", "--tail", "200", "app", timeout=60
            )
        self._compose("down", "-v", "--remove-orphans", "-t", "2")

    # The Target protocol.
    @property
    def kept(self) -> bool:
        return False

    def app_logs(self, tail: int = 200) -> str:
        if self._down:
            return self._logs_at_teardown
        try:
            return self._compose("logs", "--no-color", "--tail", str(tail), "app", timeout=60)
        except ProvisionError as exc:
            return str(exc)

    def casualties(self) -> list[str]:
        return []

    def keep(self) -> str:
        return "(the compose baseline does not keep environments)"


class ComposeProvisioner:
    """A Compose project per flow: the baseline of ``nocrud bench`` (see the module docstring)."""

    name = "compose"
    needs_db_image = False

    def __init__(self) -> None:
        self._run: Run | None = None
        self._envs: EnvironmentSet[Any] = EnvironmentSet()
        self._workdir: Path | None = None

    def prepare(self, run: Run) -> None:
        if shutil.which(COMPOSE) is None:
            raise PrepareError(
                f"`{COMPOSE}` is not installed: install it (Debian: apt-get install "
                "docker-compose) or leave compose out of --strategies"
            )
        self._run = run
        self._workdir = Path(tempfile.mkdtemp(prefix=f"nocrud-{run.run_id}-compose-"))

    def acquire(self, flow: str, *, fresh: bool = False) -> contextlib.AbstractContextManager[Any]:
        run, workdir = self._run, self._workdir
        if run is None or workdir is None:
            raise RuntimeError("ComposeProvisioner.acquire() before prepare()")
        return self._enter(run, flow, workdir)

    @contextlib.contextmanager
    def _enter(self, run: Run, flow: str, workdir: Path) -> Iterator[Any]:
        with self._envs.enter(lambda index: _Project(run, flow, index, workdir)) as project:
            yield project

    def kill_all(self) -> int:
        return self._envs.kill_all()

    def close(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        self._run = self._workdir = None
