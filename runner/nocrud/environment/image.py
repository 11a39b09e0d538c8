"""One flow's isolated environment: a private network, its PostgreSQL and its app.

:class:`Environment` is a context manager. ``__enter__`` creates the network,
starts the database from the pre-migrated image and the app pointed at it by
network alias, and waits until both are really ready (a PostgreSQL connection,
then HTTP 200 on the health path), polling every 15 ms. If anything fails on
the way it tears down what it had started and raises :class:`ProvisionError`
carrying the evidence (exit code, last log lines). ``__exit__`` always tears
down and tolerates objects that are already gone. :meth:`Environment.kill` may
be called from another thread (interrupts, timeouts): removing the containers
is what unblocks a flow stuck in a request.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

import docker.errors
import psycopg2
import requests
from psycopg2 import sql
from pydantic import SecretStr
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from nocrud.config import Config
from nocrud.docker import cleanup
from nocrud.docker.engine import Connection
from nocrud.images.build import DB_ALIAS, DB_PORT, BuiltImages

#: How often readiness is polled. Start-up takes a few hundred ms; a 1 s poll would double it.
POLL_INTERVAL = 0.015
#: How often, while polling, we ask Docker whether a container has died (an API call each time).
STATUS_INTERVAL = 0.25
APP_LOG_LINES = 200


class ProvisionError(Exception):
    """The environment did not come up; the message says which part and shows its logs."""


@dataclass(frozen=True)
class DatabaseAddress:
    """How the flow (on the host side) reaches its own database."""

    host: str
    port: int
    dbname: str
    user: str
    password: str

    def connect(self, timeout: float = 5.0) -> Any:
        """A new psycopg2 connection to this database."""
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            dbname=self.dbname,
            user=self.user,
            password=self.password,
            connect_timeout=max(1, int(timeout)),
        )


def safe_name(text: str, limit: int = 40) -> str:
    """A Docker-safe, bounded fragment of a flow name: any characters in, ``[a-z0-9_.-]`` out."""
    cleaned = re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.") or "flow"
    return cleaned[:limit].rstrip("-.") or "flow"


class _LabelledNetwork(Network):
    """testcontainers' Network, closing its Docker client when removed."""

    def remove(self) -> None:
        try:
            super().remove()
        except docker.errors.NotFound:
            pass
        finally:
            self._docker.client.close()


class Environment:
    """Network + PostgreSQL + app for one flow. Use as a context manager."""

    def __init__(
        self,
        config: Config,
        images: BuiltImages,
        *,
        connection: Connection,
        run_id: str,
        flow: str,
        index: int,
        keep: bool = False,
    ) -> None:
        self.config = config
        self.images = images
        self.connection = connection
        self.flow = flow
        self.keep = keep
        self.name = f"nocrud-{run_id}-{index:04d}-{safe_name(flow)}"
        self._labels = cleanup.run_labels(run_id, config.project, flow=flow, role="flow")
        if keep:
            self._labels[cleanup.LABEL_KEEP] = "true"
        self._network: _LabelledNetwork | None = None
        self._db: DockerContainer | None = None
        self._app: DockerContainer | None = None
        self._lock = threading.Lock()
        self._torn_down = False
        self._killed = False
        self.base_url = ""
        self.database: DatabaseAddress | None = None
        self._password = ""  # this environment's own, made in start()
        self.app_logs_at_teardown = ""

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Environment:
        try:
            self.start()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()

    def start(self) -> None:
        """Create the network, start the database and the app, and wait until both are ready."""
        link = self.connection
        self._network = _LabelledNetwork(
            docker_network_kw={"labels": self._labels, "driver": "bridge"}
        )
        self._network.name = self.name
        self._network.create()
        link.join(self._network._unwrap_network)
        self._check_not_killed()

        db = DockerContainer(self.images.db, name=f"{self.name}-db")
        db.with_network(self._network).with_network_aliases(DB_ALIAS)
        db.ports.update(link.ports(DB_PORT))
        db.with_kwargs(labels={**self._labels, cleanup.LABEL_ROLE: "db"})
        self._db = db
        db.start()
        self._check_not_killed()

        # Every environment gets its own password: the app learns it from its environment
        # now, the database once it accepts connections (see _wait_for_database).
        self._password = secrets.token_urlsafe(18)
        private = self.config.database.model_copy(update={"password": SecretStr(self._password)})
        env = self.config.model_copy(update={"database": private}).render_app_env(DB_ALIAS, DB_PORT)
        app = DockerContainer(self.images.app, name=f"{self.name}-app", env=env)
        if self.config.app.command is not None:
            app.with_command(list(self.config.app.command))
        app.with_network(self._network)
        app.ports.update(link.ports(self.config.app.port))
        app.with_kwargs(labels={**self._labels, cleanup.LABEL_ROLE: "app"})
        self._app = app
        app.start()

        db_host, db_port = self._address(db, DB_PORT, "database")
        app_host, app_port = self._address(app, self.config.app.port, "app")
        dbc = self.config.database
        self.database = DatabaseAddress(
            host=db_host,
            port=db_port,
            dbname=dbc.name,
            user=dbc.user,
            password=self._password,
        )
        self.base_url = f"http://{app_host}:{app_port}"
        self._wait_for_database()
        self._wait_for_app()

    def teardown(self) -> None:
        """Remove containers and network, once, whatever state they are in."""
        with self._lock:
            if self._torn_down:
                return
            self._torn_down = True
        if self.keep:
            return
        with contextlib.suppress(Exception):
            self.app_logs_at_teardown = self.app_logs()
        errors = cleanup.remove_all(
            [lambda c=c: _remove(c) for c in (self._app, self._db) if c is not None]
            + [self._remove_network]
        )
        if errors:
            raise errors[0]

    def _remove_network(self) -> None:
        network = self._network
        if network is None:
            return
        if network._network is None:  # never created: only its client to close
            network._docker.client.close()
            return
        self.connection.leave(network._unwrap_network)
        network.remove()

    def casualties(self) -> list[str]:
        """Containers of this environment that stopped while it should run, as sentences."""
        dead = []
        for container, what in ((self._db, "database"), (self._app, "app")):
            if container is None or container._container is None:
                continue
            try:
                container._container.reload()
            except docker.errors.NotFound:
                dead.append(f"the {what} container disappeared")
                continue
            state = container._container.attrs.get("State", {})
            if state.get("Status") in ("exited", "dead"):
                dead.append(f"the {what} container exited with code {state.get('ExitCode')}")
        return dead

    def kill(self) -> None:
        """Tear down from another thread (interrupt, timeout): the flow's requests fail fast."""
        self._killed = True
        self.teardown()

    @property
    def killed(self) -> bool:
        return self._killed

    # ------------------------------------------------------------------ evidence

    def app_logs(self, tail: int = APP_LOG_LINES) -> str:
        """The app's last log lines (stdout and stderr), or what was saved at teardown."""
        if self._app is None or self._app._container is None:
            return self.app_logs_at_teardown
        try:
            raw = self._app.get_wrapped_container().logs(tail=tail)
        except docker.errors.DockerException:
            return self.app_logs_at_teardown
        return str(raw.decode(errors="replace"))

    # ------------------------------------------------------------------ readiness

    def _check_not_killed(self) -> None:
        if self._killed:
            raise ProvisionError(
                "environment torn down while starting (run interrupted or timed out)"
            )

    def _set_passwords(self, address: DatabaseAddress) -> None:
        """Connect as the superuser (the readiness check) and give both roles fresh passwords."""
        dbc = self.config.database
        superuser = replace(
            address,
            dbname="postgres",
            user="postgres",
            password=dbc.password.get_secret_value() if dbc.user == "postgres" else "postgres",
        )
        conn = superuser.connect(timeout=2)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(dbc.user)),
                    (self._password,),
                )
                if dbc.user != "postgres":
                    cur.execute("ALTER ROLE postgres PASSWORD %s", (secrets.token_urlsafe(18),))
        finally:
            conn.close()

    def _wait_for_database(self) -> None:
        assert self.database is not None and self._db is not None
        database = self.database

        def ready() -> str | None:
            try:
                self._set_passwords(database)
            except psycopg2.OperationalError as exc:
                return str(exc).strip()
            return None

        timeout = self.config.timeouts.db_ready
        last = self._poll(ready, self._db, "database", timeout)
        if last is not None:
            raise ProvisionError(
                f"database not ready after {timeout:g}s (last error: {last}); raise "
                f"timeouts.db_ready or check the db image.\n"
                f"Last database log lines:\n{_logs(self._db, 30)}"
            )

    def _wait_for_app(self) -> None:
        assert self._app is not None
        health = self.config.app.health_path
        url = self.base_url + health
        with requests.Session() as session:

            def ready() -> str | None:
                try:
                    response = session.get(url, timeout=2)
                except requests.RequestException as exc:
                    return type(exc).__name__
                return None if response.status_code == 200 else f"HTTP {response.status_code}"

            timeout = self.config.timeouts.app_ready
            last = self._poll(ready, self._app, "app", timeout)
        if last is not None:
            raise ProvisionError(
                f"app not healthy after {timeout:g}s: GET {health} gave {last}; raise "
                "timeouts.app_ready or fix the app's start-up.\n"
                "Last app log lines (health checks left out):\n"
                + _without_health_checks(_logs(self._app, 2000), health, 40)
            )

    def _poll(
        self, ready: Callable[[], str | None], container: DockerContainer, what: str, timeout: float
    ) -> str | None:
        """Call ``ready`` every POLL_INTERVAL until it returns None (ready) or time runs out.

        Every STATUS_INTERVAL it also asks Docker whether the container died, so a crash
        is reported at once with its exit code instead of after the whole timeout.

        Returns:
            None when ready; otherwise the last failure ``ready`` described.
        """
        deadline = time.monotonic() + timeout
        next_status = time.monotonic() + STATUS_INTERVAL
        while True:
            self._check_not_killed()
            last = ready()
            if last is None:
                return None
            now = time.monotonic()
            if now >= next_status:
                next_status = now + STATUS_INTERVAL
                self._raise_if_exited(container, what)
            if now > deadline:
                return last
            time.sleep(POLL_INTERVAL)

    def _address(self, container: DockerContainer, port: int, what: str) -> tuple[str, int]:
        wrapped = container.get_wrapped_container()
        try:
            return self.connection.address(wrapped, port, self.name)
        except (LookupError, RuntimeError) as exc:
            problem = str(exc)
        state = wrapped.attrs.get("State", {})
        if state.get("Status") in ("exited", "dead"):
            # A container that exits at once loses its port bindings before we can read them.
            raise ProvisionError(
                f"the {what} container exited with code {state.get('ExitCode')} before becoming "
                f"ready.\nLast {what} log lines:\n{_logs(container, 40)}"
            )
        raise ProvisionError(
            f"the {what} container is unreachable: {problem} (state {state.get('Status')}).\n"
            f"Last {what} log lines:\n{_logs(container, 40)}"
        )

    def _raise_if_exited(self, container: DockerContainer, what: str) -> None:
        wrapped = container.get_wrapped_container()
        try:
            wrapped.reload()
        except docker.errors.NotFound:
            self._check_not_killed()
            raise ProvisionError(f"the {what} container disappeared while starting") from None
        state = wrapped.attrs.get("State", {})
        if state.get("Status") in ("exited", "dead"):
            code = state.get("ExitCode")
            raise ProvisionError(
                f"the {what} container exited with code {code} before becoming ready.\n"
                f"Last {what} log lines:\n{_logs(container, 40)}"
            )


def _without_health_checks(logs: str, health_path: str, keep: int) -> str:
    """Log lines minus our own readiness polls, which would crowd out the app's start-up output."""
    needle = f"GET {health_path}"
    lines = [line for line in logs.splitlines() if needle not in line]
    return "\n".join(lines[-keep:]) or "(the app printed nothing but health checks)"


def _logs(container: DockerContainer, tail: int) -> str:
    try:
        text = container.get_wrapped_container().logs(tail=tail).decode(errors="replace").rstrip()
    except docker.errors.DockerException:
        return "(no logs: the container is gone)"
    return text or "(the container printed nothing)"


def _remove(container: DockerContainer) -> None:
    try:
        if container._container is not None:
            cleanup.ignore_gone(container._container.remove, force=True, v=True)
    finally:
        container.get_docker_client().client.close()
