"""The ``template`` strategy: one PostgreSQL per run, a cloned database and a fresh app per flow.

:meth:`TemplateProvisioner.prepare` starts one PostgreSQL container from the
pre-migrated database image on a network of the run's own, gives its roles this
run's passwords and closes the migrated database to connections, so it can serve
as a template. Each flow then gets ``CREATE DATABASE flow_NNNN TEMPLATE <name>
STRATEGY FILE_COPY`` (a file copy of a small database, its PGDATA on a tmpfs: tens
of milliseconds where a container start costs a few hundred) and its own fresh app
container pointed at that clone; after the flow the app is removed and the clone dropped.

PostgreSQL refuses to clone a database that has another session connected; nothing
ever connects to the template (connections to it are disabled), and the clones are
made one at a time under a lock, since each FILE_COPY also forces a checkpoint and
concurrent ones only queue up inside the server.

How flows are kept apart: each flow's rows live in its own database and each flow
has its own app process and filesystem. The apps share the run's network with the
server (a network per flow would cost a network create and remove, ~0.34 s, per
flow); an app reaches another flow's app only if it guesses its address, and its
connection string names only its own database. A flow that must not share a server
process with others (server settings, ``pg_stat`` counters, roles) wants ``image``.
"""

from __future__ import annotations

import threading

import psycopg2
from psycopg2 import sql

from nocrud.docker import cleanup
from nocrud.docker.postgres import (
    ALIAS,
    PORT,
    DatabaseAddress,
    clone_database,
    drop_database,
    new_password,
    replace_passwords,
)
from nocrud.docker.reaper import session_labels
from nocrud.docker.resources import Container, Network
from nocrud.environment import PrepareError, Run
from nocrud.environment.app import AppDatabase, AppEnvironment, CloningProvisioner
from nocrud.environment.memory import in_memory_options
from nocrud.environment.readiness import poll

__all__ = ["TemplateProvisioner"]


class _Server:
    """The run's one PostgreSQL holding the template; clones are made here one at a time."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.name = f"nocrud-{run.run_id}-template"
        labels = {
            **cleanup.run_labels(run.run_id, run.config.project, role="template"),
            **session_labels(),
        }
        if run.keep_failed:
            labels[cleanup.LABEL_KEEP] = "true"
        client, link = run.engine.client, run.engine.connection
        self.network = Network(client, self.name, labels=labels, connection=link)
        self.container = Container(
            client,
            run.images.db,
            what="database",
            name=f"{self.name}-db",
            labels={**labels, cleanup.LABEL_ROLE: "db"},
            network=self.name,
            aliases=[ALIAS],
            ports=link.ports(PORT),
            # Every clone is a FILE_COPY plus the checkpoint it forces: on a tmpfs
            # 40-60 ms, on the daemon's overlay filesystem 120-620 ms (DESIGN.md).
            **in_memory_options(),
        )
        self.password = new_password()
        self.superuser_password = new_password()
        self.clone_lock = threading.Lock()
        self.template = run.config.database.name
        self.address: DatabaseAddress | None = None

    def start(self) -> None:
        run = self.run
        dbc = run.config.database
        self.network.create()
        self.container.start()
        try:
            host, port = self.container.address(run.engine.connection, PORT, self.name)
        except (LookupError, RuntimeError) as exc:
            raise PrepareError(
                f"the template database container is unreachable: {exc}\n" + self.container.logs(30)
            ) from exc
        own = DatabaseAddress(host, port, dbc.name, dbc.user, self.password)

        def ready() -> str | None:
            try:
                replace_passwords(
                    own,
                    configured_password=dbc.password.get_secret_value(),
                    password=self.password,
                    superuser_password=self.superuser_password,
                )
            except psycopg2.OperationalError as exc:
                return str(exc).strip()
            return None

        try:
            last = poll(ready, self.container, run.config.timeouts.db_ready, check_interrupted=_no)
        except Exception as exc:
            raise PrepareError(f"the template database did not start: {exc}") from exc
        if last is not None:
            raise PrepareError(
                f"the template database was not ready after {run.config.timeouts.db_ready:g}s "
                f"(last error: {last}); raise timeouts.db_ready.\n{self.container.logs(30)}"
            )
        self.address = own
        # Nothing may connect to the template, or PostgreSQL refuses to clone it.
        conn = self.admin.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
                        sql.Identifier(self.template)
                    )
                )
        finally:
            conn.close()

    @property
    def admin(self) -> DatabaseAddress:
        assert self.address is not None
        return self.address.as_superuser(self.superuser_password)

    def clone(self, name: str) -> DatabaseAddress:
        assert self.address is not None
        with self.clone_lock:
            clone_database(self.admin, self.template, name, owner=self.address.user)
        return DatabaseAddress(
            self.address.host, self.address.port, name, self.address.user, self.password
        )

    def drop(self, name: str) -> None:
        drop_database(self.admin, name)

    def remove(self) -> None:
        errors = cleanup.remove_all([self.container.remove, self.network.remove])
        if errors:
            raise errors[0]


def _no() -> None:
    """Preparing is not interrupted by kill_all (the workflow unwinds it instead)."""


class _Clone(AppEnvironment):
    """One flow: a clone of the template and a fresh app on the run's network."""

    def __init__(self, run: Run, flow: str, index: int, server: _Server) -> None:
        super().__init__(run, flow, index)
        self.server = server
        self.dbname = f"flow_{index:04d}"
        self._cloned = False

    def open_database(self) -> AppDatabase:
        address = self.server.clone(self.dbname)
        self._cloned = True
        return AppDatabase(
            address=address,
            app_host=ALIAS,
            app_port=PORT,
            network=self.server.name,
            watch=(self.server.container,),
        )

    def close_database(self) -> None:
        if self._cloned:
            self._cloned = False
            self.server.drop(self.dbname)

    def describe_database(self) -> str:
        return f"(database {self.dbname} on the run's server {self.server.container.name})"


class TemplateProvisioner(CloningProvisioner[_Server, _Clone]):
    """The ``template`` strategy: see the module docstring."""

    name = "template"
    needs_db_image = True

    def open_server(self, run: Run) -> _Server:
        return _Server(run)

    def environment(self, run: Run, flow: str, index: int, server: _Server) -> _Clone:
        return _Clone(run, flow, index, server)

    def prepare(self, run: Run) -> None:
        super().prepare(run)
        assert self._server is not None
        run.say(
            f"template: one PostgreSQL for the run ({run.images.db}); "
            f"each flow gets a clone of {self._server.template}"
        )

    def close(self) -> None:
        server, self._server = self._server, None
        self._run = None
        if server is not None and not self._envs.kept:
            # A kept flow's clone lives on this server: `nocrud clean` removes both later.
            server.remove()
