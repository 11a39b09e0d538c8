"""A fresh app container pointed at a database someone else provides.

The ``template``, ``migrate`` and ``external`` strategies differ only in where a
flow's database comes from: a clone on the run's one PostgreSQL, an empty
PostgreSQL container migrated for the flow, a clone on the user's server. The app
side is the same for all three, and lives here: :class:`AppEnvironment` starts one
app container on a given network with ``app.env`` rendered for the flow's
database, waits for its health path, and is the flow's
:class:`~nocrud.environment.Target`. A strategy subclasses it and fills in two
steps, :meth:`~AppEnvironment.open_database` and
:meth:`~AppEnvironment.close_database`. ``template`` and ``external``, whose flows
clone their databases on the run's one server, also share their provisioner,
:class:`CloningProvisioner`. (The ``image`` and ``pool`` strategies build on
:mod:`nocrud.environment.pair` instead: their database and app come and go together.)

Teardown order is app first, then database: an app still connected would block a
``DROP DATABASE`` and log errors for nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from nocrud.config import Config
from nocrud.docker import cleanup
from nocrud.docker.postgres import DatabaseAddress
from nocrud.docker.reaper import session_labels
from nocrud.docker.resources import Container
from nocrud.environment import ProvisionError, Run, describe_kept
from nocrud.environment.lifecycle import APP_LOG_LINES, EnvironmentLifecycle, kill_in_parallel
from nocrud.environment.readiness import wait_for_app

__all__ = [
    "AppDatabase",
    "AppEnvironment",
    "CloningProvisioner",
    "EnvironmentSet",
    "flow_labels",
]


@dataclass(frozen=True)
class AppDatabase:
    """One flow's database, as this process and as the app container see it.

    Attributes:
        address: How this process (and the flow's ``ctx.db``) reaches it.
        app_host: Host name or address under which the app container reaches the server.
        app_port: The server's port there.
        network: The Docker network the app container joins to reach it.
        watch: Containers whose death takes the database with it (for casualties).
    """

    address: DatabaseAddress
    app_host: str
    app_port: int
    network: str
    watch: tuple[Container, ...] = ()

    def app_env(self, config: Config) -> dict[str, str]:
        """``app.env`` rendered for this database (its name, role and password)."""
        address = self.address
        return config.render_app_env(
            self.app_host,
            self.app_port,
            name=address.dbname,
            user=address.user,
            password=address.password,
        )


def flow_labels(run: Run, flow: str, *, role: str = "flow") -> dict[str, str]:
    """The labels of one flow's objects (run, owner, project, flow; the reaper's session)."""
    labels = {
        **cleanup.run_labels(run.run_id, run.config.project, flow=flow, role=role),
        **session_labels(),
    }
    if run.keep_failed:
        # Which flows will fail is not known yet: every object is marked; passing flows'
        # objects are removed as usual.
        labels[cleanup.LABEL_KEEP] = "true"
    return labels


class AppEnvironment(EnvironmentLifecycle):
    """A flow's database (from the subclass) and a fresh app container pointed at it.

    Use as a context manager: ``__enter__`` starts both and waits until they are ready,
    tearing down what it had started if anything fails; ``__exit__`` tears down.
    """

    def __init__(self, run: Run, flow: str, index: int) -> None:
        super().__init__()
        self.run = run
        self.flow = flow
        self.index = index
        self.name = cleanup.object_name(run.run_id, index, flow)
        self.labels = flow_labels(run, flow)
        self._app: Container | None = None
        self._db: AppDatabase | None = None

    # ------------------------------------------------------------------ the strategy's part

    def open_database(self) -> AppDatabase:
        """Make this flow's database; called once, before the app starts."""
        raise NotImplementedError

    def close_database(self) -> None:
        """Remove this flow's database (whatever state it is in); called once, after the app."""
        raise NotImplementedError

    def describe_database(self) -> str:
        """Where the kept database lives, for ``--keep-failed`` (one line)."""
        return ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open the database, start the app pointed at it, wait until it answers."""
        run, config = self.run, self.run.config
        self._db = db = self.open_database()
        self.check_not_killed()
        self._app = Container(
            run.engine.client,
            run.images.app,
            what="app",
            name=f"{self.name}-app",
            labels={**self.labels, cleanup.LABEL_ROLE: "app"},
            network=db.network,
            ports=run.engine.connection.ports(config.app.port),
            environment=db.app_env(config),
            command=list(config.app.command) if config.app.command is not None else None,
        )
        self._app.start()
        try:
            host, port = self._app.address(run.engine.connection, config.app.port, db.network)
        except (LookupError, RuntimeError) as exc:
            death = self._app.death() or f"the app container is unreachable: {exc}"
            raise ProvisionError(
                f"{death} before becoming ready.\nLast app log lines:\n{self._app.logs(40)}"
            ) from exc
        self._base_url = f"http://{host}:{port}"
        wait_for_app(
            self._base_url,
            config.app.health_path,
            self._app,
            config.timeouts.app_ready,
            check_interrupted=self.check_not_killed,
            app_port=config.app.port,
        )

    def teardown(self) -> None:
        """Remove the app, then the database, once, whatever state they are in."""
        if self._claim_teardown():
            app = self._app
            self._remove([app.remove if app is not None else lambda: None, self.close_database])

    def keep(self) -> str:
        """Leave the app and database after the flow; return how to reach them."""
        self._kept = True
        db = self.database
        where = self.describe_database()
        return describe_kept(
            self.base_url,
            self.run.config.app.health_path,
            db,
            f"docker ps --filter label={cleanup.LABEL_FLOW}={self.flow}",
            where,
        )

    # ------------------------------------------------------------------ the Target protocol

    @property
    def database(self) -> DatabaseAddress:
        if self._db is None:
            raise RuntimeError("the environment has not started")
        return self._db.address

    def casualties(self) -> list[str]:
        """Containers of this environment that stopped while it should run, as sentences."""
        watched = [*(self._db.watch if self._db else ()), *([self._app] if self._app else [])]
        return [death for death in (c.death() for c in watched) if death is not None]

    def app_logs(self, tail: int = APP_LOG_LINES) -> str:
        """The app's last log lines (stdout and stderr), or what was saved at teardown."""
        return self._app_logs(self._app, tail)


E = TypeVar("E", bound=EnvironmentLifecycle)


class EnvironmentSet(Generic[E]):
    """The live environments of one provisioner: numbered, tracked, killed together."""

    def __init__(self) -> None:
        self._live: set[E] = set()
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self.stopping = threading.Event()
        self.kept = 0

    def next_index(self) -> int:
        return next(self._counter)

    @contextlib.contextmanager
    def enter(self, make: Callable[[int], E]) -> Iterator[E]:
        """Make an environment with the next index, start it, yield it, tear it down."""
        env = make(self.next_index())
        with self._lock:
            self._live.add(env)
        try:
            if self.stopping.is_set():
                raise ProvisionError("not started: run interrupted")
            with env:
                yield env
            if env.kept:
                self.kept += 1
        finally:
            with self._lock:
                self._live.discard(env)

    def kill_all(self) -> int:
        """Tear every live environment down at once, from helper threads."""
        self.stopping.set()
        with self._lock:
            live = list(self._live)
        kill_in_parallel(live)
        return len(live)


class _Server(Protocol):
    def start(self) -> None: ...

    def remove(self) -> None: ...


S = TypeVar("S", bound=_Server)


class CloningProvisioner(Generic[S, E]):
    """A strategy whose flows clone their databases on one server the run prepares.

    ``template`` (a PostgreSQL container of the run's) and ``external`` (the user's
    server) differ in the server and in what a flow's environment does on it; the
    rest lives here: the server started in :meth:`prepare` (and removed again when
    starting fails), every flow's environment tracked and killed together.
    Subclasses make the server (:meth:`open_server`) and a flow's environment
    (:meth:`environment`), and remove the server in ``close``.
    """

    name: str
    needs_db_image: bool

    def __init__(self) -> None:
        self._run: Run | None = None
        self._server: S | None = None
        self._envs: EnvironmentSet[E] = EnvironmentSet()

    def open_server(self, run: Run) -> S:
        """The run's server, not started yet."""
        raise NotImplementedError

    def environment(self, run: Run, flow: str, index: int, server: S) -> E:
        """One flow's environment on ``server``."""
        raise NotImplementedError

    def prepare(self, run: Run) -> None:
        server = self.open_server(run)
        try:
            server.start()
        except BaseException:
            with contextlib.suppress(Exception):
                server.remove()
            raise
        self._run, self._server = run, server

    def acquire(self, flow: str, *, fresh: bool = False) -> contextlib.AbstractContextManager[E]:
        run, server = self._run, self._server
        if run is None or server is None:
            raise RuntimeError(f"{type(self).__name__}.acquire() before prepare()")
        return self._envs.enter(lambda index: self.environment(run, flow, index, server))

    def kill_all(self) -> int:
        return self._envs.kill_all()
