"""The pool's state machine with fake environments: ready, in use, dirty, rebuilding, in ms.

Background work is queued instead of run on threads, so each test steps the pool
through its states one job at a time and checks where every slot is.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from nocrud.config import ConfigError, load_config
from nocrud.environment import ProvisionError, provisioner_for
from nocrud.environment.pool import Pool, State
from nocrud.environment.remover import Remover


class FakeEnv:
    """An environment that records what was done to it."""

    numbers = itertools.count(1)

    def __init__(self, *, fail_start: bool = False, fail_reset: bool = False) -> None:
        self.number = next(FakeEnv.numbers)
        self.events: list[str] = []
        self.spoiled = False
        self.kept = False
        self.torn_down = False
        self.dead = False
        self.fail_start = fail_start
        self.fail_reset = fail_reset

    def start(self) -> None:
        self.events.append("start")
        if self.fail_start:
            raise ProvisionError("the app container exited with code 3 before becoming ready")

    def reset(self) -> None:
        self.events.append("reset")
        if self.fail_reset:
            raise ProvisionError("could not reset the database")

    def teardown(self) -> None:
        self.events.append("teardown")
        self.torn_down = True

    def kill(self) -> None:
        self.events.append("kill")
        self.torn_down = True

    def alive(self) -> bool:
        return not self.dead


class Jobs:
    """A spawn that queues background jobs for the test to run."""

    def __init__(self) -> None:
        self.queue: list[Callable[[], None]] = []

    def __call__(self, job: Callable[[], None]) -> None:
        self.queue.append(job)

    def run_all(self) -> int:
        ran = 0
        while self.queue:
            self.queue.pop(0)()
            ran += 1
        return ran


def _pool(
    *, capacity: int = 2, warm: int = 0, max_uses: int = 100, **env_options: bool
) -> tuple[Pool[FakeEnv], Jobs, list[FakeEnv]]:
    jobs = Jobs()
    made: list[FakeEnv] = []

    def make() -> FakeEnv:
        env = FakeEnv(**env_options)
        made.append(env)
        return env

    pool = Pool(make, capacity=capacity, warm=warm, max_uses=max_uses, spawn=jobs)
    return pool, jobs, made


def _counts(pool: Pool[FakeEnv]) -> dict[str, int]:
    return {state.value: n for state, n in pool.states().items() if n}


def test_first_acquire_starts_in_the_caller_and_release_resets_in_the_background() -> None:
    pool, jobs, made = _pool()

    slot = pool.acquire()
    assert _counts(pool) == {"in use": 1}
    assert made[0].events == ["start"]

    pool.release(slot)
    assert _counts(pool) == {"dirty": 1}
    assert jobs.run_all() == 1
    assert _counts(pool) == {"ready": 1}
    assert made[0].events == ["start", "reset"]

    again = pool.acquire()
    assert again is slot and again.env is made[0]  # recycled, not new
    assert slot.history == [State.STARTING, State.IN_USE, State.DIRTY, State.READY, State.IN_USE]


@pytest.mark.parametrize(
    ("spoil", "why"),
    [
        (lambda env: setattr(env, "spoiled", True), "the flow did not pass"),
        (lambda env: setattr(env, "dead", True), "a container died"),
        (lambda env: setattr(env, "torn_down", True), "it was killed (timeout)"),
    ],
)
def test_a_spoiled_pair_is_rebuilt_not_reset(spoil: Callable[[FakeEnv], None], why: str) -> None:
    pool, jobs, made = _pool()
    slot = pool.acquire()
    spoil(made[0])

    pool.release(slot)
    assert _counts(pool) == {"rebuilding": 1}, why
    jobs.run_all()

    assert _counts(pool) == {"ready": 1}
    assert "reset" not in made[0].events
    assert made[0].torn_down
    assert slot.env is made[1] and made[1].events == ["start"]
    assert slot.uses == 0


def test_a_pair_is_rebuilt_after_max_uses() -> None:
    pool, jobs, made = _pool(capacity=1, max_uses=3)
    for _ in range(3):
        pool.release(pool.acquire())
        jobs.run_all()
    assert made[0].events == ["start", "reset", "reset", "teardown"]
    assert len(made) == 2 and made[1].events == ["start"]


def test_a_failed_reset_becomes_a_rebuild() -> None:
    pool, jobs, made = _pool(capacity=1, fail_reset=True)
    pool.release(pool.acquire())
    jobs.run_all()
    assert made[0].events == ["start", "reset", "teardown"]
    assert _counts(pool) == {"ready": 1}
    assert isinstance(pool.last_error, ProvisionError)


def test_a_failed_start_frees_the_slot_and_reaches_the_flow() -> None:
    pool, _jobs, made = _pool(capacity=1, fail_start=True)
    with pytest.raises(ProvisionError, match="exited with code 3"):
        pool.acquire()
    assert _counts(pool) == {}
    with pytest.raises(ProvisionError):
        pool.acquire()  # the slot was freed: the next caller tries again
    assert len(made) == 2


def test_a_kept_pair_leaves_the_pool_untouched() -> None:
    pool, jobs, made = _pool(capacity=1)
    slot = pool.acquire()
    made[0].kept = True
    pool.release(slot)
    assert jobs.run_all() == 0
    assert _counts(pool) == {}
    assert made[0].events == ["start"]  # its containers stay for inspection


def test_warm_slots_are_started_ahead_and_handed_over_without_starting() -> None:
    pool, jobs, made = _pool(capacity=4, warm=2)
    pool.fill()
    assert _counts(pool) == {"starting": 2}
    jobs.run_all()
    assert _counts(pool) == {"ready": 2}

    slot = pool.acquire()
    assert slot.env.events == ["start"]  # started before it was asked for
    # Taking one tops the warm slots up again, up to the capacity.
    assert _counts(pool) == {"in use": 1, "ready": 1, "starting": 1}
    jobs.run_all()
    pool.acquire()
    pool.acquire()
    assert len(made) == 4
    assert _counts(pool) == {"in use": 3, "starting": 1}


def test_a_caller_waits_for_a_warm_start_under_way_instead_of_starting_its_own() -> None:
    """Its own start would queue behind the warm ones, finish later and then idle."""
    pool, jobs, made = _pool(capacity=4, warm=2)
    pool.fill()  # two warm starts queued in the background
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire()))
    waiter.start()
    waiter.join(0.05)
    assert got == [] and len(made) == 2  # waiting, nothing of its own started
    jobs.run_all()
    waiter.join(5)
    assert got and got[0].env is made[0]  # type: ignore[attr-defined]
    # Three callers, two warm starts under way: the third starts one itself.
    pool2, jobs2, made2 = _pool(capacity=4, warm=2)
    pool2.fill()
    waiters = [threading.Thread(target=pool2.acquire) for _ in range(3)]
    for thread in waiters:
        thread.start()
    deadline = time.monotonic() + 5
    while len(made2) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(made2) == 3 and made2[2].events == ["start"]
    jobs2.run_all()
    for thread in waiters:
        thread.join(5)
    assert _counts(pool2)["in use"] == 3


def test_acquire_waits_for_a_reset_when_the_pool_is_full() -> None:
    pool, jobs, _made = _pool(capacity=1)
    slot = pool.acquire()
    pool.release(slot)  # dirty; the reset is queued, not run
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire()))
    waiter.start()
    waiter.join(0.05)
    assert got == [] and waiter.is_alive()
    jobs.run_all()
    waiter.join(5)
    assert got == [slot]


def test_a_fresh_flow_gets_a_pair_that_served_no_flow_and_a_used_one_is_renewed() -> None:
    pool, jobs, made = _pool(capacity=1)
    slot = pool.acquire()
    pool.release(slot)
    jobs.run_all()  # reset: ready again, but used once
    assert _counts(pool) == {"ready": 1} and slot.uses == 1

    fresh = pool.acquire(fresh=True)
    # The pool is full, so the used pair is torn down and a new one started for the flow.
    assert made[0].events == ["start", "reset", "teardown"]
    assert fresh.env is made[1] and made[1].events == ["start"]
    assert fresh.uses == 0
    assert _counts(pool) == {"in use": 1}
    assert fresh.history[-3:] == [State.REBUILDING, State.STARTING, State.IN_USE]


def test_a_fresh_flow_takes_a_warm_unused_pair_and_leaves_the_used_one() -> None:
    pool, jobs, _made = _pool(capacity=3, warm=1)
    used = pool.acquire()
    pool.release(used)
    jobs.run_all()  # the used pair is reset, and a warm one started ahead of demand
    assert _counts(pool) == {"ready": 2}

    fresh = pool.acquire(fresh=True)
    assert fresh is not used and fresh.env.events == ["start"]
    assert used.env.events == ["start", "reset"]  # untouched, still ready for others
    assert pool.acquire() is used


def test_try_acquire_never_waits() -> None:
    pool, jobs, _made = _pool(capacity=1, warm=1)
    assert pool.try_acquire() is None  # nothing ready yet
    pool.fill()
    jobs.run_all()
    assert pool.try_acquire() is not None


def test_kill_all_tears_down_every_slot_and_wakes_waiters() -> None:
    pool, _jobs, made = _pool(capacity=1)
    slot = pool.acquire()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            pool.acquire()
        except ProvisionError as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert pool.kill_all() == 1
    waiter.join(5)
    assert [str(e) for e in errors] == ["not started: run interrupted"]
    assert made[0].events == ["start", "kill"]
    pool.release(slot)  # the flow's own hand-back after an interrupt is harmless
    assert made[0].events == ["start", "kill", "teardown"]


def test_close_waits_for_background_work_then_removes_everything() -> None:
    pool, jobs, made = _pool(capacity=2)
    first, second = pool.acquire(), pool.acquire()
    pool.release(first)
    pool.release(second)
    closer = threading.Thread(target=pool.close)
    closer.start()
    closer.join(0.05)
    assert closer.is_alive()  # two resets still queued
    jobs.run_all()
    closer.join(5)
    assert not closer.is_alive()
    # The run is over: the pairs waiting for a reset are removed without one.
    assert [env.events for env in made] == [["start", "teardown"]] * 2
    assert _counts(pool) == {}


def test_close_removes_the_pairs_side_by_side() -> None:
    """Each teardown waits for the others to begin: only removals run at once can finish."""
    pool, _jobs, made = _pool(capacity=3)
    for _ in range(3):
        pool.acquire()
    together = threading.Barrier(3, timeout=5)

    def teardown_together(env: FakeEnv) -> None:
        together.wait()
        FakeEnv.teardown(env)

    for env in made:
        env.teardown = functools.partial(teardown_together, env)  # type: ignore[method-assign]
    pool.close(timeout=10)
    assert not together.broken
    assert all(env.torn_down for env in made)


def test_remover_runs_teardowns_in_the_background_and_drains() -> None:
    remover = Remover()
    gate = threading.Event()
    done: list[int] = []

    def slow() -> None:
        gate.wait(5)
        done.append(1)

    remover.submit(slow)
    remover.submit(lambda: done.append(2))
    assert remover.pending == 2
    gate.set()
    assert remover.drain(5)
    assert done == [1, 2]
    remover.close(5)
    remover.submit(lambda: done.append(3))  # after close: runs in the caller
    assert done == [1, 2, 3]


def _project(tmp_path: Path, run: dict[str, object]) -> Path:
    (tmp_path / "flows").mkdir(parents=True)
    data = {"project": "shop", "app": {"image": "shop:1", "port": 8000}, "run": run}
    path = tmp_path / "nocrud.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_pool_strategy_warm_and_max_uses_load_from_the_file_and_the_command_line(
    tmp_path: Path,
) -> None:
    path = _project(tmp_path, {"strategy": "pool", "warm": 2, "pool_max_uses": 20})
    config = load_config(path, env={})
    assert (config.run.strategy, config.run.warm, config.run.pool_max_uses) == ("pool", 2, 20)
    assert load_config(path, env={}, overrides={"run.warm": 4}).run.warm == 4
    assert provisioner_for(config).name == "pool"
    assert config.run.pool_app_reload == "auto"
    for written, read in (("HUP", "HUP"), ("SIGHUP", "HUP"), ("hup", "HUP"), ("Auto", "auto")):
        reloading = _project(tmp_path / written, {"strategy": "pool", "pool_app_reload": written})
        assert load_config(reloading, env={}).run.pool_app_reload == read


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        (
            {"warm": -1},
            "run.warm: -1 is not a valid number of warm environments: "
            "use an integer >= 0 (0: none ahead)",
        ),
        (
            {"pool_max_uses": 0},
            "run.pool_max_uses: 0 is not a valid flows per pool pair: use an integer >= 1",
        ),
        (
            {"pool_app_reload": "RELOAD"},
            "run.pool_app_reload: 'RELOAD' is neither 'auto', 'restart' nor a signal the app "
            "can handle: use auto (nocrud chooses from the app's processes), restart (any "
            "app), or the signal that makes its server fork new workers, e.g. HUP for gunicorn",
        ),
        (
            {"pool_app_reload": "SIGKILL"},
            "run.pool_app_reload: 'SIGKILL' is neither 'auto', 'restart' nor a signal the app "
            "can handle: use auto (nocrud chooses from the app's processes), restart (any "
            "app), or the signal that makes its server fork new workers, e.g. HUP for gunicorn",
        ),
    ],
)
def test_bad_pool_settings_name_the_key_and_the_fix(
    tmp_path: Path, run: dict[str, object], expected: str
) -> None:
    path = _project(tmp_path, run)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value).splitlines() == [f"{path}: {expected}"]


def test_starts_are_staggered_no_more_than_starting_at_once() -> None:
    """Pairs starting together share the CPUs and all become ready late: a few at a time."""
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    class SlowEnv(FakeEnv):
        def start(self) -> None:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            release.wait(5)
            with lock:
                running -= 1
            super().start()

    pool: Pool[FakeEnv] = Pool(SlowEnv, capacity=4, warm=4, starting=2)
    pool.fill()  # four background starts, on threads
    deadline = time.monotonic() + 5
    while most < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert most == 2  # the other two wait for a free start
    release.set()
    deadline = time.monotonic() + 5
    while pool.states()[State.READY] < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.states()[State.READY] == 4 and most == 2
    pool.close()
