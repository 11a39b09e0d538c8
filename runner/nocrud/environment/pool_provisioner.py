"""The ``pool`` strategy: a recycled warm pool of pairs, reset between flows.

Each worker keeps a :class:`~nocrud.environment.pair.Pair` whose PGDATA lives on a tmpfs,
in a :class:`~nocrud.environment.pool.Pool`. Between flows the pair is *reset* in the
background: the flow's database dropped (``WITH (FORCE)``) and cloned again from the
migrated template (``STRATEGY FILE_COPY``, tens of milliseconds in memory), and the app
renewed as ``run.pool_app_reload`` says (a restart of its container, a signal to a
server that forks new workers, or nocrud's preloading launcher for uvicorn;
:mod:`nocrud.environment.reload`). So no database row and no app process state survives
from one flow to the next. What does survive: files the app wrote into its container's
filesystem (the container is restarted, not recreated), and the PostgreSQL server's own
state outside the flow's database (roles and their passwords, settings changed with
``ALTER SYSTEM``).

With ``run.keep_pool`` the pairs outlive the run: :class:`PoolProvisioner` takes over the
pairs an earlier run kept (:meth:`Pool.adopt`, or :meth:`Pool.adopt_later` for one being
reset after its run) and leaves its own at the end (:meth:`Pool.detach`, which hands
resets under way over instead of waiting for them); :mod:`nocrud.environment.kept` owns
their records and keeper, :mod:`nocrud.environment.settle` the settler that resets the
pairs left dirty after the run has exited. A kept pool puts a reset off while every
worker has a ready pair (``defer``): the settler does it after the run.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
from collections.abc import Callable, Iterator

from nocrud.docker import cleanup
from nocrud.docker.reaper import session_labels
from nocrud.docker.resources import DaemonGate
from nocrud.environment import Run
from nocrud.environment.bridge import SharedBridge, share_bridge
from nocrud.environment.kept import KeptPool
from nocrud.environment.pair import Pair
from nocrud.environment.pool import DAEMON_OPERATIONS, Pool, Slot, State, quietly, side_by_side
from nocrud.environment.settle import settling, start_settler, take_when_settled

__all__ = ["PoolProvisioner"]


def _daemon_cpus(run: Run) -> int:
    """The Docker host's CPUs (not this process's: under DinD they differ), at least 1."""
    try:
        return max(1, int(run.engine.client.info().get("NCPU") or 1))
    except Exception:  # noqa: BLE001 - unknown: start one at a time, the safe end
        return 1


def _idle(seconds: float) -> str:
    """An idle time as people write it: 10 min, 90 s, 1.5 h."""
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


#: Starts the settler of a kept pool: the pairs still being reset in this process, and how
#: many pairs the pool should hold; False: none started (see :func:`settle.start_settler`).
Settle = Callable[[KeptPool, list[str], int], bool]


class PoolProvisioner:
    """The ``pool`` strategy: :class:`Pool` of resettable :class:`Pair` objects."""

    name = "pool"

    def __init__(self, *, daemon_operations: int = DAEMON_OPERATIONS) -> None:
        self._daemon_operations = daemon_operations
        self._run: Run | None = None
        self._pool: Pool[Pair] | None = None
        self._bridge: SharedBridge | None = None
        self._counter = itertools.count(1)
        self._hint_lock = threading.Lock()
        self._reload_hinted = False
        self._kept: KeptPool | None = None
        self._cpus = 1

    def prepare(self, run: Run) -> None:
        self._run = run
        self._reload_hinted = False
        config = run.config
        gate = DaemonGate(self._daemon_operations)
        labels = {
            **cleanup.run_labels(run.run_id, config.project, role="pool"),
            **session_labels(),
        }
        if run.keep_failed:
            labels[cleanup.LABEL_KEEP] = "true"
        self._kept = self._open_kept(run, gate)
        if self._kept is None and share_bridge(run):
            # Held for the whole run: pairs come and go, the bridge stays until close().
            self._bridge = SharedBridge(run, labels, gate)
            self._bridge.lease()
        bridge = self._bridge

        kept = self._kept

        def make() -> Pair:
            name = cleanup.object_name(run.run_id, next(self._counter), "pool")
            if kept is not None:
                return kept.make(name)
            return Pair(run, name, labels, gate=gate, bridge=bridge, resettable=True)

        warm = config.run.warm
        self._pool = Pool(
            make,
            capacity=config.parallel + warm,
            warm=warm,
            max_uses=config.run.pool_max_uses,
            starting=(cpus := _daemon_cpus(run)),
            defer=kept is not None,
        )
        self._cpus = cpus
        if kept is not None:
            self._adopt(kept, self._pool)
        self._pool.fill()

    @staticmethod
    def _open_kept(run: Run, gate: DaemonGate) -> KeptPool | None:
        """The run's kept pool (``run.keep_pool``), or None when pairs go with the run."""
        if run.config.run.keep_pool <= 0:
            return None
        if run.keep_failed:
            run.say("pool: run.keep_pool is off under --keep-failed (kept pairs stay for you)")
            return None
        kept = KeptPool(run, gate, run.say)
        return kept if kept.open() else None

    @staticmethod
    def _adopt(kept: KeptPool, pool: Pool[Pair]) -> None:
        """Take the pairs earlier runs kept; wait (in the background) for those being settled.

        A pair a settler is resetting now (:mod:`nocrud.environment.settle`) is waited
        for rather than replaced: the pool holds its room and starts no pair in its place
        while the wait lasts (about the pair's boot, which a new pair would cost too).
        """
        retired = kept.retire_stale()
        if retired:
            kept.say(f"pool: retired {retired} kept pair(s) of an earlier build or settings")
        taken = dirty = 0
        for pair, clean, uses in kept.adopt(pool.capacity):
            pool.adopt(pair, clean=clean, uses=uses)
            taken += 1
            dirty += not clean
        if taken:
            resetting = f", {dirty} being reset" if dirty else ""
            kept.say(f"pool: took {taken} kept pair(s) from earlier runs{resetting}")
        waits = []
        for path, wait in settling(kept):
            if pool.adopt_later(take_when_settled(kept, path, wait)):
                waits.append(wait)
        if waits:
            kept.say(
                f"pool: waiting up to {max(waits):.1f} s for {len(waits)} kept pair(s) "
                "being reset after the last run"
            )

    @contextlib.contextmanager
    def acquire(self, flow: str, *, fresh: bool = False) -> Iterator[Pair]:
        if self._pool is None:
            raise RuntimeError("PoolProvisioner.acquire() before prepare()")
        slot = self._pool.acquire(fresh=fresh)
        try:
            self._suggest_reload(slot.env)
            yield slot.env
        finally:
            self._pool.release(slot)

    def _suggest_reload(self, pair: Pair) -> None:
        """Once a run: say how pairs are reset, from the first pair's choice.

        Under ``auto`` (and a signal) it says what nocrud saw and chose; under ``restart``
        it speaks only when ``auto`` would choose a signal, several times cheaper (see
        ``run.pool_app_reload`` in docs/config.md).
        """
        with self._hint_lock:
            run, hinted, self._reload_hinted = self._run, self._reload_hinted, True
        if hinted or run is None:
            return
        line = pair.reload_line(warm=run.config.run.warm)
        if line:
            run.say(line)

    @staticmethod
    def _leave(kept: KeptPool, pool: Pool[Pair], settle: Settle) -> None:
        """Keep up to ``run.keep_pool_max`` pairs for the next run; remove the rest.

        A pair reset by a signal (a tenth of a second) is reset by the run itself before it
        ends: cheaper than a settler's process (an interpreter and nocrud's imports, half a
        CPU-second), which pytest-xdist would start once per worker. The run does not wait
        for restarts under way (a full boot each): those pairs stay locked until their
        reset ends, in this process, or the process exits. Every pair kept dirty is reset
        after the run by a settler (``settle``, started before the keeper connection it
        inherits is dropped), which also starts the pairs missing from the pool's size (at
        most the cap); the run does not wait for it.
        """
        chosen: set[Slot[Pair]] = set()
        decided = threading.Event()
        ended: dict[Slot[Pair], threading.Event] = {}

        def reset_ended(slot: Slot[Pair], clean: bool) -> None:
            decided.wait(60)
            if slot in chosen and not slot.env.torn_down:
                kept.leave(slot.env, clean=clean, uses=slot.uses)
            if slot in ended:
                ended[slot].set()

        slots = pool.detach(hand_over=reset_ended)
        busy = pool.handed_over
        slots.sort(key=lambda s: (s.state is not State.READY, s in busy))
        left, extra = slots[: kept.cap], slots[kept.cap :]
        chosen.update(left)
        here = {s for s in left if s.state is not State.READY and _resets_by_signal(s.env)}
        ended.update((s, threading.Event()) for s in here & busy)
        reset = _reset_here([s for s in here if s not in busy])
        for slot in left:
            clean = slot in reset or (slot.state is State.READY and slot not in busy)
            kept.leave(slot.env, clean=clean, uses=slot.uses, hold=slot in busy)
        decided.set()  # a reset ending now records its pair after the line above
        # A pair mid-reset is killed: its reset fails at once and leaves it alone.
        side_by_side([s.env.kill if s in busy else s.env.teardown for s in extra], 60)
        for event in ended.values():
            event.wait(60)  # a backstop: each reset gives up at its own deadline
        # Left dirty: what only a settler resets now, a reset here that failed, and one
        # under way that has not ended (its pair stays held: the settler waits for it).
        dirty = [s for s in left if s not in here and (s in busy or s.state is not State.READY)]
        dirty += [s for s in here if s not in busy and s not in reset]
        dirty += [s for s in here & busy if not ended[s].is_set()]
        waiting = [s.env.name for s in dirty if s in busy]
        # Pairs still starting at the end were not kept: the settler starts them again.
        missing = max(0, min(kept.cap, pool.size_at_detach) - len(left))
        settled = bool(dirty or missing) and settle(kept, waiting, len(left) + missing)
        kept.close()
        if left:
            later = [f"{len(dirty)} being reset"] if settled and dirty else []
            later += [f"{missing} more being started"] if settled and missing else []
            after = f" ({', '.join(later)} in the background)" if later else ""
            kept.say(
                f"pool: kept {len(left)} pair(s) for the next run{after}, removed after "
                f"{_idle(kept.idle)} without one (`nocrud pool stop` removes them now)"
            )

    def kill_all(self) -> int:
        if self._kept is not None:
            self._kept.close()
        killed = self._pool.kill_all() if self._pool is not None else 0
        if self._bridge is not None:
            quietly(self._bridge.close)
        return killed

    def close(self) -> None:
        if self._pool is not None and self._kept is not None:
            settle: Settle = functools.partial(
                start_settler,
                workers=self._cpus,
                daemon_operations=self._daemon_operations,
            )
            self._leave(self._kept, self._pool, settle)
        elif self._pool is not None:
            self._pool.close()
        if self._bridge is not None:
            quietly(self._bridge.close)
        self._run = None


def _resets_by_signal(pair: Pair) -> bool:
    """The pair's app is renewed by a signal (cheap), not by a container restart."""
    reload = getattr(pair, "reload", None)
    return reload is not None and reload.signal is not None


def _reset_here(slots: list[Slot[Pair]]) -> set[Slot[Pair]]:
    """Reset ``slots``' pairs side by side; the slots whose reset worked."""
    done: set[Slot[Pair]] = set()

    def reset(slot: Slot[Pair]) -> None:
        slot.env.reset()
        done.add(slot)

    side_by_side([functools.partial(reset, s) for s in slots], 60)
    return done
