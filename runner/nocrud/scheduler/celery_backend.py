"""The Celery backend: flows run as tasks on workers on other Docker hosts, results come back.

``nocrud up --broker redis://HOST:PORT/DB`` sends one task per selected flow to the
project's queue; each ``nocrud worker`` (one per Docker host, :mod:`nocrud.worker`)
runs the flow exactly as the local backend would and pushes what happened onto the
run's event list in Redis: ``started`` (which host, which attempt and why) and
``finished`` (the :meth:`~nocrud.results.FlowResult.to_dict` value). This module is
both ends' shared vocabulary (the Celery app and its failure settings, the Redis keys,
the events) and the coordinator's :class:`CeleryBackend`, which feeds the same
:class:`~nocrud.scheduler.pool.RunListener` a local run feeds, so the terminal, JUnit
and JSON reports do not know where a flow ran.

Failure semantics (docs/workers.md states them for users):

* tasks are acknowledged late and rejected when the worker is lost, with a prefetch
  of one, so a task whose worker dies is delivered again (by Redis, once the broker's
  visibility timeout has passed since its delivery); workers refuse to start when
  their hard time limit per task is not below that timeout;
* a running attempt renews its lease in Redis; when the lease lapses (the worker was
  killed, its host vanished) the coordinator sends the flow again at once, without
  waiting the visibility timeout, which stays the backstop for a task a worker had
  taken but not started;
* every delivery increments the flow's attempt counter in Redis and records its host;
  the first result of a flow counts (``done`` is set once), so a redelivered task
  never counts twice, and a third attempt is not made;
* the coordinator keeps a heartbeat key alive; workers tear a flow down when it
  disappears (the coordinator was killed) or when the run's ``cancel`` key appears
  (Ctrl-C), and drop queued tasks of such runs without running them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlparse

from nocrud.errors import InfrastructureError, UsageError
from nocrud.results import FlowResult, Status
from nocrud.scheduler.pool import FAIL_FAST_MESSAGE, FlowLike, RunListener, Schedule

__all__ = [
    "HEARTBEAT_TTL",
    "LEASE_TTL",
    "MAX_ATTEMPTS",
    "TASK_NAME",
    "BrokerError",
    "CeleryBackend",
    "Keys",
    "LiveWorker",
    "broker_urls",
    "check_broker",
    "live_workers",
    "make_app",
    "queue_name",
    "redis_client",
]

#: The one task: run one flow of one run.
TASK_NAME = "nocrud.run_flow"
#: A flow runs at most this often: once, and once more when its worker was lost.
MAX_ATTEMPTS = 2
#: Seconds the coordinator's heartbeat lives without renewal; renewed every sixth of it, so
#: a coordinator starved of CPU for a while is not taken for dead.
HEARTBEAT_TTL = 30.0
#: How often the coordinator sends a flow again that a worker dropped for a lapsed heartbeat.
MAX_RESENDS = 3
#: Seconds a running attempt's lease lives without renewal (its worker renews it every half
#: second); when it lapses the worker is taken for lost and the flow is sent again.
LEASE_TTL = 20.0
#: How often the coordinator looks for lapsed leases while no event arrives.
LEASE_CHECK = 2.0
#: How long run state stays in Redis after the last write (for late and redelivered tasks).
STATE_TTL = 24 * 3600
#: Default broker visibility timeout (Celery's for Redis): a lost task is redelivered after it.
DEFAULT_VISIBILITY_TIMEOUT = 3600.0
#: After Ctrl-C, how long the coordinator waits for running flows to report their teardown.
STOP_GRACE = 60.0

_log = logging.getLogger(__name__)


class BrokerError(InfrastructureError):
    """The broker cannot be reached (exit 3); the message names the URL and what to check."""


def broker_urls(url: str) -> tuple[str, str]:
    """``(celery_url, redis_url)`` of ``--broker``: ``redis://HOST:PORT/DB`` or ``unix:///SOCKET``.

    Raises:
        UsageError: The URL is not a Redis URL.
    """
    parsed = urlparse(url)
    if parsed.scheme in ("redis", "rediss"):
        if not parsed.hostname:
            raise UsageError(f"--broker {url!r}: no host: write redis://HOST:PORT/DB")
        return url, url
    if parsed.scheme == "unix" and parsed.path:
        db = parse_qs(parsed.query).get("db", ["0"])[0]
        # Kombu's name for a Redis server on a Unix socket.
        return f"redis+socket://{parsed.path}?virtual_host={db}", url
    raise UsageError(
        f"--broker {url!r}: not a Redis URL: write redis://HOST:PORT/DB "
        "(e.g. redis://ci-redis:6379/0) or unix:///path/to/redis.sock?db=0"
    )


def redis_client(url: str) -> Any:
    """A Redis client for the run state (thread-safe; short timeouts so failures show fast)."""
    import redis

    return redis.Redis.from_url(
        broker_urls(url)[1], socket_connect_timeout=5, socket_timeout=30, decode_responses=True
    )


def check_broker(url: str) -> None:
    """Raise :class:`BrokerError` unless the broker answers a PING."""
    import redis

    try:
        redis_client(url).ping()
    except redis.RedisError as exc:
        raise BrokerError(
            f"cannot reach the broker at {url} ({exc}): start it (redis-server) or fix --broker"
        ) from exc


def queue_name(project: str) -> str:
    """The project's queue, so several projects can share one broker."""
    return f"nocrud.{project}"


def make_app(broker: str, *, visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT) -> Any:
    """The Celery app both ends use, with the failure settings the module docstring states."""
    from celery import Celery

    app = Celery("nocrud", broker=broker_urls(broker)[0], set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            # Kombu scans for tasks whose visibility timeout has passed only every
            # interval x throttle seconds (10 x 10 by default): every 10 s here.
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # Results travel through the run's event list, not Celery's result backend.
        result_backend=None,
    )
    return app


@dataclass(frozen=True)
class Keys:
    """The Redis keys of one run; every one expires :data:`STATE_TTL` after its last write."""

    run: str

    @property
    def events(self) -> str:
        return f"nocrud:{self.run}:events"

    @property
    def alive(self) -> str:
        return f"nocrud:{self.run}:alive"

    @property
    def cancel(self) -> str:
        return f"nocrud:{self.run}:cancel"

    def attempt(self, flow: str) -> str:
        return f"nocrud:{self.run}:attempt:{flow}"

    def attempts(self, flow: str) -> str:
        return f"nocrud:{self.run}:attempts:{flow}"

    def done(self, flow: str) -> str:
        return f"nocrud:{self.run}:done:{flow}"

    def lease(self, flow: str) -> str:
        """``ATTEMPT HOST`` of the attempt running now, renewed while it runs."""
        return f"nocrud:{self.run}:lease:{flow}"


class CeleryBackend:
    """The coordinator: sends flows as tasks, listens to the run's events, builds the schedule.

    Args:
        run_one: Unused (flows run on the workers); kept for the factory signature.
        parallel: Unused: the workers' ``--concurrency`` decides.
        fail_fast: After the first FAILED or ERROR result, revoke what is queued.
        listener: Told when each flow starts and finishes, as in a local run.
        broker: ``--broker`` URL.
        run_id: This run's id (task ids and Redis keys).
        project: The project (its queue).
        checkout: Content hashes of this checkout (flows, app, migrations) for workers to compare.
        say: Prints one line for the user (retries, waiting for workers).
        app: A Celery app (tests); default :func:`make_app`.
        stop_grace: Seconds to wait after a stop for running flows to report.
    """

    name = "celery"

    def __init__(
        self,
        run_one: object = None,
        *,
        parallel: int = 1,
        fail_fast: bool = False,
        listener: RunListener | None = None,
        broker: str,
        run_id: str,
        project: str,
        checkout: Mapping[str, str],
        say: Callable[[str], None] = lambda _line: None,
        app: Any = None,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        del run_one, parallel
        self._fail_fast = fail_fast
        self._listener = listener
        self._broker = broker
        self._keys = Keys(run_id)
        self._run_id = run_id
        self._queue = queue_name(project)
        self._checkout = dict(checkout)
        self._say = say
        self._app = app
        self._stop_grace = stop_grace
        # Written without a lock: stop() runs in a signal handler.
        self._stop_reason: str | None = None
        self._fail_fast_tripped = False
        self._hosts: dict[str, int] = {}
        self._tasks: dict[str, dict[str, Any]] = {}
        self._resent: dict[str, int] = {}
        self._sender: Any = None
        # Flows whose attempt runs on a worker now: flow -> (attempt, host).
        self._running: dict[str, tuple[int, str]] = {}
        self._lost: set[tuple[str, int]] = set()

    def stop(self, reason: str = "interrupted") -> None:
        """Send no more results to the listener than those already running; revoke the rest."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def run(self, flows: Sequence[FlowLike]) -> Schedule:
        check_broker(self._broker)
        app = self._app or make_app(self._broker)
        redis = redis_client(self._broker)
        names = [f.name for f in flows]
        task_ids = {name: f"{self._run_id}.{index}" for index, name in enumerate(names)}
        beat = _Heartbeat(redis, self._keys.alive)
        beat.start()
        results: dict[str, FlowResult] = {}
        started: dict[str, str] = {}
        self._sender = app
        try:
            for index, name in enumerate(names):
                self._tasks[name] = {
                    "run": self._run_id,
                    "flow": name,
                    "index": index,
                    "checkout": self._checkout,
                    "coordinator": socket.gethostname(),
                }
                app.send_task(
                    TASK_NAME, kwargs=self._tasks[name], task_id=task_ids[name], queue=self._queue
                )
            self._listen(redis, app, names, started, results)
            if self._halted():
                self._revoke(redis, app, [task_ids[n] for n in names if n not in started])
                self._drain(redis, app, names, started, results)
        finally:
            beat.stop()
            with contextlib.suppress(Exception):
                redis.delete(self._keys.alive)
        return self._collect(names, started, results)

    # -- the event loop --------------------------------------------------------------

    def _halted(self) -> bool:
        return self._stop_reason is not None or self._fail_fast_tripped

    def _listen(
        self,
        redis: Any,
        app: Any,
        names: list[str],
        started: dict[str, str],
        results: dict[str, FlowResult],
        *,
        until: float | None = None,
    ) -> None:
        """Handle events until every flow finished, the run halts, or ``until`` passes."""
        waiting = _WorkerWatch(app, self._queue, self._say)
        next_lease_check = time.monotonic() + LEASE_CHECK
        while len(results) < len(names):
            if until is None and self._halted():
                return
            if until is not None and time.monotonic() > until:
                return
            try:
                item = redis.blpop([self._keys.events], timeout=0.2)
            except KeyboardInterrupt:
                self.stop("interrupted")
                continue
            if item is None:
                if until is None and not started:
                    waiting.check()
                if until is None and time.monotonic() >= next_lease_check:
                    next_lease_check = time.monotonic() + LEASE_CHECK
                    self._check_leases(redis)
                continue
            self._handle(json.loads(item[1]), started, results)

    def _handle(
        self, event: dict[str, Any], started: dict[str, str], results: dict[str, FlowResult]
    ) -> None:
        name = str(event.get("flow", ""))
        if name in results:
            return  # a late or redelivered attempt: the first result counts
        host = str(event.get("host", ""))
        worker = self._hosts.setdefault(host, len(self._hosts) + 1)
        kind = event.get("type")
        if kind == "started":
            started[name] = host
            attempt = int(event.get("attempt", 1))
            self._running[name] = (attempt, host)
            if attempt > 1:
                self._say(f"{name}: attempt {attempt} on {host}: {event.get('retried', '')}")
            self._notify("flow_started", name, worker)
        elif kind == "dropped":
            self._resend(name, host, str(event.get("reason", "")))
        elif kind == "attempt_failed":
            self._running.pop(name, None)  # its worker sent the task again itself
            self._say(
                f"{name}: attempt {event.get('attempt')} on {host} did not count: "
                f"{event.get('reason', '')}; it runs again on another worker"
            )
        elif kind == "finished":
            result = replace(FlowResult.from_dict(event["result"]), worker=worker, host=host)
            results[name] = result
            self._running.pop(name, None)
            started.setdefault(name, host)
            if self._fail_fast and result.status in (Status.FAILED, Status.ERROR):
                self._fail_fast_tripped = True
            self._notify("flow_finished", result)

    def _resend(self, name: str, host: str, reason: str) -> None:
        """A worker dropped ``name`` while this coordinator lives (its heartbeat lapsed): again."""
        count = self._resent.get(name, 0) + 1
        if self._halted() or name not in self._tasks or count > MAX_RESENDS:
            return
        self._resent[name] = count
        self._say(f"{name}: worker {host} dropped it ({reason}); sending it again")
        self._sender.send_task(
            TASK_NAME,
            kwargs=self._tasks[name],
            task_id=f"{self._run_id}.{self._tasks[name]['index']}.s{count}",
            queue=self._queue,
        )

    def _check_leases(self, redis: Any) -> None:
        """Send again each running flow whose attempt's lease lapsed: its worker is lost."""
        running = list(self._running.items())
        if not running or self._halted():
            return
        try:
            leases = redis.mget([self._keys.lease(name) for name, _ in running])
        except Exception:  # noqa: BLE001 - a broker hiccup; the next check sees it
            return
        for (name, (attempt, host)), lease in zip(running, leases, strict=True):
            if lease is not None or (name, attempt) in self._lost or name not in self._tasks:
                continue
            self._lost.add((name, attempt))
            self._running.pop(name, None)
            self._say(
                f"{name}: attempt {attempt} on {host} stopped renewing its lease "
                f"({LEASE_TTL:g} s): its worker is lost; sending the flow again"
            )
            self._sender.send_task(
                TASK_NAME,
                kwargs=self._tasks[name],
                task_id=f"{self._run_id}.{self._tasks[name]['index']}.l{attempt}",
                queue=self._queue,
            )

    def _revoke(self, redis: Any, app: Any, task_ids: list[str]) -> None:
        """Queued tasks will not run; running ones are torn down by their workers."""
        with contextlib.suppress(Exception):
            redis.set(self._keys.cancel, self._stop_reason or "fail-fast", ex=STATE_TTL)
        if task_ids:
            with contextlib.suppress(Exception):
                app.control.revoke(task_ids)

    def _drain(
        self,
        redis: Any,
        app: Any,
        names: list[str],
        started: dict[str, str],
        results: dict[str, FlowResult],
    ) -> None:
        """After a stop: wait a while for the flows that were running to report."""
        running = [n for n in started if n not in results]
        if not running:
            return
        deadline = time.monotonic() + self._stop_grace
        while time.monotonic() < deadline and any(n not in results for n in running):
            until = min(deadline, time.monotonic() + 1)
            self._listen(redis, app, names, started, results, until=until)

    def _collect(
        self, names: list[str], started: dict[str, str], results: dict[str, FlowResult]
    ) -> Schedule:
        halt = (
            FAIL_FAST_MESSAGE
            if self._fail_fast_tripped and self._stop_reason is None
            else f"not run: run {self._stop_reason or 'interrupted'}"
        )
        final: list[FlowResult] = []
        for name in names:
            if name in results:
                final.append(results[name])
                continue
            if name in started:
                result = FlowResult(
                    name=name,
                    status=Status.ERROR,
                    message=f"no result from worker {started[name]} after the run stopped "
                    "(it tears the environment down when it sees the stop)",
                    host=started[name],
                )
            else:
                result = FlowResult(name=name, status=Status.SKIPPED, message=halt)
            final.append(result)
            self._notify("flow_finished", result)
        return Schedule(
            results=tuple(final),
            interrupted=self._stop_reason is not None,
            stopped_by_fail_fast=self._fail_fast_tripped,
        )

    def _notify(self, method: str, *args: object) -> None:
        if self._listener is None:
            return
        try:
            getattr(self._listener, method)(*args)
        except Exception:  # noqa: BLE001 - a broken reporter must not stop the flows
            _log.exception("run listener failed in %s", method)


class _Heartbeat:
    """Keeps the run's ``alive`` key set while the coordinator lives."""

    def __init__(self, redis: Any, key: str) -> None:
        self._redis = redis
        self._key = key
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="nocrud-heartbeat", daemon=True)

    def start(self) -> None:
        self._redis.set(self._key, socket.gethostname(), px=int(HEARTBEAT_TTL * 1000))
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(2)

    def _beat(self) -> None:
        while not self._stopped.wait(HEARTBEAT_TTL / 6):
            with contextlib.suppress(Exception):
                self._redis.set(self._key, socket.gethostname(), px=int(HEARTBEAT_TTL * 1000))


class _WorkerWatch:
    """While nothing has started: say once, every half minute at most, that no worker listens."""

    def __init__(self, app: Any, queue: str, say: Callable[[str], None]) -> None:
        self._app = app
        self._queue = queue
        self._say = say
        self._next = time.monotonic() + 5.0

    def check(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + 30.0
        try:
            replies = self._app.control.ping(timeout=1.0)
        except Exception:  # noqa: BLE001 - only a hint; the run goes on waiting
            return
        if not replies:
            self._say(
                f"waiting: no worker answers on the broker (queue {self._queue}): start "
                "`nocrud worker --broker URL` on a Docker host with this project's checkout"
            )


@dataclass(frozen=True)
class LiveWorker:
    """A worker that answered on the broker: its name, flows it runs at once, its queues."""

    name: str
    capacity: int
    queues: tuple[str, ...]


def live_workers(broker: str, *, timeout: float = 2.0, app: Any = None) -> list[LiveWorker]:
    """The workers answering on ``broker`` now (for ``nocrud doctor --broker``).

    Raises:
        BrokerError: The broker cannot be reached.
    """
    check_broker(broker)
    inspect = (app or make_app(broker)).control.inspect(timeout=timeout)
    stats = inspect.stats() or {}
    queues = inspect.active_queues() or {}
    return [
        LiveWorker(
            name=name,
            capacity=int(stats[name].get("pool", {}).get("max-concurrency", 0)),
            queues=tuple(sorted(str(q.get("name", "")) for q in queues.get(name, []))),
        )
        for name in sorted(stats)
    ]
