"""``nocrud worker``: a Celery worker that runs flows of this checkout on this Docker host.

At start the worker waits for the broker (saying so while it cannot reach it), then
prepares its Docker host once, as ``nocrud up`` does: it connects, sweeps what killed
runs left, starts the reaper, builds the app and database images from its own checkout
when they are missing (the content-hash tags make them the same as everyone's, or
``nocrud images import`` brought them), and prepares the provisioner. Each task then
runs one flow through a :class:`~nocrud.execute.FlowExecutor`, exactly as a local run,
and pushes its events to the run's list in Redis (the protocol and the failure settings
are in :mod:`nocrud.scheduler.celery_backend`).

While a flow runs, its worker renews the attempt's lease in Redis, so that the
coordinator can tell a lost worker from a slow one. A task is refused, with a message
in the flow's result, when the coordinator's checkout differs from the worker's. A flow
is torn down when its run is cancelled (Ctrl-C) or its coordinator stops renewing its
heartbeat (killed). When the worker's Docker daemon stops answering, the flow's attempt
is recorded as ERROR with that cause, the task is sent again for another worker, and
this worker stops taking tasks.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from nocrud.config import Config
from nocrud.docker import cleanup
from nocrud.environment import Provisioner, Run, Target
from nocrud.errors import UsageError
from nocrud.execute import FlowExecutor
from nocrud.execute.capture import install_output_capture
from nocrud.flows import Flow, discover
from nocrud.results import FlowResult, Status
from nocrud.scheduler.celery_backend import (
    LEASE_TTL,
    MAX_ATTEMPTS,
    STATE_TTL,
    TASK_NAME,
    BrokerError,
    Keys,
    check_broker,
    make_app,
    queue_name,
    redis_client,
)
from nocrud.worker.checkout import compare, fingerprint

__all__ = ["TEARDOWN_MARGIN", "WorkerOptions", "WorkerService", "hard_time_limit", "serve"]

#: Seconds a task may take beyond its phases' own limits (teardown, reporting).
TEARDOWN_MARGIN = 15.0
#: How often a running flow's worker looks at its run's cancel and heartbeat keys.
WATCH_INTERVAL = 0.5

Say = Callable[[str], None]


@dataclass(frozen=True)
class WorkerOptions:
    """What ``nocrud worker`` was asked to do."""

    broker: str
    name: str
    concurrency: int
    visibility_timeout: float


def hard_time_limit(config: Config) -> float:
    """The longest one task can take: database and app readiness, the flow, the teardown."""
    timeouts = config.timeouts
    return timeouts.db_ready + timeouts.app_ready + timeouts.flow + TEARDOWN_MARGIN


def wait_for_broker(url: str, say: Say, *, interval: float = 2.0) -> None:
    """Return once the broker answers; say why not at once, then every half minute."""
    next_word = 0.0
    while True:
        try:
            check_broker(url)
        except BrokerError as exc:
            if time.monotonic() >= next_word:
                say(f"{exc}; retrying every {interval:g} s (Ctrl-C to give up)")
                next_word = time.monotonic() + 30
            time.sleep(interval)
            continue
        return


class _OneFlow:
    """The worker's provisioner as one task sees it: that task's environment can be killed alone."""

    def __init__(self, inner: Provisioner) -> None:
        self.name = inner.name
        self._inner = inner
        self._target: Target | None = None
        self._killed = threading.Event()

    def prepare(self, run: Run) -> None:
        """Prepared once for the whole worker, not per task."""

    @contextlib.contextmanager
    def acquire(self, flow: str, *, fresh: bool = False) -> Iterator[Target]:
        with self._inner.acquire(flow, fresh=fresh) as target:
            self._target = target
            if self._killed.is_set():
                target.kill()
            yield target

    def kill_all(self) -> int:
        self._killed.set()
        target = self._target
        if target is not None:
            target.kill()
        return 1

    def close(self) -> None:
        """The worker closes the real provisioner."""


class WorkerService:
    """The worker's Docker host, prepared once, and the body of its one task."""

    def __init__(self, config: Config, options: WorkerOptions, say: Say) -> None:
        self.config = config
        self.options = options
        self.say = say
        self.node = options.name
        self.fingerprint = fingerprint(config)
        self.flows: dict[str, Flow] = {}
        self.docker_ok = True
        self._redis: Any = None
        self._app: Any = None
        self._engine: Any = None
        self._provisioner: Provisioner | None = None
        self._stack: contextlib.ExitStack[bool | None] | None = None
        self._run_id = cleanup.new_run_id()
        self._undo_capture: Callable[[], None] | None = None

    # -- lifecycle -----------------------------------------------------------------

    def open(self, app: Any, *, console: Any) -> None:
        """Check the limits, wait for the broker, prepare Docker, images and the provisioner."""
        from nocrud import prepare

        limit = hard_time_limit(self.config)
        if limit >= self.options.visibility_timeout:
            raise UsageError(
                f"--visibility-timeout {self.options.visibility_timeout:g}: a task may take up "
                f"to {limit:g} s (timeouts.db_ready + app_ready + flow + {TEARDOWN_MARGIN:g}); "
                "the broker would deliver a running task again: raise --visibility-timeout "
                "above that, or lower the timeouts in nocrud.yaml"
            )
        wait_for_broker(self.options.broker, self.say)
        self._app = app
        self._redis = redis_client(self.options.broker)
        self.flows = {f.name: f for f in discover(self.config.flows.path)}
        stack = contextlib.ExitStack()
        prepared = stack.enter_context(
            prepare.environments(self.config, console, run_id=self._run_id, say=self.say)
        )
        # Closed by close(): the provisioner, this worker's leftovers, the Docker connection.
        self._stack = stack
        self._engine = prepared.engine
        self._provisioner = prepared.provisioner
        self._undo_capture = install_output_capture()

    def close(self) -> None:
        """Release the provisioner, remove what is left of this worker's environments."""
        if self._undo_capture is not None:
            self._undo_capture()
        stack, self._stack = self._stack, None
        if stack is not None:
            with contextlib.suppress(Exception):  # the run's leftovers go and Docker closes anyway
                stack.close()

    # -- one task ------------------------------------------------------------------

    def run_task(
        self, *, run: str, flow: str, index: int, checkout: Mapping[str, str], coordinator: str
    ) -> str:
        """Run one flow of run ``run`` unless the run is gone; return what happened, briefly.

        A bug here costs the flow, not the run: it becomes the flow's ERROR result, so the
        coordinator never waits for a result that will not come.
        """
        try:
            return self._run_task(
                run=run, flow=flow, index=index, checkout=checkout, coordinator=coordinator
            )
        except Exception as exc:  # noqa: BLE001 - reported as the flow's result
            keys = Keys(run)
            attempt = int(self._redis.get(keys.attempt(flow)) or 1)
            result = FlowResult(
                name=flow,
                status=Status.ERROR,
                message=f"internal error on worker {self.node}: {type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
                host=self.node,
                attempt=attempt,
            )
            return self._finish(keys, result)

    def _run_task(
        self, *, run: str, flow: str, index: int, checkout: Mapping[str, str], coordinator: str
    ) -> str:
        keys = Keys(run)
        redis = self._redis
        task = {
            "run": run,
            "flow": flow,
            "index": index,
            "checkout": dict(checkout),
            "coordinator": coordinator,
        }
        dropped = self._dropped(task, keys)
        if dropped:
            return dropped
        attempt = int(redis.incr(keys.attempt(flow)))
        redis.expire(keys.attempt(flow), STATE_TTL)
        if attempt > MAX_ATTEMPTS:
            running = redis.get(keys.lease(flow))
            if running:
                # A late delivery (the visibility timeout's) while the flow runs again
                # elsewhere: that attempt's result will count, this one runs nothing.
                number, _, where = str(running).partition(" ")
                return f"dropped: attempt {number} of the flow runs on {where}"
        earlier = redis.hgetall(keys.attempts(flow))
        self._record(keys, flow, attempt, {"host": self.node, "state": "running"})
        retried = _retried(earlier, attempt)
        base = FlowResult(
            name=flow, status=Status.ERROR, host=self.node, attempt=attempt, retried=retried
        )
        refusal = self._refusal(flow, attempt, retried, checkout, coordinator)
        if refusal:
            return self._finish(keys, replace(base, message=refusal))
        self._renew(keys, flow, attempt)
        self._event(keys, type="started", flow=flow, attempt=attempt, retried=retried)
        try:
            result = self._execute(self.flows[flow], keys, attempt)
        except Exception as exc:
            if self._docker_answers():
                raise  # a bug: run_task reports it as the flow's result
            # Gathering the flow's evidence (its containers' state) died with the daemon.
            result = FlowResult(
                name=flow, status=Status.ERROR, message=f"{type(exc).__name__}: {exc}"
            )
        result = replace(result, host=self.node, attempt=attempt, retried=retried)
        if not result.status.ok and not self._docker_answers():
            reason = f"{result.status.name}: {result.message}; {self._docker_down()}"
            self._record(keys, flow, attempt, {"host": self.node, "state": "failed", "why": reason})
            self._hand_back(task, keys, attempt=attempt, reason=reason)
            self._release(keys, flow, attempt)
            return "handed back: Docker stopped answering during the flow"
        return self._finish(keys, result)

    def _dropped(self, task: dict[str, Any], keys: Keys) -> str:
        """Why this delivery runs nothing and counts nothing, or empty."""
        redis = self._redis
        if redis.exists(keys.cancel):
            return "dropped: the run was stopped"
        if redis.exists(keys.done(task["flow"])):
            return "dropped: the flow already has a result"
        if not redis.exists(keys.alive):
            # A coordinator that still lives (starved, not dead) hears it and sends it again.
            reason = "the coordinator's heartbeat had lapsed"
            self._event(keys, type="dropped", flow=task["flow"], reason=reason)
            return "dropped: the coordinator is gone"
        if not self._docker_answers():
            self._hand_back(task, keys, attempt=None, reason=self._docker_down())
            return "handed back: Docker is not answering"
        return ""

    def _refusal(
        self,
        flow: str,
        attempt: int,
        retried: str,
        checkout: Mapping[str, str],
        coordinator: str,
    ) -> str:
        """Why this attempt does not run the flow (its result says so), or empty."""
        if attempt > MAX_ATTEMPTS:
            return f"not run a {_ordinal(attempt)} time: {retried}"
        differs = compare(checkout, self.fingerprint)
        if differs:
            return (
                f"worker {self.node} refused the flow: its checkout differs from the "
                f"coordinator's ({coordinator}) in {', '.join(differs)}: check out the same "
                "commit on both and restart the worker"
            )
        if flow not in self.flows:
            return f"worker {self.node} has no flow {flow!r} in {self.config.flows.path}"
        return ""

    def _renew(self, keys: Keys, flow: str, attempt: int) -> None:
        """Keep this attempt's lease: while it lives, no one sends the flow again."""
        self._redis.set(keys.lease(flow), f"{attempt} {self.node}", px=int(LEASE_TTL * 1000))

    def _release(self, keys: Keys, flow: str, attempt: int) -> None:
        """Drop this attempt's lease, unless another attempt holds it by now."""
        if self._redis.get(keys.lease(flow)) == f"{attempt} {self.node}":
            self._redis.delete(keys.lease(flow))

    def _execute(self, flow: Flow, keys: Keys, attempt: int) -> FlowResult:
        """The flow on this host, torn down if its run is cancelled or its coordinator dies."""
        assert self._provisioner is not None
        executor = FlowExecutor(
            _OneFlow(self._provisioner),
            flow_timeout=self.config.timeouts.flow,
            openapi=self.config.app.openapi,
            headers=self.config.app.headers,
        )
        done = threading.Event()

        def watch() -> None:
            while not done.wait(WATCH_INTERVAL):
                try:
                    self._renew(keys, flow.name, attempt)
                    gone = self._redis.exists(keys.cancel) or not self._redis.exists(keys.alive)
                except Exception:  # noqa: BLE001, S112 - a broker hiccup is not a stop
                    continue
                if gone:
                    executor.kill_all()
                    return

        watcher = threading.Thread(target=watch, name=f"watch:{flow.name}", daemon=True)
        watcher.start()
        try:
            return executor.run(flow, 0)
        finally:
            done.set()

    def _finish(self, keys: Keys, result: FlowResult) -> str:
        """Count ``result`` unless another attempt of the flow already counted."""
        self._record(
            keys, result.name, result.attempt, {"host": self.node, "state": result.status.value}
        )
        self._release(keys, result.name, result.attempt)
        if not self._redis.set(keys.done(result.name), result.attempt, nx=True, ex=STATE_TTL):
            return "not counted: the flow already has a result"
        self._event(keys, type="finished", flow=result.name, result=result.to_dict())
        return result.status.value

    def _hand_back(
        self, task: dict[str, Any], keys: Keys, *, attempt: int | None, reason: str
    ) -> None:
        """Stop taking tasks here and send this one again for another worker."""
        if self.docker_ok:
            self.docker_ok = False
            self.say(f"{reason}: this worker takes no more flows; restart it once Docker is back")
            with contextlib.suppress(Exception):
                self._app.control.cancel_consumer(
                    queue_name(self.config.project), destination=[self.node]
                )
        if attempt is not None:
            self._event(
                keys, type="attempt_failed", flow=task["flow"], attempt=attempt, reason=reason
            )
        suffix = f"a{attempt}" if attempt is not None else f"h{time.monotonic_ns()}"
        self._app.send_task(
            TASK_NAME,
            kwargs=task,
            task_id=f"{task['run']}.{task['index']}.{suffix}",
            queue=queue_name(self.config.project),
        )

    def _docker_answers(self) -> bool:
        try:
            self._engine.client.ping()
        except Exception:  # noqa: BLE001 - any failure means the daemon cannot run flows
            return False
        return True

    def _docker_down(self) -> str:
        from nocrud.docker.engine import describe_docker_host

        where = describe_docker_host()
        return f"the Docker daemon of worker {self.node} ({where}) stopped answering"

    def _record(self, keys: Keys, flow: str, attempt: int, state: dict[str, str]) -> None:
        self._redis.hset(keys.attempts(flow), str(attempt), json.dumps(state))
        self._redis.expire(keys.attempts(flow), STATE_TTL)

    def _event(self, keys: Keys, **event: Any) -> None:
        self._redis.rpush(keys.events, json.dumps({"host": self.node, **event}))
        self._redis.expire(keys.events, STATE_TTL)


def _retried(earlier: Mapping[str, str], attempt: int) -> str:
    """Why the attempts before ``attempt`` did not count, one line each."""
    lines = []
    for number in range(1, attempt):
        state = json.loads(earlier.get(str(number), "{}"))
        host = state.get("host", "an unknown worker")
        if state.get("state") == "failed":
            lines.append(f"attempt {number} on {host}: {state.get('why', 'failed')}")
        elif state.get("state") == "running":
            lines.append(
                f"attempt {number} on {host} did not finish: its worker was lost (its "
                "lease lapsed, or the broker delivered the task again)"
            )
        else:
            lines.append(f"attempt {number} on {host} ended {state.get('state', '?')}")
    return "\n".join(lines)


def _ordinal(number: int) -> str:
    return {1: "first", 2: "second", 3: "third"}.get(number, f"{number}th")


def serve(config: Config, options: WorkerOptions, console: Any) -> int:
    """Run the worker until it is stopped (Ctrl-C or SIGTERM: a warm shutdown); its exit code."""

    def say(line: str) -> None:
        console.print(line, highlight=False, soft_wrap=True)

    app = make_app(options.broker, visibility_timeout=options.visibility_timeout)
    service = WorkerService(config, options, say)

    @app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def run_flow(
        _task: Any,
        *,
        run: str,
        flow: str,
        index: int,
        checkout: dict[str, str],
        coordinator: str,
    ) -> str:
        return service.run_task(
            run=run, flow=flow, index=index, checkout=checkout, coordinator=coordinator
        )

    try:
        service.open(app, console=console)
        worker = app.Worker(
            hostname=options.name,
            pool="threads",
            concurrency=options.concurrency,
            queues=[queue_name(config.project)],
            loglevel="WARNING",
            quiet=True,
            without_mingle=True,
            without_gossip=True,
        )
        say(
            f"worker {options.name}: up to {options.concurrency} flow(s) at a time from queue "
            f"{queue_name(config.project)} on {options.broker}; task limit "
            f"{hard_time_limit(config):g} s < visibility timeout {options.visibility_timeout:g} s"
        )
        worker.start()
        return int(worker.exitcode or 0)
    finally:
        service.close()
