"""Settling a kept pool: the pairs a run left dirty are reset after it has exited.

A run that keeps its pool (``run.keep_pool``) can leave pairs *dirty*: they served a flow
and their reset had not started when the run ended. The next run would have to reset
them before its flows could use them, and for an app renewed by a restart (a single
uvicorn process, Django's runserver, a compiled binary) that is a full boot its flows
wait for. So the run starts a *settler* as it ends (:func:`start_settler`): a detached
process (its own session, no terminal, its output in ``.nocrud/pool/<key>/settle.log``)
that takes each dirty pair's lock, resets the pair and records it clean, then starts
pairs until the pool holds as many as the run's did at its end (at most
``run.keep_pool_max``): the run keeps only the pairs that had finished starting. The run
does not wait for it. What keeps that safe:

- **One holder per pair.** The settler takes a pair's ``flock`` before it touches the
  pair (it skips one another process holds) and its record says ``settling`` until it
  is left clean; a run uses no pair whose lock it does not hold.
- **A SIGKILL leaves nothing behind.** The locks die with the process; the record stays
  dirty and the next run resets it as it would have without a settler (or rebuilds it,
  when the app was stopped mid-reset). A pair whose reset fails is removed and its
  record forgotten.
- **Never past its pool.** The settler inherits the run's connection to the pool's
  keeper, so the idle time starts when it is done, not before; it ends quietly when the
  keeper is gone or the pool's key no longer matches, and an alarm ends it after every
  reset's deadline has passed.

A run that starts while a pair is being settled waits for it rather than booting one in
its place, for a bounded time (:func:`take_when_settled`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nocrud.docker import cleanup
from nocrud.environment import Run
from nocrud.environment.kept import (
    SETTLE_LOG,
    KeptPair,
    KeptPool,
    hold_settle_lock,
    pool_dir,
    read_pools,
    settler_running,
)
from nocrud.environment.reload import reset_budget
from nocrud.errors import one_line

if TYPE_CHECKING:
    from nocrud.config import Config
    from nocrud.images import BuiltImages

__all__ = [
    "SettleJob",
    "settle",
    "settle_one",
    "settling",
    "start_settler",
    "take_when_settled",
    "top_up",
    "wait_settled",
]

#: How often a run waiting for a pair being settled looks at its lock.
POLL = 0.05
#: The settler's time to connect to Docker and look at its pool, before any reset.
STARTUP_LIMIT = 60
#: Bytes of settle.log kept before the next settler starts it again.
LOG_LIMIT = 2**20


@dataclass(frozen=True)
class SettleJob:
    """What the run hands its settler (through a pipe): the pool and how to reach it.

    Attributes:
        config: The run's configuration (command-line values included).
        images: The run's images.
        key: The pool's key (the settler checks that its own matches).
        keeper: The descriptor of the run's connection to the keeper, inherited.
        workers: Pairs reset at once (the Docker host's CPUs).
        daemon_operations: The run's bound on concurrent daemon operations.
        waiting: Pairs the run was still resetting: their locks are waited for.
        settle_lock: The descriptor of the pool's settle lock, taken by the run and
            inherited (so the settler is seen from the run's end on), or -1: the settler
            waits for it.
        target: Pairs the pool should hold for the next run (as many as the run's pool
            held at its end, starting ones included, at most ``run.keep_pool_max``): the
            settler starts the missing ones.
    """

    config: Config
    images: BuiltImages
    key: str
    keeper: int
    workers: int
    daemon_operations: int
    waiting: list[str]
    target: int
    settle_lock: int = -1


# ---------------------------------------------------------------------- the run's side


def start_settler(
    kept: KeptPool, waiting: list[str], target: int, *, workers: int, daemon_operations: int
) -> bool:
    """Start a settler for ``kept``, before the run drops its keeper connection.

    It resets the dirty pairs, then starts pairs until the pool holds ``target``.
    ``waiting`` names the pairs this process is still resetting: the settler waits for
    their locks (this process ends, or finishes their reset and records them clean).
    Returns at once (a fork and an exec); False when none could be started (the next
    run resets those pairs itself).
    """
    run = kept.run
    sock = kept.connection
    if run.keep_failed or sock is None:
        return False
    job = SettleJob(
        run.config,
        run.images,
        kept.key,
        sock.fileno(),
        workers,
        daemon_operations,
        waiting,
        target,
    )
    path = kept.dir / SETTLE_LOG
    lock = hold_settle_lock(kept.dir, wait=False)
    if lock is not None:
        job = dataclasses.replace(job, settle_lock=lock.fileno())
    try:
        # Each settler appends; a log grown past LOG_LIMIT starts again.
        big = path.exists() and path.stat().st_size > LOG_LIMIT
        with path.open("wb" if big else "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "nocrud.environment.settle"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=run.config.root,
                start_new_session=True,  # Ctrl-C in the run's terminal is not for it
                pass_fds=(job.keeper,) if lock is None else (job.keeper, job.settle_lock),
            )
        assert proc.stdin is not None
        with proc.stdin:
            proc.stdin.write(pickle.dumps(job))
    except (OSError, pickle.PicklingError) as exc:
        run.say(f"pool: could not start the settler ({one_line(exc)}): the next run resets")
        return False
    finally:
        if lock is not None:
            lock.close()  # the settler's copy holds it
    # Reaps it when this process outlives it (the pytest plugin, watch); a run that exits
    # first leaves it to init.
    threading.Thread(target=proc.wait, name="nocrud-settler", daemon=True).start()
    return True


def settling(kept: KeptPool) -> list[tuple[Path, float]]:
    """The records of ``kept`` a settler holds now, each with the wait worth giving it.

    The wait is the point past which the pair's own reset would call itself slow (its
    measured boot plus a margin, see :func:`~nocrud.environment.reload.reset_budget`):
    the settler began the reset before this run started, so by then it has normally
    finished; a pair booted in its place would cost at least that boot too.
    """
    limit = kept.run.config.timeouts.app_ready
    held = []
    for record in read_pools(kept.run.config.root).get(kept.key, []):
        if record.state == "settling":
            boot = float(record.data.get("boot") or 0.0)
            held.append((record.path, reset_budget(boot, limit)[1]))
    return held


def take_when_settled(
    kept: KeptPool, path: Path, wait: float
) -> Callable[[Callable[[], bool]], tuple[KeptPair, bool, int] | None]:
    """A :class:`~nocrud.environment.pool.Pool` ``take``: the pair once its settler is done.

    It looks at the pair's lock every :data:`POLL` seconds for up to ``wait`` seconds,
    and gives up at once when the run stops or the record goes (its reset failed, or
    ``nocrud pool stop``). Given up, the pool starts a pair of its own as it needs one.
    """

    def take(stopping: Callable[[], bool]) -> tuple[KeptPair, bool, int] | None:
        deadline = time.monotonic() + wait
        while not stopping() and path.exists():
            got = kept.take(path)
            if got is not None or time.monotonic() >= deadline:
                return got
            time.sleep(POLL)
        return None

    return take


def wait_settled(root: Path, timeout: float) -> float | None:
    """Wait until no settler runs and no kept pair is dirty or being settled: seconds waited.

    None: some still were after ``timeout`` seconds (a dirty pair no settler took, say).
    """
    began = time.monotonic()
    while True:
        pools = read_pools(root)
        states = {r.state for records in pools.values() for r in records}
        settlers = any(settler_running(pool_dir(root) / key) for key in pools)
        if not settlers and not states & {"dirty", "settling"}:
            return time.monotonic() - began
        if time.monotonic() - began >= timeout:
            return None
        time.sleep(POLL)


# ---------------------------------------------------------------------- the settler's side


def settle(
    kept: KeptPool,
    *,
    workers: int,
    waiting: Sequence[str] = (),
    wait: float = 0.0,
    pool_alive: Callable[[], bool] | None = None,
) -> Counter[str]:
    """Reset every dirty pair of ``kept`` that no other process holds, ``workers`` at once.

    A pair named in ``waiting`` (the run that started the settler was still resetting
    it) is waited for, up to ``wait`` seconds, unless it is recorded clean meanwhile.
    Returns how many were ``settled``, ``removed`` (their reset failed), ``skipped``
    (held by a run, gone, or left clean), ``abandoned`` (the pool is gone) or ``failed``
    (anything else: the record stays dirty for the next run).
    """
    alive = pool_alive or kept.attach
    records = read_pools(kept.run.config.root).get(kept.key, [])
    paths = [r.path for r in records if r.state == "dirty" or r.name in waiting]

    def one(path: Path) -> str:
        try:
            return settle_one(kept, path, alive, wait=wait if path.stem in waiting else 0.0)
        except Exception as exc:  # noqa: BLE001 - one pair's surprise must not stop the others
            kept.say(f"{path.stem}: not settled ({one_line(exc)})")
            return "failed"

    with ThreadPoolExecutor(max_workers=max(1, workers)) as threads:
        return Counter(threads.map(one, paths))


def settle_one(
    kept: KeptPool, path: Path, pool_alive: Callable[[], bool], *, wait: float = 0.0
) -> str:
    """Settle one pair: lock, take over, reset, record clean, unlock (see :func:`settle`)."""
    if not pool_alive():
        return "abandoned"
    deadline = time.monotonic() + wait
    while (got := kept.take(path, dirty_only=True)) is None:
        if time.monotonic() >= deadline or _clean_or_gone(path):
            return "skipped"
        time.sleep(POLL)
    pair, _, uses = got
    began = time.monotonic()
    try:
        pair.reset()
    except Exception as exc:  # noqa: BLE001 - a pair that cannot be reset goes, whatever the cause
        kept.say(f"{pair.name}: not settled ({one_line(exc)}): removed")
        try:
            pair.teardown()
        except Exception:  # noqa: BLE001 - the keeper or the next sweep removes what is left
            kept.forget(pair)
        return "removed"
    kept.leave(pair, clean=True, uses=uses)
    kept.say(f"{pair.name}: settled in {time.monotonic() - began:.1f} s")
    return "settled"


def top_up(kept: KeptPool, *, target: int, workers: int, run_id: str) -> int:
    """Start pairs until ``kept`` holds ``target``, ``workers`` at once: how many started.

    The run ended with fewer pairs than it used (pairs still starting then were not
    kept): the next run would boot the missing ones while its flows wait. A pair is
    recorded once it is up, clean; one that does not start is removed.
    """
    missing = target - len(kept.records())

    def one(index: int) -> bool:
        pair = kept.make(cleanup.object_name(run_id, index, "pool"))
        began = time.monotonic()
        try:
            pair.start()
        except Exception as exc:  # noqa: BLE001 - the next run starts one of its own
            kept.say(f"{pair.name}: not started ({one_line(exc)})")
            with contextlib.suppress(Exception):
                pair.teardown()
            return False
        kept.leave(pair, clean=True, uses=0)
        kept.say(f"{pair.name}: started in {time.monotonic() - began:.1f} s")
        return True

    if missing <= 0:
        return 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as threads:
        return sum(threads.map(one, range(1, missing + 1)))


def _clean_or_gone(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text()).get("clean"))
    except (OSError, ValueError, AttributeError):
        return not path.exists()


def main() -> int:
    """The settler process: read the job from stdin, settle the pool, exit 0 whatever happens."""
    # The job comes from the run that started this process, through a pipe only it writes.
    job: SettleJob = pickle.loads(sys.stdin.buffer.read())  # noqa: S301
    sys.stdin.close()
    # Held (unused) until this process ends: the keeper's idle time starts then.
    keeper = socket.socket(fileno=job.keeper)
    signal.alarm(STARTUP_LIMIT)  # default action: the process ends, its locks with it
    try:
        return _settle_pool(job)
    finally:
        keeper.close()


def _settle_pool(job: SettleJob) -> int:
    from nocrud.docker.engine import open_engine
    from nocrud.docker.resources import DaemonGate

    say(f"settler {os.getpid()} for pool {job.key}")
    try:
        engine = open_engine(parallel=job.workers)
    except Exception as exc:  # noqa: BLE001 - nothing settled: the next run resets
        say(f"no Docker ({one_line(exc)}): nothing settled")
        return 0
    try:
        run_id = cleanup.new_run_id()
        run = Run(config=job.config, run_id=run_id, engine=engine, images=job.images, say=say)
        kept = KeptPool(run, DaemonGate(job.daemon_operations), say)
        if job.settle_lock < 0 and kept.key == job.key and kept.dir.is_dir():
            # One settler at a time per pool: a second one would start the same missing
            # pairs again. Released when this process ends; the wait is bounded by the
            # other settler's own alarm.
            signal.alarm(0)
            hold_settle_lock(kept.dir)
            signal.alarm(STARTUP_LIMIT)
        if kept.key != job.key or not kept.attach():
            say("the pool is gone (expired, stopped or rebuilt): nothing to settle")
            return 0
        # Each reset ends within its deadline (at most timeouts.app_ready); the wait for the
        # run's own resets adds at most one more.
        app_ready = job.config.timeouts.app_ready
        jobs = len(kept.records()) + max(0, job.target - len(kept.records()))
        rounds = math.ceil(jobs / max(1, job.workers)) + 1
        signal.alarm(STARTUP_LIMIT + math.ceil(rounds * app_ready))
        counts = settle(kept, workers=job.workers, waiting=job.waiting, wait=app_ready)
        say(", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing dirty")
        if kept.attach():
            started = top_up(kept, target=job.target, workers=job.workers, run_id=run_id)
            if started:
                say(f"{started} started: the pool holds {len(kept.records())} pair(s)")
    finally:
        engine.close()
    return 0


def say(line: str) -> None:
    """One line of the settler's log (its stdout)."""
    sys.stdout.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
