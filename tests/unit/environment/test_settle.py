"""The settler of a kept pool, and the pool's side of it: no Docker, fakes at the seam.

The settler's decisions run on real records and real ``flock`` locks in a temporary
directory; only the pairs are fakes (a :class:`KeptPair` whose reset and teardown are
recorded). The pool's hand-over of resets under way and its wait for pairs being settled
run on the fake environments of test_pool.py.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest

from nocrud.docker.resources import DaemonGate
from nocrud.environment import ProvisionError
from nocrud.environment.kept import KeptPair, KeptPool, _lock, pool_dir, read_pools
from nocrud.environment.pool_provisioner import PoolProvisioner
from nocrud.environment.settle import settle, settling, take_when_settled, top_up
from tests.unit.environment.test_kept_pool import FakeKept, _record, _run
from tests.unit.environment.test_pool import FakeEnv, _counts, _pool

IDS = {"shop-app:1": "sha256:a1", "shop-db:1": "sha256:d1"}


class FakePair(KeptPair):
    """A kept pair whose containers are imaginary: its reset and teardown are recorded."""

    fail: ClassVar[set[str]] = set()
    events: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, record: dict[str, Any] | Any, name: str = "", *_: Any, **__: Any) -> None:
        # No containers: no super().__init__. Adopted from a record, or made (run, name, ...).
        self.name = record["name"] if isinstance(record, dict) else name
        self.boot = float(record.get("boot") or 0.0) if isinstance(record, dict) else 1.0

    def start(self) -> None:
        FakePair.events.append(("start", self.name))
        if self.name in FakePair.fail:
            raise ProvisionError("the app container exited with code 3")
        if self.keeper is not None:
            self.keeper.claim(self)

    @classmethod
    def adopt(cls, run: Any, labels: Any, gate: Any, record: dict[str, Any]) -> Self:
        return cls(record)

    def export(self) -> dict[str, str]:
        return {"name": self.name, "db": f"{self.name}-db", "app": f"{self.name}-app"}

    def reset(self) -> None:
        FakePair.events.append(("reset", self.name))
        if self.name in FakePair.fail:
            raise ProvisionError("the app did not answer in time")

    def teardown(self) -> None:
        FakePair.events.append(("teardown", self.name))
        if self.keeper is not None:
            self.keeper.forget(self)


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KeptPool:
    monkeypatch.setattr("nocrud.environment.kept.KeptPair", FakePair)
    FakePair.fail, FakePair.events = set(), []
    lines: list[str] = []
    pool = KeptPool(_run(tmp_path, IDS), DaemonGate(0), lines.append)
    pool.dir.mkdir(parents=True)
    return pool


def _states(kept: KeptPool) -> dict[str, str]:
    return {r.name: r.state for r in read_pools(kept.run.config.root).get(kept.key, [])}


# ---------------------------------------------------------------------- the settler


def test_the_settler_resets_only_the_dirty_pairs_nobody_holds_and_records_them_clean(
    kept: KeptPool,
) -> None:
    root = kept.run.config.root
    for name, clean in (("p1", False), ("p2", True), ("p3", False), ("p4", False)):
        _record(root, kept.key, name, clean=clean, uses=3)
    held = _lock(kept.dir / "p3.lock")  # a run has it
    counts = settle(kept, workers=2, pool_alive=lambda: True)
    assert counts == {"settled": 2}, "p3 is in use and p2 clean: neither is looked at"
    assert sorted(FakePair.events) == [("reset", "p1"), ("reset", "p4")]
    assert _states(kept) == {"p1": "ready", "p2": "ready", "p3": "in use", "p4": "ready"}
    assert json.loads((kept.dir / "p1.json").read_text())["uses"] == 3
    probe = _lock(kept.dir / "p1.lock")
    assert probe is not None, "a settled pair's lock was kept"
    probe.close()
    assert held is not None
    held.close()


def test_a_pair_whose_reset_fails_is_removed_and_its_record_forgotten(kept: KeptPool) -> None:
    for name in ("p1", "p2"):
        _record(kept.run.config.root, kept.key, name, clean=False)
    FakePair.fail = {"p2"}
    assert settle(kept, workers=1, pool_alive=lambda: True) == {"settled": 1, "removed": 1}
    assert ("teardown", "p2") in FakePair.events
    assert _states(kept) == {"p1": "ready"}
    assert not (kept.dir / "p2.lock").exists()


def test_the_settler_ends_quietly_when_its_pool_is_gone(kept: KeptPool) -> None:
    _record(kept.run.config.root, kept.key, "p1", clean=False)
    assert settle(kept, workers=1, pool_alive=lambda: False) == {"abandoned": 1}
    assert FakePair.events == [] and _states(kept) == {"p1": "dirty"}


def test_a_pair_its_run_was_still_resetting_is_waited_for_then_settled_or_skipped(
    kept: KeptPool,
) -> None:
    """The run's process holds the lock until it exits (or records the pair clean)."""
    root = kept.run.config.root
    _record(root, kept.key, "exits", clean=False)
    _record(root, kept.key, "finishes", clean=False)
    exits, finishes = _lock(kept.dir / "exits.lock"), _lock(kept.dir / "finishes.lock")
    assert exits is not None and finishes is not None

    def run_ends() -> None:
        time.sleep(0.2)
        data = json.loads((kept.dir / "finishes.json").read_text())
        (kept.dir / "finishes.json").write_text(json.dumps({**data, "clean": True}))
        finishes.close()  # its reset ended in the run: recorded clean, then unlocked
        exits.close()  # the run exited mid-reset: its lock goes with it, the record is dirty

    threading.Thread(target=run_ends).start()
    waiting = ["exits", "finishes"]
    counts = settle(kept, workers=2, waiting=waiting, wait=10, pool_alive=lambda: True)
    assert counts == {"settled": 1, "skipped": 1}
    assert FakePair.events == [("reset", "exits")]
    assert _states(kept) == {"exits": "ready", "finishes": "ready"}


def test_a_pair_being_settled_shows_as_settling_and_a_dirty_one_left_by_a_killed_settler_as_dirty(
    kept: KeptPool,
) -> None:
    path = _record(kept.run.config.root, kept.key, "p1", clean=False, boot="1.5")
    got = kept.take(path, dirty_only=True)
    assert got is not None
    assert _states(kept) == {"p1": "settling"}
    [(where, wait)] = settling(kept)
    assert where == path and wait == pytest.approx(3.5), "its boot plus the slow margin"
    assert got[0]._lock_handle is not None
    got[0]._lock_handle.close()  # SIGKILL: the lock goes, the record stays as it was
    assert _states(kept) == {"p1": "dirty"}
    again = kept.take(path)  # the next run takes it, dirty, and resets it itself
    assert again is not None and again[1] is False
    assert _states(kept) == {"p1": "in use"}
    kept.leave(again[0], clean=False, uses=1, hold=True)  # its run ends mid-reset
    assert _states(kept) == {"p1": "settling"}, "the next run would not wait for it"
    kept.leave(again[0], clean=True, uses=1)  # the reset ended
    assert _states(kept) == {"p1": "ready"}


# ---------------------------------------------------------------------- the next run's wait


def test_the_next_run_takes_a_pair_once_its_settler_is_done_and_gives_up_in_time(
    kept: KeptPool,
) -> None:
    root = kept.run.config.root
    path = _record(root, kept.key, "p1", clean=False)
    lock = _lock(path.with_suffix(".lock"))
    assert lock is not None

    def settled() -> None:
        time.sleep(0.2)
        path.write_text(json.dumps({**json.loads(path.read_text()), "clean": True}))
        lock.close()

    threading.Thread(target=settled).start()
    got = take_when_settled(kept, path, wait=10)(lambda: False)
    assert got is not None and got[1] is True, "taken clean once its lock was free"
    kept.leave(got[0], clean=True, uses=1)

    other = _record(root, kept.key, "p2", clean=False)
    held = _lock(other.with_suffix(".lock"))
    began = time.monotonic()
    assert take_when_settled(kept, other, wait=0.2)(lambda: False) is None
    assert time.monotonic() - began < 2
    assert take_when_settled(kept, other, wait=10)(lambda: True) is None, "the run stopped"
    assert held is not None
    held.close()


def test_a_pair_promised_by_a_settler_holds_its_room_and_no_start_replaces_it() -> None:
    pool, jobs, made = _pool(capacity=1)
    settled = FakeEnv()
    asked: list[bool] = []
    assert pool.adopt_later(lambda stopping: asked.append(stopping()) or (settled, True, 2))
    assert not pool.adopt_later(lambda stopping: None), "no room left for a second"
    assert pool.try_acquire() is None and made == []
    jobs.run_all()
    slot = pool.acquire()
    assert slot.env is settled and slot.uses == 2 and made == [] and asked == [False]

    pool, jobs, made = _pool(capacity=1)
    assert pool.adopt_later(lambda stopping: None)  # its settler did not finish in time
    jobs.run_all()
    assert pool.acquire().env is made[0], "the pool starts its own"


# ---------------------------------------------------------------------- the run's end


def test_the_run_hands_over_a_reset_under_way_instead_of_waiting_for_it() -> None:
    pool, _, _ = _pool(capacity=3)
    started, finish = threading.Semaphore(0), threading.Event()

    class SlowReset(FakeEnv):
        name = "slow"

        def reset(self) -> None:
            started.release()
            finish.wait(10)
            super().reset()

    slow = SlowReset()
    pool.adopt(slow, clean=True)
    extra = SlowReset()
    extra.name = "extra"
    pool.adopt(extra, clean=True)
    slots = [pool.acquire(), pool.acquire()]
    pool._spawn = lambda job: threading.Thread(target=job).start()
    for slot in slots:
        pool.release(slot)
    assert started.acquire(timeout=5) and started.acquire(timeout=5)
    kept = FakeKept(cap=1)
    settlers: list[list[str]] = []
    began = time.monotonic()
    PoolProvisioner._leave(kept, pool, lambda _, waiting, __: settlers.append(waiting) or True)
    assert time.monotonic() - began < 2, "the run waited for a reset"
    [waiting] = settlers
    killed = [env for env in (slow, extra) if "kill" in env.events]
    assert len(killed) == 1, "the pair beyond keep_pool_max goes at once"
    [chosen] = [env for env in (slow, extra) if env not in killed]
    assert waiting == [chosen.name]
    assert kept.left == [(chosen, "held", 1)], "a pair mid-reset was left unlocked"
    finish.set()
    deadline = time.monotonic() + 5
    while len(kept.left) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert kept.left[1:] == [(chosen, True, 1)], "recorded clean once its reset ended"
    assert _counts(pool) == {}, "the slots left the pool with detach()"


def test_a_settler_log_goes_with_its_pool(tmp_path: Path) -> None:
    from nocrud.environment.kept import expire
    from tests.unit.environment.test_kept_pool import FakeClient

    key_dir = pool_dir(tmp_path) / "gone"
    key_dir.mkdir(parents=True)
    (key_dir / "settle.log").write_text("settled\n")
    (key_dir / "pool.json").write_text("{}")
    _record(tmp_path, "gone", "g1", clean=True)
    assert expire(FakeClient({}), tmp_path) == 1
    assert not key_dir.exists()


def test_pool_stop_waits_for_a_pair_being_settled_then_removes_it_and_the_keeper(
    tmp_path: Path,
) -> None:
    from nocrud.environment.kept import hold_settle_lock, stop_pools
    from tests.unit.environment.test_kept_pool import FakeClient

    path = _record(tmp_path, "k1", "p1", clean=False, settling=4242)
    lock = _lock(path.with_suffix(".lock"))
    settler = hold_settle_lock(path.parent)
    assert lock is not None and settler is not None
    threading.Timer(0.3, lock.close).start()  # the pair is settled
    threading.Timer(0.5, settler.close).start()  # and the settler is done (it started p2)
    threading.Timer(0.4, lambda: _record(tmp_path, "k1", "p2", clean=True)).start()
    client = FakeClient({"k1": ["keeper-k1"]})
    assert stop_pools(client, tmp_path, wait=10) == (2, 0)
    assert set(client.removed) == {"p1-app", "p1-db", "p2-app", "p2-db", "keeper-k1"}
    held = _record(tmp_path, "k2", "p2", clean=False)  # a run's, not a settler's
    lock = _lock(held.with_suffix(".lock"))
    began = time.monotonic()
    assert stop_pools(FakeClient({}), tmp_path, wait=10) == (0, 1)
    assert time.monotonic() - began < 1, "a run's pair is not waited for"
    assert lock is not None
    lock.close()


def test_the_settler_starts_the_pairs_the_run_had_not_finished_starting(kept: KeptPool) -> None:
    _record(kept.run.config.root, kept.key, "p1", clean=True)
    FakePair.fail = {"nocrud-abc-0002-pool"}
    assert top_up(kept, target=3, workers=2, run_id="abc") == 1
    assert sorted(FakePair.events) == [
        ("start", "nocrud-abc-0001-pool"),
        ("start", "nocrud-abc-0002-pool"),
        ("teardown", "nocrud-abc-0002-pool"),
    ]
    assert _states(kept) == {"p1": "ready", "nocrud-abc-0001-pool": "ready"}
    assert top_up(kept, target=2, workers=2, run_id="def") == 0, "the pool is full"


def test_the_run_asks_its_settler_for_the_pairs_that_were_still_starting_at_its_end() -> None:
    pool, jobs, _ = _pool(capacity=3, warm=2)
    slot = pool.acquire()
    pool.release(slot)  # its reset and two warm starts are queued
    kept = FakeKept(cap=4)
    asked: list[int] = []
    leaving = threading.Thread(
        target=PoolProvisioner._leave,
        args=(kept, pool, lambda _, __, target: asked.append(target) or True),
    )
    leaving.start()
    while not pool._stopping_now():
        time.sleep(0.01)
    jobs.run_all()  # the run is over: no reset, no start
    leaving.join(10)
    assert [clean for _, clean, _ in kept.left] == [False]
    assert asked == [3], "one kept, two that were starting: the settler starts them"
    assert kept.lines == [
        "pool: kept 1 pair(s) for the next run (1 being reset, 2 more being started in the "
        "background), removed after 10 min without one (`nocrud pool stop` removes them now)"
    ]


def test_a_running_settler_is_waited_for_even_with_every_record_clean(kept: KeptPool) -> None:
    from nocrud.environment.kept import hold_settle_lock, settler_running
    from nocrud.environment.settle import wait_settled

    root = kept.run.config.root
    _record(root, kept.key, "p1", clean=True)
    assert not settler_running(kept.dir)
    held = hold_settle_lock(kept.dir)  # it is starting pairs the run had no time to start
    assert settler_running(kept.dir)
    assert wait_settled(root, 0.2) is None
    threading.Timer(0.2, held.close).start()
    waited = wait_settled(root, 10)
    assert waited is not None and waited >= 0.1


def test_a_kept_pool_puts_resets_off_while_every_worker_has_a_ready_pair() -> None:
    from nocrud.environment.pool import Pool
    from tests.unit.environment.test_pool import Jobs

    jobs = Jobs()
    pool = Pool(FakeEnv, capacity=3, warm=1, spawn=jobs, defer=True)  # two workers
    for _ in range(3):
        pool.adopt(FakeEnv(), clean=True)
    used = pool.acquire()
    pool.release(used)
    assert jobs.queue == [] and _counts(pool) == {"ready": 2, "dirty": 1}, "not put off"
    other = pool.acquire()  # one ready left for two workers: the put-off reset starts
    assert jobs.run_all() == 1 and used.env.events == ["reset"]
    pool.release(other)
    assert _counts(pool) == {"ready": 2, "dirty": 1}
    slots = pool.detach(timeout=1)  # the settler resets what was put off
    assert {s.state.value for s in slots} == {"ready", "dirty"} and other.env.events == []


class SignalReset(FakeEnv):
    """A pair renewed by a signal (a tenth of a second), not by a container restart."""

    reload = type("Reload", (), {"signal": "HUP"})()

    @property
    def name(self) -> str:
        return f"pair-{self.number}"


def test_a_run_finishes_resets_by_signal_itself_and_starts_no_settler() -> None:
    """A settler is a whole interpreter: not worth it for a reset that costs a signal."""
    from nocrud.environment.pool import Pool

    started, finish = threading.Semaphore(0), threading.Event()

    class Resetting(SignalReset):
        def reset(self) -> None:
            started.release()
            finish.wait(10)
            super().reset()

    # Three pairs, one worker's worth not warm: a release that finds one pair ready puts
    # its reset off; one that finds none resets at once.
    def spawn(job: Any) -> None:
        threading.Thread(target=job).start()

    pool = Pool(SignalReset, capacity=3, warm=2, spawn=spawn, defer=True)
    under_way, ready, put_off = Resetting(), SignalReset(), SignalReset()
    for env in (under_way, ready, put_off):
        pool.adopt(env, clean=True)
    slots = [pool.acquire() for _ in range(3)]
    assert [s.env for s in slots] == [under_way, ready, put_off]
    pool.release(slots[0])
    assert started.acquire(timeout=5)
    pool.release(slots[1])
    deadline = time.monotonic() + 5
    while _counts(pool).get("ready") != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    pool.release(slots[2])
    assert put_off.events == [], "its reset was to be put off"
    kept = FakeKept(cap=3)
    settlers: list[list[str]] = []
    threading.Timer(0.2, finish.set).start()
    PoolProvisioner._leave(kept, pool, lambda _, waiting, __: settlers.append(waiting) or True)
    assert settlers == [], "a settler was started for pairs the run could reset itself"
    assert put_off.events == ["reset"], "the put-off reset ran in the run"
    assert (put_off, True, 1) in kept.left and (ready, True, 1) in kept.left
    assert kept.left[-1] == (under_way, True, 1), "the reset under way was waited for"
    assert kept.lines == [
        "pool: kept 3 pair(s) for the next run, removed after 10 min without one "
        "(`nocrud pool stop` removes them now)"
    ]


def test_a_restart_under_way_is_still_handed_to_a_settler() -> None:
    """A restart is a full boot: the run does not wait for it (the settler does)."""
    pool, _, _ = _pool(capacity=2)
    finish = threading.Event()
    started = threading.Semaphore(0)

    class Restarting(FakeEnv):
        name = "restarting"
        reload = type("Reload", (), {"signal": None})()

        def reset(self) -> None:
            started.release()
            finish.wait(10)

    env = Restarting()
    pool.adopt(env, clean=True)
    slot = pool.acquire()
    pool._spawn = lambda job: threading.Thread(target=job).start()
    pool.release(slot)
    assert started.acquire(timeout=5)
    kept = FakeKept(cap=2)
    settlers: list[list[str]] = []
    PoolProvisioner._leave(kept, pool, lambda _, waiting, __: settlers.append(waiting) or True)
    finish.set()
    assert settlers == [[env.name]]


def test_a_reset_that_fails_at_the_runs_end_leaves_its_pair_to_the_settler() -> None:
    from nocrud.environment.pool import Pool
    from tests.unit.environment.test_pool import Jobs

    jobs = Jobs()
    pool = Pool(SignalReset, capacity=2, warm=1, spawn=jobs, defer=True)
    broken, ready = SignalReset(fail_reset=True), SignalReset()
    pool.adopt(broken, clean=True)
    pool.adopt(ready, clean=True)
    slot = pool.acquire()
    assert slot.env is broken
    pool.release(slot)  # one ready for one worker: its reset is put off
    assert jobs.queue == []
    kept = FakeKept(cap=2)
    settlers: list[list[str]] = []
    PoolProvisioner._leave(kept, pool, lambda _, waiting, __: settlers.append(waiting) or True)
    assert broken.events == ["reset"], "the run tried it"
    assert (broken, False, 1) in kept.left, "recorded dirty"
    assert settlers == [[]], "the settler gets it (nothing of it is held: no waiting)"
