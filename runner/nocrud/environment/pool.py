"""The pool behind the ``pool`` strategy: a state machine over recyclable environments.

IntegreSQL's idea, for pairs: instead of a new PostgreSQL and app container per flow,
each worker keeps an environment that is *reset* in the background between flows, and
a flow's handoff is a queue pop. :class:`Pool` is that state machine, independent of
Docker (it is unit-tested with fakes): every slot is ``starting``, ``ready``, ``in use``,
``dirty`` (reset pending) or ``rebuilding``. It holds at most ``capacity`` slots (one per
worker plus ``run.warm``) and keeps up to ``warm`` of them ready ahead of demand.

A slot is rebuilt (removed, and a new one started in the background) instead of reset
after a flow that did not pass, when its environment died, when it was torn down (a
timeout, an interrupt), when its reset failed, and after ``run.pool_max_uses`` flows. An
environment kept with ``--keep-failed`` leaves the pool. For pairs kept between runs it
can take over environments another run left (:meth:`Pool.adopt`, :meth:`Pool.adopt_later`)
and hand its own over at the end (:meth:`Pool.detach`); with ``defer`` it puts a reset off
while every worker has a ready slot. The strategy itself (pairs, kept pools, the run's
lines) is :mod:`nocrud.environment.pool_provisioner`.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from nocrud.environment import ProvisionError

__all__ = ["DAEMON_OPERATIONS", "Pool", "Recyclable", "Slot", "State", "quietly", "side_by_side"]

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
            quietly(slot.env.teardown)
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
                quietly(slot.env.teardown)
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
            quietly(env.teardown)
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
        side_by_side([s.env.kill for s in slots], 15)
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
        side_by_side([s.env.teardown for s in slots if not s.env.kept], timeout)

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
            quietly(slot.env.teardown)
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
        quietly(slot.env.teardown)
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
            quietly(env.teardown)
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
            quietly(slot.env.teardown)
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


def quietly(action: Callable[[], None]) -> None:
    """A teardown on a path that must go on; the run's label sweep removes what this misses."""
    with contextlib.suppress(Exception):
        action()


def side_by_side(actions: list[Callable[[], None]], timeout: float) -> None:
    """Run each of ``actions`` quietly in a thread of its own; wait up to ``timeout`` for all."""
    threads = [threading.Thread(target=quietly, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _thread(job: Callable[[], None]) -> None:
    threading.Thread(target=job, name="nocrud-pool", daemon=True).start()
