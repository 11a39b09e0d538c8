"""The ``image`` strategy: every flow gets a new PostgreSQL container and a new app container.

For one flow, :class:`FreshPair` creates a private network, starts the database from
the pre-migrated image and the app pointed at it by network alias, and waits until
both are really ready (a PostgreSQL connection that also sets this environment's own
passwords, then HTTP 200 on the health path). If anything fails on the way it
removes what it had started and raises :class:`~nocrud.environment.ProvisionError`
with the evidence. Teardown always runs and tolerates objects that are already
gone; :meth:`FreshPair.kill` may come from another thread (interrupts, timeouts):
removing the containers is what unblocks a flow stuck in a request.

:class:`ImageProvisioner` hands pairs out and tracks the live ones, so an interrupt
tears them all down at once.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator

from nocrud.docker import cleanup
from nocrud.docker.postgres import ALIAS, PORT, DatabaseAddress, new_password
from nocrud.docker.reaper import session_labels
from nocrud.docker.resources import Container, DaemonGate, Network
from nocrud.environment import ProvisionError, Run, describe_kept
from nocrud.environment.app import EnvironmentSet, flow_labels
from nocrud.environment.bridge import SharedBridge, share_bridge
from nocrud.environment.lifecycle import APP_LOG_LINES, EnvironmentLifecycle, kill_in_parallel
from nocrud.environment.pair import Pair
from nocrud.environment.pool import DAEMON_OPERATIONS, Pool
from nocrud.environment.readiness import wait_for_app, wait_for_database
from nocrud.environment.remover import Remover

__all__ = ["ClassicImageProvisioner", "FreshPair", "ImageProvisioner"]


class FreshPair(EnvironmentLifecycle):
    """Network + PostgreSQL + app for one flow. Use as a context manager."""

    def __init__(self, run: Run, flow: str, index: int) -> None:
        super().__init__()
        self.run = run
        self.flow = flow
        self.name = cleanup.object_name(run.run_id, index, flow)
        labels = flow_labels(run, flow)
        client, link = run.engine.client, run.engine.connection
        self._network = Network(client, self.name, labels=labels, connection=link)
        self._db = Container(
            client,
            run.images.db,
            what="database",
            name=f"{self.name}-db",
            labels={**labels, cleanup.LABEL_ROLE: "db"},
            network=self.name,
            aliases=[ALIAS],
            ports=link.ports(PORT),
            # The path as released: the image's HEALTHCHECK runs (None: the image's own).
            healthcheck=None,
        )
        # Every environment gets its own password: the app learns it from its environment,
        # the database once it accepts connections (see wait_for_database), before the app
        # starts.
        self._password = new_password()
        config = run.config
        env = config.render_app_env(ALIAS, PORT, password=self._password)
        command = list(config.app.command) if config.app.command is not None else None
        self._app = Container(
            client,
            run.images.app,
            what="app",
            name=f"{self.name}-app",
            labels={**labels, cleanup.LABEL_ROLE: "app"},
            network=self.name,
            ports=link.ports(config.app.port),
            environment=env,
            command=command,
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Create the network, start the database and the app, and wait until both are ready."""
        run = self.run
        self._network.create()
        self.check_not_killed()
        self._db.start()
        self.check_not_killed()
        # Created now, started once the database holds this environment's password (see
        # Pair.start): an app that connects once at start must not meet the old one.
        self._app.create()
        db_host, db_port = self._address(self._db, PORT)
        dbc = run.config.database
        self._database = DatabaseAddress(
            host=db_host, port=db_port, dbname=dbc.name, user=dbc.user, password=self._password
        )
        timeouts = run.config.timeouts
        wait_for_database(
            self._database,
            self._db,
            timeouts.db_ready,
            configured_password=dbc.password.get_secret_value(),
            check_interrupted=self.check_not_killed,
        )
        self.check_not_killed()
        self._app.start()
        app_host, app_port = self._address(self._app, run.config.app.port)
        self._base_url = f"http://{app_host}:{app_port}"
        wait_for_app(
            self._base_url,
            run.config.app.health_path,
            self._app,
            timeouts.app_ready,
            check_interrupted=self.check_not_killed,
            ready_when=run.config.app.ready_when,
            app_port=run.config.app.port,
        )

    def teardown(self) -> None:
        """Remove containers and network, once, whatever state they are in."""
        if self._claim_teardown():
            self._remove([self._app.remove, self._db.remove, self._network.remove])

    def keep(self) -> str:
        """Leave this pair running after the flow; return how to reach it, ready to paste."""
        self._kept = True
        db = self.database
        return describe_kept(
            self.base_url,
            self.run.config.app.health_path,
            db,
            f"docker ps --filter label={cleanup.LABEL_FLOW}={self.flow}",
        )

    # ------------------------------------------------------------------ the Target protocol

    def casualties(self) -> list[str]:
        """Containers of this environment that stopped while it should run, as sentences."""
        return [death for death in (self._db.death(), self._app.death()) if death is not None]

    def app_logs(self, tail: int = APP_LOG_LINES) -> str:
        """The app's last log lines (stdout and stderr), or what was saved at teardown."""
        return self._app_logs(self._app, tail)

    # ------------------------------------------------------------------ helpers

    def _address(self, container: Container, port: int) -> tuple[str, int]:
        try:
            return container.address(self.run.engine.connection, port, self.name)
        except (LookupError, RuntimeError) as exc:
            problem = str(exc)
        death = container.death()
        if death is not None:
            # A container that exits at once loses its port bindings before we can read them.
            raise ProvisionError(
                f"{death} before becoming ready.\n"
                f"Last {container.what} log lines:\n{container.logs(40)}"
            )
        raise ProvisionError(
            f"the {container.what} container is unreachable: {problem}.\n"
            f"Last {container.what} log lines:\n{container.logs(40)}"
        )


class ClassicImageProvisioner:
    """The ``image`` strategy as it was: a :class:`FreshPair` (and a network) per flow.

    Not registered as a strategy: kept so the benchmark can measure today's path
    against the improved one in the same run.
    """

    name = "image-classic"

    def __init__(self) -> None:
        self._run: Run | None = None
        self._pairs: EnvironmentSet[FreshPair] = EnvironmentSet()

    def prepare(self, run: Run) -> None:
        self._run = run

    def acquire(
        self, flow: str, *, fresh: bool = False
    ) -> contextlib.AbstractContextManager[FreshPair]:
        run = self._run
        if run is None:
            raise RuntimeError("ClassicImageProvisioner.acquire() before prepare()")
        return self._pairs.enter(lambda index: FreshPair(run, flow, index))

    def kill_all(self) -> int:
        return self._pairs.kill_all()

    def close(self) -> None:
        self._run = None


class ImageProvisioner:
    """The ``image`` strategy (the default): a new :class:`~nocrud.environment.pair.Pair` per flow.

    The pair's app shares the database container's network namespace, and the database
    sits on the run's shared bridge (or its own network in container-network mode; see
    :mod:`nocrud.environment.bridge`). At most :data:`DAEMON_OPERATIONS` daemon operations
    are in flight at once. A passing flow's pair is handed to a background
    :class:`~nocrud.environment.remover.Remover`, so the worker starts its next flow at
    once; the pair of a flow that did not pass is removed before the result is reported.
    With ``run.warm`` N, up to N pairs are started ahead of demand.
    """

    name = "image"

    def __init__(self, *, daemon_operations: int = DAEMON_OPERATIONS) -> None:
        self._run: Run | None = None
        self._live: set[Pair] = set()
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._stopping = threading.Event()
        self._remover: Remover | None = None
        self._bridge: SharedBridge | None = None
        self._gate = DaemonGate(daemon_operations)
        self._warm: Pool[_Fresh] | None = None

    def prepare(self, run: Run) -> None:
        self._run = run
        self._remover = Remover()
        if share_bridge(run):
            labels = {
                **cleanup.run_labels(run.run_id, run.config.project, role="bridge"),
                **session_labels(),
            }
            self._bridge = SharedBridge(run, labels, self._gate)
        warm = run.config.run.warm
        if warm > 0:
            # Pairs used once: the pool's warm slots, each rebuilt (not reset) after its flow.
            self._warm = Pool(
                lambda: _Fresh(self._new_pair("warm")),
                capacity=warm,
                warm=warm,
                max_uses=1,
            )
            self._warm.fill()

    def _new_pair(self, flow: str) -> Pair:
        run = self._run
        if run is None:
            raise RuntimeError("ImageProvisioner.acquire() before prepare()")
        name = cleanup.object_name(run.run_id, next(self._counter), flow)
        return Pair(run, name, flow_labels(run, flow), gate=self._gate, bridge=self._bridge)

    @contextlib.contextmanager
    def acquire(self, flow: str, *, fresh: bool = False) -> Iterator[Pair]:
        warm = self._take_warm()
        pair = warm or self._new_pair(flow)
        with self._lock:
            self._live.add(pair)
        try:
            if self._stopping.is_set():
                pair.teardown()
                raise ProvisionError("not started: run interrupted")
            if warm is None:
                pair.__enter__()  # on failure it removes what it started and re-raises
            yield pair
        finally:
            with self._lock:
                self._live.discard(pair)
        self._hand_back(pair)

    def _hand_back(self, pair: Pair) -> None:
        """Remove a used pair: in the background after a pass, here and now otherwise."""
        if pair.spoiled or pair.killed or pair.kept or self._remover is None:
            pair.teardown()  # a kept pair stays (teardown knows)
        else:
            self._remover.submit(pair.teardown)

    def _take_warm(self) -> Pair | None:
        if self._warm is None or self._stopping.is_set():
            return None
        slot = self._warm.try_acquire()
        if slot is None:
            return None  # none ready: starting one now beats waiting for a warm one
        # The slot is handed back at once: the pool starts its replacement in the
        # background while this flow runs on the pair it took over.
        pair = slot.env.take()
        self._warm.release(slot)
        return pair

    def kill_all(self) -> int:
        self._stopping.set()
        with self._lock:
            live = list(self._live)
        kill_in_parallel(live)
        warm = self._warm.kill_all() if self._warm is not None else 0
        if self._remover is not None:
            self._remover.drain(15)
        if self._bridge is not None:
            with contextlib.suppress(Exception):
                self._bridge.close()
        return len(live) + warm

    def close(self) -> None:
        if self._warm is not None:
            self._warm.close()
        if self._remover is not None:
            self._remover.close(60)
        if self._bridge is not None:
            with contextlib.suppress(Exception):
                self._bridge.close()
        self._run = None


class _Fresh:
    """A warm pair as the pool sees it: started ahead, then taken over by one flow.

    Once taken, the pool's slot no longer owns it (its "teardown" is a no-op) and is
    rebuilt with a new pair; the flow's ``acquire`` removes the pair it took.
    """

    def __init__(self, pair: Pair) -> None:
        self.pair: Pair | None = pair
        self.spoiled = True  # used once: always rebuilt
        self.kept = False

    @property
    def torn_down(self) -> bool:
        return self.pair is None or self.pair.torn_down

    def take(self) -> Pair:
        pair, self.pair = self.pair, None
        assert pair is not None
        return pair

    def start(self) -> None:
        assert self.pair is not None
        try:
            self.pair.start()
        except BaseException:
            self.pair.teardown()
            raise

    def reset(self) -> None:
        raise RuntimeError("a fresh pair is never reset")

    def teardown(self) -> None:
        if self.pair is not None:
            self.pair.teardown()

    def kill(self) -> None:
        if self.pair is not None:
            self.pair.kill()

    def alive(self) -> bool:
        return self.pair is not None
