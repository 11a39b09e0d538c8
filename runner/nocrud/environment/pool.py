"""The ``pool`` strategy: a recycled warm pool of pairs, reset between flows.

IntegreSQL's idea, for pairs: instead of a new PostgreSQL and app container per flow,
each worker keeps a :class:`~nocrud.environment.pair.Pair` whose PGDATA lives on a
tmpfs. Between flows the pair is *reset* in the background: the app container is
stopped, the flow's database dropped (``WITH (FORCE)``) and cloned again from the
migrated template (``STRATEGY FILE_COPY``, tens of milliseconds in memory), and the app
started again. So no database row and no app process state survives from one flow to
the next (the app is renewed as ``run.pool_app_reload`` says: a restart of its container,
or a signal to a server that forks new workers; :mod:`nocrud.environment.reload`). What
does survive: files the app wrote into its container's filesystem (the container is
restarted, not recreated), and the PostgreSQL server's own state outside the flow's
database (roles and their passwords, settings changed with ``ALTER SYSTEM``).

With ``run.keep_pool`` the pairs outlive the run: :class:`PoolProvisioner` takes over the
pairs an earlier run kept (:meth:`Pool.adopt`, or :meth:`Pool.adopt_later` for one being
reset after its run) and leaves its own at the end (:meth:`Pool.detach`, which hands
resets under way over instead of waiting for them); :mod:`nocrud.environment.kept` owns
their records and keeper, :mod:`nocrud.environment.settle` the settler that resets the
pairs left dirty after the run has exited. A kept pool puts a reset off while every
worker has a ready pair (``defer``): the settler does it after the run.

A pair is rebuilt (removed, and a new one started in the background) instead of reset
after a flow that did not pass, when one of its containers died, when it was torn down
(a timeout, an interrupt), when its reset failed, and after ``run.pool_max_uses`` flows.
A pair kept with ``--keep-failed`` leaves the pool.

:class:`Pool` is the state machine, independent of Docker (it is unit-tested with
fakes): every slot is ``starting``, ``ready``, ``in use``, ``dirty`` (reset pending)
or ``rebuilding``. It holds at most ``capacity`` slots (one per worker plus
``run.warm``) and keeps up to ``warm`` of them ready ahead of demand, so a flow's
handoff is a queue pop.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from nocrud.docker import cleanup
from nocrud.docker.reaper import session_labels
from nocrud.docker.resources import DaemonGate
from nocrud.environment import ProvisionError, Run
from nocrud.environment.bridge import SharedBridge, share_bridge
from nocrud.environment.kept import KeptPool
from nocrud.environment.pair import Pair
from nocrud.environment.settle import settling, start_settler, take_when_settled

__all__ = ["DAEMON_OPERATIONS", "Pool", "PoolProvisioner", "Recyclable", "Slot", "State"]

#: Bound on concurrent daemon operations (create, start, restart, remove) of one run;
#: measured with benchmarks/provision.py --gates (see README, "Speed").
DAEMON_OPERATIONS = 2


class Recyclable(Protocol):
    """What the pool needs of an environment (a :class:`Pair`, or a fake in tests)."""

    spoiled: bool

    @property
    def kept(self) -> bool: ...

    @property
    def torn_down(self) -> bool: ...

    def start(self) -> None: ...

    def reset(self) -> None: ...

    def teardown(self) -> None: ...

    def kill(self) -> None: ...

    def alive(self) -> bool: ...


E = TypeVar("E", bound=Recyclable)


class State(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    IN_USE = "in use"
    DIRTY = "dirty"
    REBUILDING = "rebuilding"


@dataclass(eq=False)
class Slot(Generic[E]):
    """One place in the pool and the environment that fills it."""

    index: int
    env: E
    state: State
    uses: int = 0
    history: list[State] = field(default_factory=list)

    def move(self, state: State) -> None:
        self.history.append(state)
        self.state = state


#: Runs a piece of background work (a thread each, or a list a test steps through).
Spawn = Callable[[Callable[[], None]], None]
#: Waits for an environment another process makes ready: ``take(stopping)`` gives
#: (environment, clean, uses), or None when it did not come (:meth:`Pool.adopt_later`).
Take = Callable[[Callable[[], bool]], tuple[E, bool, int] | None]


class Pool(Generic[E]):
    """Slots of recycled environments: acquire one ready, release it to be reset or rebuilt.

    Args:
        make: Makes a new, not yet started environment.
        capacity: Most slots at once (workers + warm).
        warm: Slots kept ready (or on their way to ready) ahead of demand.
        max_uses: Flows per environment before it is rebuilt.
        spawn: Runs background work; a daemon thread per job by default.
        starting: Most environments starting at once. Pairs that start together share
            the CPUs (PostgreSQL's start, the app's imports) and all become ready late;
            started a few at a time, the first ones serve flows while the rest start.
        defer: Reset a released slot only when it is needed: while at least one ready
            slot per worker (capacity - warm) waits, the reset is put off. For a kept
            pool, whose settler resets the dirty pairs after the run: a reset nobody
            needs would only take CPU from the flows.
    """

    def __init__(
        self,
        make: Callable[[], E],
        *,
        capacity: int,
        warm: int = 0,
        max_uses: int = 100,
        spawn: Spawn | None = None,
        starting: int | None = None,
        defer: bool = False,
    ) -> None:
        self._make = make
        self.capacity = max(1, capacity)
        self.warm = max(0, warm)
        self.max_uses = max(1, max_uses)
        self._spawn = spawn or _thread
        self._starting = threading.BoundedSemaphore(max(1, starting or self.capacity))
        self._slots: list[Slot[E]] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._detaching = False
        self._counter = itertools.count(1)
        self._background = 0
        self._warming: set[Slot[E]] = set()  # started ahead of demand, not for a caller
        self._waiting = 0  # callers in acquire()
        self._promised = 0  # environments another process is making ready (adopt_later)
        self.defer = defer
        self._deferred: list[Slot[E]] = []  # dirty slots whose reset is put off (defer)
        self._resetting: set[Slot[E]] = set()  # slots whose reset runs now
        #: Resets under way that detach() handed over, and who hears of their end.
        self.handed_over: frozenset[Slot[E]] = frozenset()
        #: Slots the pool held when detach() stopped it (starting ones included).
        self.size_at_detach = 0
        self._hand_over: Callable[[Slot[E], bool], None] | None = None
        #: The last error of a background start, shown when a flow waits in vain.
        self.last_error: BaseException | None = None

    # ------------------------------------------------------------------ asking and handing back

    def acquire(self, *, fresh: bool = False) -> Slot[E]:
        """A ready slot, now in use: popped when one is ready, else started here.

        With ``fresh``, only a slot whose environment has served no flow yet is popped;
        when there is none and the pool is full, a ready slot's environment is replaced
        here by a new one.

        Raises:
            ProvisionError: Interrupted, or a new environment did not start.
        """
        renew = False
        with self._cond:
            self._waiting += 1
            try:
                while True:
                    if self._stopping:
                        raise ProvisionError("not started: run interrupted")
                    self._reset_deferred()  # before a start here: a reset is cheaper
                    ready = [s for s in self._slots if s.state is State.READY]
                    slot = next((s for s in ready if not fresh or s.uses == 0), None)
                    if slot is not None:
                        slot.move(State.IN_USE)
                        break
                    # Start one here only when the background work under way (warm starts,
                    # resets, rebuilds) will not serve every caller waiting: a start queued
                    # behind the warm ones would finish after them and idle.
                    if self._room() and (fresh or self._coming() < self._waiting):
                        slot = Slot(next(self._counter), self._make(), State.STARTING)
                        slot.move(State.STARTING)
                        self._slots.append(slot)
                        break
                    if ready:  # fresh, and every ready slot has been used: renew one
                        slot, renew = ready[0], True
                        slot.move(State.REBUILDING)
                        break
                    self._cond.wait(0.5)
            finally:
                self._waiting -= 1
        if renew:
            _quietly(slot.env.teardown)
            slot.env, slot.uses = self._make(), 0
            with self._cond:
                slot.move(State.STARTING)
        if slot.state is State.STARTING:
            try:
                self._start(slot.env)
            except BaseException:
                self._drop(slot)
                raise
            with self._cond:
                stopping = self._stopping
                if stopping and slot in self._slots:
                    self._slots.remove(slot)
                if not stopping:
                    slot.move(State.IN_USE)
            if stopping:
                _quietly(slot.env.teardown)
                raise ProvisionError("not started: run interrupted")
        self.fill()
        return slot

    def try_acquire(self) -> Slot[E] | None:
        """A ready slot, now in use, or None at once when none is ready."""
        with self._cond:
            if self._stopping:
                return None
            slot = next((s for s in self._slots if s.state is State.READY), None)
            if slot is None:
                return None
            slot.move(State.IN_USE)
        return slot

    def release(self, slot: Slot[E]) -> None:
        """Hand a slot back after its flow: it is reset, or rebuilt, in the background."""
        slot.uses += 1
        env = slot.env
        if env.kept:
            self._drop(slot)  # its containers stay for inspection; a new slot may replace it
            self.fill()
            return
        rebuild = env.spoiled or env.torn_down or slot.uses >= self.max_uses or not _alive(env)
        with self._cond:
            stopping = self._stopping
            deferred = not stopping and not rebuild and self._enough_ready()
            if stopping:
                if slot in self._slots:
                    self._slots.remove(slot)
            else:
                slot.move(State.REBUILDING if rebuild else State.DIRTY)
                if deferred:
                    self._deferred.append(slot)
                else:
                    self._background += 1
        if stopping:
            _quietly(env.teardown)
            return
        if not deferred:
            self._spawn(functools.partial(self._recycle, slot, rebuild=rebuild))

    def adopt(self, env: E, *, clean: bool, uses: int = 0) -> None:
        """Add a running environment another run left (a kept pool): ready, or reset first.

        A pair its last run did not leave clean (killed mid-flow, say) is reset, or rebuilt
        when one of its containers died, in the background like any released slot.
        """
        with self._cond:
            if self._stopping or not self._room():
                raise ProvisionError("the pool is full or stopping")
            slot = Slot(next(self._counter), env, State.READY, uses=uses)
            self._slots.append(slot)
            if clean:
                slot.move(State.READY)
                self._cond.notify_all()
                return
            rebuild = not _alive(env)
            slot.move(State.REBUILDING if rebuild else State.DIRTY)
            self._background += 1
        self._spawn(functools.partial(self._recycle, slot, rebuild=rebuild))

    def adopt_later(self, take: Take[E]) -> bool:
        """Count on an environment another process is making ready (a kept pair it settles).

        ``take`` runs in the background. Until it returns, the environment counts as on its
        way: the pool holds room for it, and no caller starts one in its place. A clean one
        comes in ready, a dirty one is reset first. False: no room, or stopping.
        """
        with self._cond:
            if self._stopping or not self._room():
                return False
            self._promised += 1
            self._background += 1
        self._spawn(functools.partial(self._take, take))
        return True

    def _take(self, take: Take[E]) -> None:
        try:
            got = take(self._stopping_now)
        except Exception as exc:  # noqa: BLE001 - it did not come: a caller starts its own
            self.last_error, got = exc, None
        with self._cond:
            self._promised -= 1
            if got is not None:
                env, clean, uses = got
                # Stopping: a detached pool hands it over; a closed one removes it (_finish).
                state = State.READY if clean else State.DIRTY
                slot = Slot(next(self._counter), env, state, uses=uses)
                slot.move(state)
                self._slots.append(slot)
                self._background += 1
            self._background -= 1
            self._cond.notify_all()
        if got is not None:
            if clean or self._stopping_now():
                self._finish(slot, slot.state)
            else:
                self._recycle(slot, rebuild=not _alive(slot.env))

    # ------------------------------------------------------------------ warm slots

    def fill(self) -> None:
        """Start slots in the background until ``warm`` are ready or on their way.

        Under ``defer``, put-off resets start first, until one slot per worker is ready
        or on its way; a slot whose reset is put off counts as on its way (the settler
        resets it after the run), so no start replaces it.
        """
        starts: list[Slot[E]] = []
        with self._cond:
            if self._stopping:
                return
            while self._reset_deferred():  # put-off resets first: cheaper than starts
                pass
            coming = (
                self._promised
                + sum(s.state in (State.READY, State.DIRTY, State.REBUILDING) for s in self._slots)
                + sum(s.state is State.STARTING and s in self._warming for s in self._slots)
            )
            while coming < self.warm and self._room():
                slot = Slot(next(self._counter), self._make(), State.STARTING)
                slot.move(State.STARTING)
                self._slots.append(slot)
                self._warming.add(slot)
                self._background += 1
                starts.append(slot)
                coming += 1
        for slot in starts:
            self._spawn(functools.partial(self._start_warm, slot))

    def _coming(self) -> int:
        """Slots that background work will make ready (call with the lock held)."""
        return self._promised + sum(
            (s.state in (State.DIRTY, State.REBUILDING) and s not in self._deferred)
            or (s.state is State.STARTING and s in self._warming)
            for s in self._slots
        )

    def _enough_ready(self) -> bool:
        """Under ``defer``, a ready slot waits for every worker (call with the lock held)."""
        ready = sum(s.state is State.READY for s in self._slots)
        return self.defer and ready >= self.capacity - self.warm

    def _reset_deferred(self) -> bool:
        """Start the oldest put-off reset when the ready slots and the work under way fall
        short of one per worker, or of the callers waiting (call with the lock held)."""
        if not self._deferred:
            return False
        ready = sum(s.state is State.READY for s in self._slots)
        if ready + self._coming() >= max(self.capacity - self.warm, self._waiting):
            return False
        slot = self._deferred.pop(0)
        self._background += 1
        self._spawn(functools.partial(self._recycle, slot, rebuild=False))
        return True

    def _room(self) -> bool:
        """A slot may be added (call with the lock held)."""
        return len(self._slots) + self._promised < self.capacity

    # ------------------------------------------------------------------ stopping

    def kill_all(self) -> int:
        """Stop at once: every environment torn down (in use ones too). Returns how many."""
        with self._cond:
            self._stopping = True
            slots, self._slots = self._slots, []
            self._cond.notify_all()
        _side_by_side([s.env.kill for s in slots], 15)
        return len(slots)

    def close(self, timeout: float = 60) -> None:
        """Wait for background work, then remove every environment, all at once. Idempotent.

        A pair waiting for its reset is removed instead; the removals run side by side
        (the daemon gate still bounds them), since the run's end waits for the last one.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._background == 0, timeout)
            slots, self._slots = self._slots, []
        _side_by_side([s.env.teardown for s in slots if not s.env.kept], timeout)

    def detach(
        self, timeout: float = 60, *, hand_over: Callable[[Slot[E], bool], None] | None = None
    ) -> list[Slot[E]]:
        """Stop, let background work finish, and hand the ready and dirty slots over.

        For a pool kept after the run: nothing is torn down here but what failed; the
        caller keeps or removes what it gets (``ready``: reset and checked; ``dirty``: a
        flow's state still in it, its reset not started). Background work under way
        finishes first; no new reset starts. With ``hand_over``, resets under way are not
        waited for: their slots come back dirty and in :attr:`handed_over`, and
        ``hand_over(slot, clean)`` is called when each reset ends (not clean: it failed,
        and the environment was torn down).
        """
        with self._cond:
            self._stopping = self._detaching = True
            self._hand_over = hand_over
            self.size_at_detach = len(self._slots)
            self._cond.notify_all()
            busy = self._resetting if hand_over is not None else set()
            self._cond.wait_for(lambda: self._background == len(busy), timeout)
            self.handed_over = frozenset(busy)
            slots, self._slots = self._slots, []
        return [s for s in slots if s.state in (State.READY, State.DIRTY) and not s.env.kept]

    def states(self) -> dict[State, int]:
        """How many slots are in each state (for tests and benchmarks)."""
        with self._cond:
            counts = dict.fromkeys(State, 0)
            for slot in self._slots:
                counts[slot.state] += 1
            return counts

    # ------------------------------------------------------------------ background work

    def _start_warm(self, slot: Slot[E]) -> None:
        try:
            self._start(slot.env)
        except Exception as exc:  # noqa: BLE001 - a flow that needs it starts its own and sees why
            self.last_error = exc
            _quietly(slot.env.teardown)
            self._finish(slot, None)
            return
        self._finish(slot, State.READY)

    def _recycle(self, slot: Slot[E], *, rebuild: bool) -> None:
        if self._stopping_now():  # the run is over: no reset; _finish removes the pair
            self._finish(slot, State.DIRTY if self._detaching else State.READY)
            return
        if not rebuild:
            with self._cond:
                self._resetting.add(slot)
            try:
                slot.env.reset()
            except Exception as exc:  # noqa: BLE001 - a reset that fails means a rebuild
                self.last_error = exc
                rebuild = True
            finally:
                with self._cond:
                    self._resetting.discard(slot)
            if not rebuild:
                self._finish(slot, State.READY)
                return
        _quietly(slot.env.teardown)
        if self._stopping_now():
            self._finish(slot, None)
            return
        env = self._make()
        # In the slot before it starts, so kill_all() (an interrupt) reaches a pair that is
        # booting and close() does not wait for a boot nobody will use.
        slot.env, slot.uses = env, 0
        try:
            self._start(env)
        except Exception as exc:  # noqa: BLE001 - the slot goes; a flow starts its own and sees why
            self.last_error = exc
            _quietly(env.teardown)
            self._finish(slot, None)
            return
        self._finish(slot, State.READY)

    def _start(self, env: E) -> None:
        """Start ``env`` once fewer than ``starting`` others are starting."""
        with self._starting:
            if self._stopping_now():
                raise ProvisionError("not started: run interrupted")
            env.start()

    def _finish(self, slot: Slot[E], state: State | None) -> None:
        """End of one background job: the slot becomes ``state`` (None: it leaves the pool)."""
        with self._cond:
            # A detached pool's slots stay for the caller of detach(), in their new state.
            leaves = state is None or (self._stopping and not self._detaching)
            if state is not None and not leaves:
                slot.move(state)
            elif slot in self._slots:
                self._slots.remove(slot)
        if leaves and state is not None:
            # Outside the lock, so the pairs of a stopping run go side by side; before the
            # count drops, so close() returns only when they are gone.
            _quietly(slot.env.teardown)
        with self._cond:
            hand_over = self._hand_over if slot in self.handed_over else None
        if hand_over is not None:
            hand_over(slot, state is State.READY)
        with self._cond:
            self._background -= 1
            self._warming.discard(slot)
            self._cond.notify_all()

    def _drop(self, slot: Slot[E]) -> None:
        with self._cond:
            if slot in self._slots:
                self._slots.remove(slot)
            self._cond.notify_all()

    def _stopping_now(self) -> bool:
        with self._cond:
            return self._stopping


def _alive(env: Recyclable) -> bool:
    try:
        return env.alive()
    except Exception:  # noqa: BLE001 - cannot tell: rebuild to be safe
        return False


def _quietly(action: Callable[[], None]) -> None:
    """A teardown on a path that must go on; the run's label sweep removes what this misses."""
    with contextlib.suppress(Exception):
        action()


def _side_by_side(actions: list[Callable[[], None]], timeout: float) -> None:
    """Run each of ``actions`` quietly in a thread of its own; wait up to ``timeout`` for all."""
    threads = [threading.Thread(target=_quietly, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


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


def _thread(job: Callable[[], None]) -> None:
    threading.Thread(target=job, name="nocrud-pool", daemon=True).start()


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

        The run does not wait for resets under way (a restart is a full boot): those
        pairs stay locked until their reset ends, in this process, or the process exits.
        Every pair kept dirty is reset after the run by a settler (``settle``, started
        before the keeper connection it inherits is dropped), which also starts the pairs
        missing from the pool's size (at most the cap); the run does not wait for it.
        """
        chosen: set[Slot[Pair]] = set()
        decided = threading.Event()

        def reset_ended(slot: Slot[Pair], clean: bool) -> None:
            decided.wait(60)
            if slot in chosen and not slot.env.torn_down:
                kept.leave(slot.env, clean=clean, uses=slot.uses)

        slots = pool.detach(hand_over=reset_ended)
        busy = pool.handed_over
        slots.sort(key=lambda s: (s.state is not State.READY, s in busy))
        left, extra = slots[: kept.cap], slots[kept.cap :]
        chosen.update(left)
        for slot in left:
            clean = slot.state is State.READY and slot not in busy
            kept.leave(slot.env, clean=clean, uses=slot.uses, hold=slot in busy)
        decided.set()  # a reset ending now records its pair after the line above
        # A pair mid-reset is killed: its reset fails at once and leaves it alone.
        _side_by_side([s.env.kill if s in busy else s.env.teardown for s in extra], 60)
        dirty = [s for s in left if s in busy or s.state is not State.READY]
        waiting = [s.env.name for s in left if s in busy]
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
            _quietly(self._bridge.close)
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
            _quietly(self._bridge.close)
        self._run = None
