"""One PostgreSQL container and one app container in its network namespace: a flow's pair.

:class:`Pair` is what the ``image`` strategy gives every flow and what the ``pool``
strategy keeps per worker. The app container joins the database container's network
namespace (``network_mode: container:<db>``) and reaches PostgreSQL on 127.0.0.1, so
a pair costs four daemon operations to make (two creates, two starts) and two to
remove, and needs no network of its own when ports are published (see
:mod:`nocrud.environment.bridge`). Both ports are published on the database container.

Start-up is testcontainers' contract: on any failure what was started is removed and
the error (a :class:`~nocrud.environment.ProvisionError` with the evidence) re-raised.
A pair implements the executor's :class:`~nocrud.environment.Target`. For the pool it
can also be *reset*: the app stopped, the database dropped and cloned again from the
migrated template, the app renewed (its container restarted, or its server's workers
replaced by a signal: :mod:`nocrud.environment.reload` chooses) and checked again, all
within a deadline set from the pair's measured boot (see :meth:`Pair.reset`).

The executor asks a target for its app's logs only when the flow did not pass; a pair
remembers that (:attr:`Pair.spoiled`), so a provisioner can treat a failed flow's
pair differently (remove it at once instead of in the background, rebuild it instead
of resetting it) without the executor knowing anything about strategies.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, Self

import psycopg2

from nocrud.docker import cleanup
from nocrud.docker.postgres import PORT, DatabaseAddress, new_password, replace_passwords
from nocrud.docker.resources import Container, DaemonGate, Network, ProcessListError
from nocrud.environment import MisconfigurationError, ProvisionError, Run, describe_kept, preload
from nocrud.environment.bridge import SharedBridge
from nocrud.environment.lifecycle import APP_LOG_LINES, EnvironmentLifecycle
from nocrud.environment.memory import in_memory_options, keep_as_template, reset_database
from nocrud.environment.preload import Launch
from nocrud.environment.readiness import poll, raise_if_dead, wait_for_app
from nocrud.environment.reload import (
    AUTO,
    RESTART,
    Process,
    Reload,
    ResetClock,
    SignalRefusedError,
    choose,
    for_signal,
    last_renewal,
    reset_budget,
    run_line,
    workers,
)

__all__ = ["Pair"]

#: How often a signal reload looks whether the last flow's workers have exited.
WORKERS_INTERVAL = 0.1
#: The launcher's renewal line is looked for this often (a ``docker logs`` costs about a
#: millisecond of CPU, a ``docker top`` fifteen), among the app's last RENEWAL_TAIL lines.
RENEWAL_INTERVAL = 0.02
RENEWAL_TAIL = 200
#: How the app reaches its database: the same network namespace.
LOCALHOST = "127.0.0.1"


class Pair(EnvironmentLifecycle):
    """PostgreSQL + app for one flow (``image``) or one worker (``pool``).

    Args:
        run: The run.
        name: Base name of the containers (``<name>-db``, ``<name>-app``).
        labels: Labels of both containers (the role is added).
        gate: The run's bound on concurrent daemon operations.
        bridge: The run's shared bridge; None gives the pair its own network
            (container-network mode).
        resettable: Serve PGDATA from memory and keep the migrated database as a
            template, so :meth:`reset` can restore it (the ``pool`` strategy).
    """

    def __init__(
        self,
        run: Run,
        name: str,
        labels: dict[str, str],
        *,
        gate: DaemonGate,
        bridge: SharedBridge | None,
        resettable: bool = False,
    ) -> None:
        super().__init__()
        self.run = run
        self.name = name
        self.flow = labels.get(cleanup.LABEL_FLOW, name)
        self.resettable = resettable
        self.uses = 0
        self._bridge = bridge
        self._leased = False
        client, link = run.engine.client, run.engine.connection
        config = run.config
        self._network = (
            None
            if bridge is not None
            else Network(client, name, labels=labels, connection=link, gate=gate)
        )
        ports = {**link.ports(PORT), **link.ports(config.app.port)}
        db_options = in_memory_options() if resettable else {}
        self._db = Container(
            client,
            run.images.db,
            what="database",
            name=f"{name}-db",
            labels={**labels, cleanup.LABEL_ROLE: "db"},
            ports=ports,
            gate=gate,
            **db_options,
        )
        # Every pair gets its own passwords: the app learns its one from its environment
        # now, the database once it accepts connections.
        self._password = new_password()
        self._superuser_password = new_password()
        env = config.render_app_env(LOCALHOST, PORT, password=self._password)
        command = list(config.app.command) if config.app.command is not None else None
        #: How ``auto`` starts this app's uvicorn under nocrud's preloading launcher (resets
        #: fork, not boot), whatever run.pool_app_reload says; None: not a uvicorn it drives.
        self._preloadable = (
            preload.for_image(client, run.images.app, command) if resettable else None
        )
        #: That start, when this pair uses it (``auto``).
        self.preload: Launch | None = (
            self._preloadable if config.run.pool_app_reload == AUTO else None
        )
        launch: dict[str, Any] = {"command": command}
        if self.preload is not None:
            launch = {"entrypoint": self.preload.entrypoint, "command": self.preload.command}
        self._app = Container(
            client,
            run.images.app,
            what="app",
            name=f"{name}-app",
            labels={**labels, cleanup.LABEL_ROLE: "app"},
            environment=env,
            gate=gate,
            **launch,
        )
        self.spoiled = False
        #: A reset pair's log lines before this Unix time belong to earlier flows.
        self._logs_since: float | None = None
        #: The launcher's renewal number after the last reset (None: read it from its log).
        self._renewal: int | None = None
        #: How :meth:`reset` renews the app (chosen once the pair is up, when resettable).
        self.reload = Reload(None, None, "the app", "run.pool_app_reload: restart")
        #: Seconds from the app's start to its first healthy answer (sets a reset's deadline).
        self.boot = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the database and the app in its namespace, and wait until both are ready."""
        run = self.run
        network = self._join_network()
        self.check_not_killed()
        self._db.network = network
        self._db.start()
        self.check_not_killed()
        self._locate()
        dbc = run.config.database
        self._app.options["network_mode"] = f"container:{self._db.obj.id}"
        # The app's container is created while PostgreSQL starts (that much overlap is
        # safe), but started only once its role has this pair's password: an app that
        # connects once at start and exits on failure (most Rust and Go services) must
        # never meet the image's password, nor a server that is not listening yet.
        self._app.create()
        if self.preload is not None:
            self._app.copy_in("/", preload.archive())
        self._wait_for_database()
        if self.resettable:
            # The template must be copied while nothing is connected to the database.
            keep_as_template(self._superuser(), dbc.name)
        self.check_not_killed()
        began = time.monotonic()
        self._app.start()
        self._wait_for_app()
        self.boot = time.monotonic() - began
        if self.resettable:
            self.reload = self._choose_reload(run.config.run.pool_app_reload)

    def reset(self) -> None:
        """Make this pair as new for the next flow: app renewed, database cloned again.

        No database row and no app process survives; files the app wrote into its
        container's filesystem do (the container is restarted, not recreated). The reset
        has a deadline (twice the measured boot plus a few seconds, at most
        ``timeouts.app_ready``); when it runs long it says what it is waiting for, and
        past the deadline it gives up with a line saying the pair is rebuilt.

        Raises:
            ProvisionError: The pair could not be reset in time (rebuild it).
        """
        if not self.resettable:
            raise RuntimeError("reset() of a pair made without resettable=True")
        self._killed = self.spoiled = False
        self._logs_since = time.time()
        deadline, slow_after = reset_budget(self.boot, self.run.config.timeouts.app_ready)
        with ResetClock(deadline, slow_after, self.run.say, self.name) as clock:
            try:
                self._reset(clock)
            except ProvisionError as exc:
                if not self._killed:  # an interrupt is no reset's failure: say nothing
                    self.run.say(clock.gave_up(str(exc)))
                raise

    def _reset(self, clock: ResetClock) -> None:
        reload = self.reload
        old: set[int] = set()
        renewal: int | None = None
        if reload.signal is None:
            clock.waiting_for("the Docker daemon to stop the app's container")
            self._renewal = None  # a launcher starts counting again with its container
            self._app.kill()
        else:
            if reload.announced:  # its next renewal line will say the old servers are gone
                renewal = self._last_renewal(clock)
            if renewal is None:
                clock.waiting_for("the Docker host to list the app's processes (docker top)")
                old = workers(self._app_processes(), reload.master)
            if reload.overlap:  # WSGI workers: they fork while the database is cloned
                self._signal(reload, clock)
        clock.waiting_for("PostgreSQL to drop the flow's database and clone it again")
        try:
            reset_database(self._superuser(), self.run.config.database.name, self._db_owner())
        except psycopg2.Error as exc:
            raise ProvisionError(f"could not reset the database: {exc}".strip()) from exc
        self._logs_at_teardown = ""
        if reload.signal is None:
            clock.waiting_for("the Docker daemon to start the app's container")
            self._app.start()
            clock.waiting_for(
                f"the app to answer GET {self.run.config.app.health_path} after its restart"
            )
        else:
            if not reload.overlap:
                # Only now, with the database the next flow's: new servers that run an ASGI
                # lifespan start-up may touch it as they start (create tables, say); a clone
                # under way would fail them, or a connection opened just before the drop
                # would be cut under the flow.
                self._signal(reload, clock)
            if renewal is not None:
                self._wait_for_renewal(renewal, reload, clock)
            else:
                self._wait_for_new_workers(old, reload, clock)
            clock.waiting_for(
                f"the app's new workers to answer GET {self.run.config.app.health_path}"
            )
        self._wait_for_app(clock.left())

    def _signal(self, reload: Reload, clock: ResetClock) -> None:
        clock.waiting_for(f"the Docker daemon to send SIG{reload.signal} to the app")
        self._app.signal(str(reload.signal))

    def export(self) -> dict[str, str]:
        """What another process needs to take this running pair over (:meth:`adopt`)."""
        if self._network is None or self._network.obj is None:
            raise RuntimeError("only a started pair with a network of its own can be exported")
        return {
            "name": self.name,
            "db": self._db.obj.id,
            "app": self._app.obj.id,
            "network": self._network.obj.id,
            "password": self._password,
            "superuser_password": self._superuser_password,
            "boot": f"{self.boot:.3f}",
        }

    @classmethod
    def adopt(
        cls, run: Run, labels: dict[str, str], gate: DaemonGate, record: dict[str, str]
    ) -> Self:
        """Take over a running pair another process started and exported.

        Raises:
            ProvisionError: One of its containers or its network is gone.
        """
        import docker.errors

        pair = cls(run, record["name"], labels, gate=gate, bridge=None, resettable=True)
        client = run.engine.client
        assert pair._network is not None
        try:
            pair._db.obj = client.containers.get(record["db"])
            pair._app.obj = client.containers.get(record["app"])
            pair._network.obj = client.networks.get(record["network"])
        except docker.errors.NotFound as exc:
            raise ProvisionError(f"kept pair {record['name']} is gone: {exc}") from exc
        pair._password = record["password"]
        pair._superuser_password = record["superuser_password"]
        pair._locate()
        pair._logs_since = time.time()
        # Its reset is chosen again (the master's pid is this pair's), its deadline from
        # the boot its first owner measured.
        pair.boot = float(record.get("boot") or 0.0)
        pair.reload = pair._choose_reload(run.config.run.pool_app_reload)
        return pair

    def teardown(self) -> None:
        """Remove both containers and the network (or the bridge lease), once, in any state."""
        if self._claim_teardown():
            self._remove([self._app.remove, self._db.remove, self._leave_network])

    def keep(self) -> str:
        """Leave this pair running after the flow; return how to reach it, ready to paste."""
        self._kept = True
        db = self.database
        return describe_kept(
            self.base_url, self.run.config.app.health_path, db, f"{self.name}-db, {self.name}-app"
        )

    # ------------------------------------------------------------------ the Target protocol

    def casualties(self) -> list[str]:
        """Containers of this pair that stopped while it should run, as sentences."""
        self.spoiled = True
        return [death for death in (self._db.death(), self._app.death()) if death is not None]

    def app_logs(self, tail: int = APP_LOG_LINES) -> str:
        """The app's last log lines (stdout and stderr), or what was saved at teardown."""
        self.spoiled = True
        return self._app_logs(self._app, tail, since=self._logs_since)

    def alive(self) -> bool:
        """Both containers still run (two API calls)."""
        return self._db.death() is None and self._app.death() is None

    # ------------------------------------------------------------------ helpers

    def _join_network(self) -> str:
        if self._bridge is not None:
            name = self._bridge.lease()
            self._leased = True
            return name
        assert self._network is not None
        self._network.create()
        return self._network.name

    def _leave_network(self) -> None:
        if self._bridge is not None:
            if self._leased:
                self._leased = False
                self._bridge.release()
        elif self._network is not None:
            self._network.remove()

    def _network_name(self) -> str:
        return self._bridge.name if self._bridge is not None else self.name

    def _superuser(self) -> DatabaseAddress:
        db = self.database
        if db.user == "postgres":
            return db.as_superuser(db.password)
        return db.as_superuser(self._superuser_password)

    def _db_owner(self) -> str:
        return self.run.config.database.user

    def _wait_for_database(self) -> None:
        dbc = self.run.config.database
        address = self.database
        timeout = self.run.config.timeouts.db_ready

        def ready() -> str | None:
            try:
                replace_passwords(
                    address,
                    configured_password=dbc.password.get_secret_value(),
                    password=address.password,
                    superuser_password=self._superuser_password,
                )
            except psycopg2.OperationalError as exc:
                return str(exc).strip()
            return None

        last = poll(ready, self._db, timeout, check_interrupted=self.check_not_killed)
        if last is not None:
            raise ProvisionError(
                f"database not ready after {timeout:g}s (last error: {last}); raise "
                f"timeouts.db_ready or check the db image.\n"
                f"Last database log lines:\n{self._db.logs(30)}"
            )

    def _wait_for_app(self, timeout: float | None = None) -> None:
        wait_for_app(
            self._base_url,
            self.run.config.app.health_path,
            self._app,
            self.run.config.timeouts.app_ready if timeout is None else timeout,
            check_interrupted=self.check_not_killed,
            ready_when=self.run.config.app.ready_when,
            app_port=self.run.config.app.port,
        )

    def auto_reload(self) -> Reload:
        """What ``run.pool_app_reload: auto`` would choose for this app: one ``docker top``.

        Raises:
            ProcessListError: The Docker host has no ``ps``.
        """
        if self._preloadable is not None:
            # Under auto it would run under the launcher, which this pair does not.
            return Reload(
                "HUP",
                None,
                "uvicorn (auto starts it under nocrud's preloading launcher, unless the app "
                "connects to something while it is imported)",
                "the launcher forks a new server from the imported app on SIGHUP",
            )
        return choose([Process(*row) for row in self._app.commands()])

    def reload_line(self, *, warm: int) -> str:
        """The run's one line about how its pairs are reset (see :func:`reload.run_line`)."""
        configured = self.run.config.run.pool_app_reload
        auto = None
        if configured == RESTART:
            try:
                auto = self.auto_reload()
            except Exception:  # noqa: BLE001 - no ps on the host, or the app gone: never cost a flow
                auto = None
        return run_line(self.reload, configured=configured, boot=self.boot, warm=warm, auto=auto)

    def _choose_reload(self, configured: str) -> Reload:
        """How :meth:`reset` renews the app, from ``run.pool_app_reload`` and its processes."""
        if configured == RESTART:
            return Reload(None, None, "the app", "run.pool_app_reload: restart")
        try:
            processes = [Process(*row) for row in self._app.commands()]
        except ProcessListError as exc:
            if configured == AUTO:
                return Reload(
                    None, None, "the app", f"{exc}: restarting the container, which any app allows"
                )
            # Without the list a reset cannot tell when the last flow's workers are gone.
            raise MisconfigurationError(
                f"run.pool_app_reload is {configured}, which needs the app's processes, but "
                f"{exc}. Install procps (ps) on the Docker host, or use "
                "run.pool_app_reload: auto"
            ) from exc
        if configured == AUTO:
            chosen = choose(processes)
            if self.preload is not None and chosen.signal is None:
                # The launcher ran the command as it was: its log line says why.
                said = [
                    line.partition(preload.NOT_PRELOADING)[2].strip()
                    for line in self._app.logs(200).splitlines()
                    if preload.NOT_PRELOADING in line
                ]
                if said:
                    return dataclasses.replace(
                        chosen, why=f"{chosen.why}; nocrud's preloading launcher: {said[-1]}"
                    )
            return chosen
        try:
            return for_signal(processes, configured)
        except SignalRefusedError as exc:
            raise MisconfigurationError(f"run.pool_app_reload is {configured}, but {exc}") from exc

    def _app_processes(self) -> list[Process]:
        try:
            return [Process(*row) for row in self._app.commands()]
        except ProcessListError as exc:
            # A container that stopped has no processes to list: say why it stopped.
            raise_if_dead(self._app, self.check_not_killed)
            raise ProvisionError(str(exc)) from exc

    def _last_renewal(self, clock: ResetClock) -> int | None:
        """The launcher's renewal number now: known from the last reset, else from its log.

        None when its log's last lines hold no renewal line (an app that logs a lot):
        the reset then lists the processes, as for any server.
        """
        if self._renewal is None:
            clock.waiting_for("the Docker daemon to read the app's log (docker logs)")
            self._renewal = last_renewal(self._app.logs(RENEWAL_TAIL))
        return self._renewal

    def _wait_for_renewal(self, before: int, reload: Reload, clock: ResetClock) -> None:
        """After SIGHUP to nocrud's launcher: its log says it forked renewal ``before + 1``.

        The launcher kills and reaps the servers that served before it forks new ones, so
        that line means no process of the last flow is left.
        """
        self._renewal = None  # unknown until seen: a failed reset reads it again next time
        clock.waiting_for(
            f"{reload.server} (pid {reload.master} on the Docker host) to fork new servers "
            f"after SIGHUP (its log line 'renewal {before + 1}')"
        )

        def renewed() -> str | None:
            now = last_renewal(self._app.logs(RENEWAL_TAIL))
            # Another number, not a greater one: a launcher that started anew (its container
            # restarted) counts from 0 again.
            if now is not None and now != before:
                self._renewal = now
                return None
            return f"no renewal after {before} in the app's last {RENEWAL_TAIL} log lines yet"

        self._until_renewed(renewed, RENEWAL_INTERVAL, "servers", "SIGHUP", clock)

    def _wait_for_new_workers(self, old: set[int], reload: Reload, clock: ResetClock) -> None:
        """After the reload signal: every worker that served the last flow has exited.

        Until then an old worker (and the state the last flow left in it) could still
        answer the next flow's first request.
        """
        sent = f"SIG{reload.signal}"
        master = f"{reload.server} (pid {reload.master} on the Docker host)"

        def replaced() -> str | None:
            now = workers(self._app_processes(), reload.master)
            if now & old:
                left = sorted(now & old)
                clock.waiting_for(
                    f"{master} to stop {len(left)} worker(s) of the last flow after {sent} "
                    f"(pid {', '.join(map(str, left))})"
                )
                return f"{len(left)} worker(s) of the last flow still running"
            if not now and old:
                clock.waiting_for(f"{master} to fork new workers after {sent}")
                return "no new worker yet"
            return None

        # Each look is a `docker top`, a `ps` the daemon runs: old workers take a few
        # hundred ms to exit, so look every 100 ms, not at the readiness poll's pace.
        self._until_renewed(replaced, WORKERS_INTERVAL, "workers", sent, clock)

    def _until_renewed(
        self,
        renewed: Callable[[], str | None],
        interval: float,
        what: str,
        sent: str,
        clock: ResetClock,
    ) -> None:
        """Look every ``interval`` until ``renewed`` says so, within the reset's deadline."""
        last = poll(
            renewed,
            self._app,
            clock.left(),
            check_interrupted=self.check_not_killed,
            interval=interval,
        )
        if last is not None:
            raise ProvisionError(
                f"the app did not renew its {what} within {clock.elapsed():.1f}s of {sent} "
                f"({last}); run.pool_app_reload: restart works for any app.\n"
                f"Last app log lines:\n{self._app.logs(30)}"
            )

    def _locate(self) -> None:
        """Where this process reaches the started database and app (published ports)."""
        db_host, db_port = self._address(PORT)
        app_host, app_port = self._address(self.run.config.app.port)
        dbc = self.run.config.database
        self._database = DatabaseAddress(
            host=db_host, port=db_port, dbname=dbc.name, user=dbc.user, password=self._password
        )
        self._base_url = f"http://{app_host}:{app_port}"

    def _address(self, port: int) -> tuple[str, int]:
        try:
            return self._db.address(self.run.engine.connection, port, self._network_name())
        except (LookupError, RuntimeError, KeyError) as exc:
            problem = str(exc)
        death = self._db.death()
        if death is not None:
            # A container that exits at once loses its port bindings before we can read them.
            raise ProvisionError(
                f"{death} before becoming ready.\nLast database log lines:\n{self._db.logs(40)}"
            )
        raise ProvisionError(
            f"the database container is unreachable: {problem}.\n"
            f"Last database log lines:\n{self._db.logs(40)}"
        )


#: A function making the pair for one flow or one pool slot.
PairFactory = Callable[[], Pair]
