"""The ``external`` strategy: a PostgreSQL server the user runs, a cloned database per flow.

For teams whose database is a service they already run (a CI service container, a
shared development server, a managed instance): nocrud starts no PostgreSQL.
:meth:`ExternalProvisioner.prepare` connects with ``database.external.url`` (a role
that may create databases), drops what dead runs left there, then makes the run's
template database ``nocrud_<run id>_template`` from ``database.source`` (the migrate
command from the app image, or the SQL dump). Each flow gets
``nocrud_<run id>_<NNNN>``, cloned from it with ``CREATE DATABASE … TEMPLATE …
STRATEGY FILE_COPY`` (one at a time: PostgreSQL refuses a clone while another
session uses the template), and its own fresh app container; the clone is dropped
after the flow and the template at the end of the run.

Every database nocrud makes there carries the run id in its name and the owner
process in its ``COMMENT``, so a killed run's databases are dropped by the next
run's sweep against the same server and by ``nocrud clean``, as containers are
(:func:`nocrud.docker.cleanup.sweep_databases`).

How the apps reach the server: at the URL's host and port, unless
``database.external.app_host`` says how containers see it; they join
``database.external.network`` when given (a service on a Docker network), else a
network of the run's own.
"""

from __future__ import annotations

import functools
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import docker.errors
import psycopg2
from psycopg2 import sql

from nocrud.config import Config
from nocrud.docker import cleanup
from nocrud.docker.postgres import DatabaseAddress, clone_database, drop_database
from nocrud.docker.reaper import session_labels
from nocrud.docker.resources import Network
from nocrud.environment import PrepareError, Run
from nocrud.environment.app import AppDatabase, AppEnvironment, CloningProvisioner
from nocrud.images.build import BuildError, make_schema, run_in_app_image

__all__ = ["ExternalProvisioner", "check_server", "server_address", "sweep_server"]


def server_address(config: Config) -> DatabaseAddress:
    """``database.external.url`` as an address this process connects to."""
    url = config.database.external.url
    if url is None:
        raise PrepareError(
            "run.strategy is 'external' but database.external.url is not set: set it or "
            "NOCRUD_EXTERNAL_URL"
        )
    parts = urlsplit(url)
    return DatabaseAddress(
        host=parts.hostname or "localhost",
        port=parts.port or 5432,
        dbname=unquote(parts.path.lstrip("/")) or "postgres",
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
    )


def check_server(config: Config, *, timeout: float = 5.0) -> str:
    """What the external server offers, as a sentence; PrepareError saying the fix when unusable.

    Checks that the server answers at ``database.external.url`` and that its role may
    create databases (``CREATEDB`` or superuser), which every flow's clone needs.
    """
    admin = server_address(config)
    where = f"{admin.host}:{admin.port} as {admin.user}"
    try:
        conn = admin.connect(timeout=timeout)
    except psycopg2.OperationalError as exc:
        raise PrepareError(
            f"database.external.url: cannot connect to {where} "
            f"({str(exc).strip().splitlines()[0]}): check that the server runs and the URL "
            "(or NOCRUD_EXTERNAL_URL) is right"
        ) from exc
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT current_setting('server_version'), rolcreatedb OR rolsuper "
                "FROM pg_roles WHERE rolname = current_user"
            )
            row = cur.fetchone()
    finally:
        conn.close()
    version, may_create = row if row else ("?", False)
    if not may_create:
        raise PrepareError(
            f"database.external.url: the role {admin.user} on {admin.host}:{admin.port} may "
            f"not create databases: run `ALTER ROLE {admin.user} CREATEDB` as a superuser, "
            "or use a role that may"
        )
    return f"PostgreSQL {version} at {where}, may create databases"


class _ExternalClone(AppEnvironment):
    """One flow: a clone of the run's template on the user's server, and a fresh app."""

    def __init__(self, run: Run, flow: str, index: int, server: _Server) -> None:
        super().__init__(run, flow, index)
        self.server = server
        self.dbname = cleanup.database_name(run.run_id, f"{index:04d}")
        self._cloned = False

    def open_database(self) -> AppDatabase:
        address = self.server.clone(self.dbname, keep=self.run.keep_failed)
        self._cloned = True
        return self.server.for_app(address)

    def close_database(self) -> None:
        if self._cloned:
            self._cloned = False
            drop_database(self.server.admin, self.dbname)

    def describe_database(self) -> str:
        return f"(database {self.dbname} on your server: `nocrud clean` drops it)"


class _Server:
    """The user's server as the run uses it: the template, the clones, the app network."""

    def __init__(self, run: Run) -> None:
        self.run = run
        external = run.config.database.external
        self.admin = server_address(run.config)
        if external.app_host is not None:
            host, _, port = external.app_host.rpartition(":")
            self.app_host, self.app_port = host, int(port)
        else:
            self.app_host, self.app_port = self.admin.host, self.admin.port
        self.template = cleanup.database_name(run.run_id, "template")
        self.lock = threading.Lock()
        self.network_name = external.network or f"nocrud-{run.run_id}-external"
        self._own_network: Network | None = None
        self._template_made = False

    def start(self) -> None:
        run = self.run
        check_server(run.config, timeout=run.config.timeouts.db_ready)
        dropped = cleanup.sweep_databases(self.admin, client=run.engine.client)
        if dropped:
            run.say(f"dropped {len(dropped)} database(s) left by runs that are no longer running")
        self._join_network()
        self._make_template()

    def _join_network(self) -> None:
        run = self.run
        client = run.engine.client
        if run.config.database.external.network is not None:
            try:
                client.networks.get(self.network_name)
            except docker.errors.NotFound:
                raise PrepareError(
                    f"database.external.network: there is no Docker network "
                    f"{self.network_name!r}: create it, or name the one your server is on"
                ) from None
            return
        labels = {
            **cleanup.run_labels(run.run_id, run.config.project, role="external"),
            **session_labels(),
        }
        if run.keep_failed:
            labels[cleanup.LABEL_KEEP] = "true"
        self._own_network = Network(
            client, self.network_name, labels=labels, connection=run.engine.connection
        )
        self._own_network.create()

    def _make_template(self) -> None:
        run, config = self.run, self.run.config
        conn = self.admin.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
                self._template_made = True
                self._comment(cur, self.template, keep=False)
        finally:
            conn.close()
        own = DatabaseAddress(
            self.admin.host, self.admin.port, self.template, self.admin.user, self.admin.password
        )
        run_in_app = functools.partial(
            run_in_app_image,
            run.engine.client,
            config,
            run.images.app,
            network=self.network_name,
            labels={
                **cleanup.run_labels(run.run_id, config.project, role="migrate"),
                **session_labels(),
            },
            timeout=config.timeouts.build,
            say=run.say,
            environment=self.for_app(own).app_env(config),
        )
        run.say(f"external: making the template {self.template} on {self.admin.host}")
        try:
            make_schema(own, config, run_in_app, say=run.say)
        except BuildError as exc:
            raise PrepareError(f"making the template database failed: {exc}") from exc

    def _comment(self, cur: Any, name: str, *, keep: bool) -> None:
        cur.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name),
                sql.Literal(cleanup.database_comment(self.run.run_id, keep=keep)),
            )
        )

    def clone(self, name: str, *, keep: bool) -> DatabaseAddress:
        with self.lock:
            clone_database(self.admin, self.template, name, owner=self.admin.user)
        conn = self.admin.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                self._comment(cur, name, keep=keep)
        finally:
            conn.close()
        return DatabaseAddress(
            self.admin.host, self.admin.port, name, self.admin.user, self.admin.password
        )

    def for_app(self, address: DatabaseAddress) -> AppDatabase:
        return AppDatabase(
            address=address,
            app_host=self.app_host,
            app_port=self.app_port,
            network=self.network_name,
        )

    def remove(self, *, network: bool = True) -> None:
        actions = []
        if self._template_made:
            self._template_made = False
            actions.append(lambda: drop_database(self.admin, self.template))
        if network and self._own_network is not None:
            actions.append(self._own_network.remove)
        errors = cleanup.remove_all(actions)
        if errors:
            raise errors[0]


class ExternalProvisioner(CloningProvisioner[_Server, _ExternalClone]):
    """The ``external`` strategy: see the module docstring."""

    name = "external"
    needs_db_image = False

    def open_server(self, run: Run) -> _Server:
        return _Server(run)

    def environment(self, run: Run, flow: str, index: int, server: _Server) -> _ExternalClone:
        return _ExternalClone(run, flow, index, server)

    def close(self) -> None:
        server, self._server = self._server, None
        self._run = None
        if server is not None:
            # Kept flows' apps are on the run's network; their clones need no template.
            server.remove(network=not self._envs.kept)


def sweep_server(config: Config, *, live: bool = False, client: Any = None) -> str:
    """``nocrud clean`` on the external server: drop dead runs' (and kept) databases; one line.

    Args:
        config: The configuration naming the server (``database.external.url``).
        live: Also drop databases of runs still going (``nocrud clean --all``).
        client: The Docker daemon, to judge runs owned by (CI job) containers.
    """
    admin = server_address(config)
    where = f"external server {admin.host}:{admin.port}"
    try:
        dropped = cleanup.sweep_databases(admin, kept=True, live=live, client=client)
    except psycopg2.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{where}: not reached ({first}): its nocrud_* databases were not checked"
    return f"{where}: dropped {len(dropped)} database(s)"
