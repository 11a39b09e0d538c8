"""The ``migrate`` strategy: an empty PostgreSQL container per flow, migrated for that flow.

For each flow: a private network, a PostgreSQL container from ``database.image``
(the base image, not the pre-migrated one), the project's role and database with
this flow's own password, then the schema from ``database.source`` exactly as the
database image build makes it (the migrate command from the app image, or the SQL
dump; then ``seed_sql`` and ``seed``: see :func:`nocrud.images.build.make_schema`),
then a fresh app container. It is the slow path most teams have today, and the right
one when the migrations themselves are under test: every flow proves that they run
on an empty database. The build step makes only the app image.
"""

from __future__ import annotations

import contextlib
import functools

import psycopg2

from nocrud.docker import cleanup
from nocrud.docker.postgres import (
    ALIAS,
    BUILT_IN_PASSWORD,
    PORT,
    SUPERUSER,
    DatabaseAddress,
    create_role_and_database,
    new_password,
    wait_until_accepting,
)
from nocrud.docker.resources import Container, Network
from nocrud.environment import ProvisionError, Run, SchemaError
from nocrud.environment.app import AppDatabase, AppEnvironment, EnvironmentSet
from nocrud.environment.readiness import raise_if_dead
from nocrud.images.build import BuildError, ensure_image, make_schema, run_in_app_image

__all__ = ["MigrateProvisioner"]


class _Migrated(AppEnvironment):
    """One flow: its own network and PostgreSQL, migrated now, and a fresh app."""

    def __init__(self, run: Run, flow: str, index: int) -> None:
        super().__init__(run, flow, index)
        client, link = run.engine.client, run.engine.connection
        self._network = Network(client, self.name, labels=self.labels, connection=link)
        self._server = Container(
            client,
            run.images.db,
            what="database",
            name=f"{self.name}-db",
            labels={**self.labels, cleanup.LABEL_ROLE: "db"},
            network=self.name,
            aliases=[ALIAS],
            ports=link.ports(PORT),
        )

    def open_database(self) -> AppDatabase:
        run, config = self.run, self.run.config
        dbc = config.database
        self._network.create()
        self.check_not_killed()
        self._server.start()
        try:
            host, port = self._server.address(run.engine.connection, PORT, self.name)
        except (LookupError, RuntimeError) as exc:
            raise ProvisionError(
                f"the database container is unreachable: {exc}\n{self._server.logs(30)}"
            ) from exc
        superuser = DatabaseAddress(host, port, "postgres", SUPERUSER, BUILT_IN_PASSWORD)
        last = wait_until_accepting(superuser, config.timeouts.db_ready)
        if last is not None:
            raise_if_dead(self._server, self.check_not_killed)
            raise ProvisionError(
                f"database not ready after {config.timeouts.db_ready:g}s (last error: {last}); "
                f"raise timeouts.db_ready.\nLast database log lines:\n{self._server.logs(30)}"
            )
        self.check_not_killed()
        password = new_password()
        try:
            create_role_and_database(superuser, dbc.name, dbc.user, password)
        except psycopg2.OperationalError as exc:
            raise ProvisionError(
                f"the database container stopped answering while its role was made: "
                f"{str(exc).strip()}\nLast database log lines:\n{self._server.logs(30)}"
            ) from exc
        own = DatabaseAddress(host, port, dbc.name, dbc.user, password)
        database = AppDatabase(
            address=own, app_host=ALIAS, app_port=PORT, network=self.name, watch=(self._server,)
        )
        run_in_app = functools.partial(
            run_in_app_image,
            run.engine.client,
            config,
            run.images.app,
            network=self.name,
            labels={**self.labels, cleanup.LABEL_ROLE: "migrate"},
            timeout=config.timeouts.build,
            say=lambda _line: None,  # the output is in the error when the command fails
            environment=database.app_env(config),
        )
        try:
            make_schema(own, config, run_in_app, say=lambda _line: None)
        except BuildError as exc:
            raise SchemaError(f"making this flow's schema failed: {exc}") from exc
        if dbc.user != SUPERUSER:
            # The superuser's built-in password is no way in once the schema is made.
            conn = superuser.connect()
            try:
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute("ALTER ROLE postgres PASSWORD %s", (new_password(),))
            finally:
                conn.close()
        return database

    def close_database(self) -> None:
        errors = cleanup.remove_all([self._server.remove, self._network.remove])
        if errors:
            raise errors[0]


class MigrateProvisioner:
    """The ``migrate`` strategy: see the module docstring."""

    name = "migrate"
    needs_db_image = False

    def __init__(self) -> None:
        self._run: Run | None = None
        self._envs: EnvironmentSet[_Migrated] = EnvironmentSet()

    def prepare(self, run: Run) -> None:
        ensure_image(
            run.engine.client,
            run.config.database.image,
            what="database base image",
            key="database.image",
            say=run.say,
        )
        self._run = run
        source = run.config.database.schema_source
        run.say(f"migrate: every flow gets an empty PostgreSQL and its own {source} step")

    def acquire(
        self, flow: str, *, fresh: bool = False
    ) -> contextlib.AbstractContextManager[_Migrated]:
        run = self._run
        if run is None:
            raise RuntimeError("MigrateProvisioner.acquire() before prepare()")
        return self._envs.enter(lambda index: _Migrated(run, flow, index))

    def kill_all(self) -> int:
        return self._envs.kill_all()

    def close(self) -> None:
        self._run = None
