"""Pairs kept between runs: the pool's adopting and detaching, the key, records and locks.

Docker is faked at its one seam (a client object); the pool state machine runs with the
fake environments of test_pool.py.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from nocrud.config import ConfigError, load_config
from nocrud.environment import ProvisionError
from nocrud.environment.kept import (
    LABEL_KEEPER,
    _forget_unlocked,
    _lock,
    expire,
    pool_dir,
    pool_key,
    read_pools,
    stop_pools,
)
from nocrud.environment.pool import Pool
from nocrud.environment.pool_provisioner import PoolProvisioner
from tests.unit.environment.test_pool import FakeEnv, _counts, _pool

# ---------------------------------------------------------------------- the pool's side


def test_an_adopted_clean_pair_is_handed_over_without_a_start() -> None:
    pool, jobs, made = _pool(capacity=2)
    env = FakeEnv()
    pool.adopt(env, clean=True, uses=7)
    slot = pool.acquire()
    assert slot.env is env and env.events == [] and made == []
    assert slot.uses == 7, "the uses of earlier runs count towards run.pool_max_uses"
    pool.release(slot)
    jobs.run_all()
    assert env.events == ["reset"]


def test_an_adopted_dirty_pair_is_reset_first_and_a_dead_one_rebuilt() -> None:
    pool, jobs, made = _pool(capacity=2)
    dirty, dead = FakeEnv(), FakeEnv()
    dead.dead = True
    pool.adopt(dirty, clean=False)
    pool.adopt(dead, clean=False)
    assert _counts(pool) == {"dirty": 1, "rebuilding": 1}
    jobs.run_all()
    assert dirty.events == ["reset"]
    assert dead.events == ["teardown"] and [e.events for e in made] == [["start"]]
    assert _counts(pool) == {"ready": 2}


def test_adopting_beyond_capacity_is_refused() -> None:
    pool, _, _ = _pool(capacity=1)
    pool.adopt(FakeEnv(), clean=True)
    with pytest.raises(ProvisionError):
        pool.adopt(FakeEnv(), clean=True)


def test_detach_hands_over_ready_and_dirty_pairs_and_tears_down_nothing() -> None:
    pool, jobs, _ = _pool(capacity=3)
    ready, used = pool.acquire(), pool.acquire()
    pool.release(ready)
    jobs.run_all()  # reset: ready again
    pool.release(used)  # its reset is queued, not yet run
    handed: list[Any] = []
    detaching = threading.Thread(target=lambda: handed.extend(pool.detach(timeout=10)))
    detaching.start()
    while not pool._stopping_now():
        threading.Event().wait(0.01)
    jobs.run_all()  # the queued reset sees the run is over: the pair stays dirty, unreset
    detaching.join(10)
    assert sorted(s.state.value for s in handed) == ["dirty", "ready"]
    assert used.env.events == ["start"], "a reset started after the run ended"
    assert not any(s.env.torn_down for s in handed)


def test_detach_leaves_out_a_pair_kept_for_inspection() -> None:
    pool, _, _ = _pool(capacity=2)
    slot = pool.acquire()
    slot.env.kept = True
    pool.release(slot)
    assert pool.detach(timeout=1) == []


class FakeKept:
    """What PoolProvisioner._leave needs of a KeptPool."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.idle = 600.0
        self.left: list[tuple[Any, bool, int]] = []
        self.lines: list[str] = []
        self.closed = False

    def leave(self, pair: Any, *, clean: bool, uses: int, hold: bool = False) -> None:
        self.left.append((pair, clean, uses) if not hold else (pair, "held", uses))

    def close(self) -> None:
        self.closed = True

    def say(self, line: str) -> None:
        self.lines.append(line)


def test_the_run_keeps_at_most_the_cap_ready_pairs_first_and_removes_the_rest() -> None:
    pool, jobs, _ = _pool(capacity=3)
    slots = [pool.acquire() for _ in range(3)]
    pool.release(slots[0])
    jobs.run_all()  # reset: ready
    pool.release(slots[1])
    pool.release(slots[2])  # their resets are queued: they will stay dirty
    kept = FakeKept(cap=2)
    settlers: list[list[str]] = []

    def settle(_: Any, waiting: list[str], target: int) -> bool:
        settlers.append(waiting)
        return True

    leaving = threading.Thread(target=PoolProvisioner._leave, args=(kept, pool, settle))
    leaving.start()
    while not pool._stopping_now():
        threading.Event().wait(0.01)
    jobs.run_all()
    leaving.join(10)
    assert [(pair, clean) for pair, clean, _ in kept.left] == [
        (slots[0].env, True),
        (slots[1].env, False),
    ]
    assert slots[2].env.torn_down and kept.closed
    assert settlers == [[]], "one settler, for the dirty pair; no reset of this run to wait for"
    assert kept.lines == [
        "pool: kept 2 pair(s) for the next run (1 being reset in the background), removed "
        "after 10 min without one (`nocrud pool stop` removes them now)"
    ]


# ---------------------------------------------------------------------- the key


class FakeImages:
    def __init__(self, ids: dict[str, str]) -> None:
        self.ids = ids

    def get(self, ref: str) -> Any:
        return SimpleNamespace(id=self.ids[ref])


def _run(tmp_path: Path, ids: dict[str, str], **run: Any) -> Any:
    data = {"project": "shop", "app": {"image": "shop:1", "port": 8000, "env": run.pop("env", {})}}
    (tmp_path / "flows").mkdir(exist_ok=True)
    path = tmp_path / "nocrud.yaml"
    path.write_text(yaml.safe_dump(data))
    client = SimpleNamespace(images=FakeImages(ids), api=SimpleNamespace(base_url="unix://x"))
    return SimpleNamespace(
        config=load_config(path, env={}),
        engine=SimpleNamespace(client=client),
        images=SimpleNamespace(app="shop-app:1", db="shop-db:1"),
    )


def test_the_key_changes_with_either_image_and_the_apps_settings_only(tmp_path: Path) -> None:
    ids = {"shop-app:1": "sha256:a1", "shop-db:1": "sha256:d1"}
    key = pool_key(_run(tmp_path, ids))
    assert pool_key(_run(tmp_path, ids)) == key
    assert pool_key(_run(tmp_path, {**ids, "shop-app:1": "sha256:a2"})) != key
    assert pool_key(_run(tmp_path, {**ids, "shop-db:1": "sha256:d2"})) != key
    assert pool_key(_run(tmp_path, ids, env={"FEATURE": "on"})) != key
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    assert pool_key(_run(other_dir, ids)) != key, "two checkouts must not share a pool"


def test_the_key_changes_with_the_preloading_launcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept pair runs the launcher it started with: a new nocrud must not adopt it."""
    from nocrud.environment import preload

    ids = {"shop-app:1": "sha256:a1", "shop-db:1": "sha256:d1"}
    key = pool_key(_run(tmp_path, ids))
    monkeypatch.setattr(preload, "digest", lambda: "another-launcher")
    assert pool_key(_run(tmp_path, ids)) != key


# ---------------------------------------------------------------------- records and locks


def _record(root: Path, key: str, name: str, **data: Any) -> Path:
    directory = pool_dir(root) / key
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"name": name, "db": f"{name}-db", "app": f"{name}-app", **data}))
    return path


def test_a_held_lock_marks_its_pair_in_use_and_is_never_taken_twice(tmp_path: Path) -> None:
    path = _record(tmp_path, "k1", "p1", clean=True)
    held = _lock(path.with_suffix(".lock"))
    assert held is not None
    assert _lock(path.with_suffix(".lock")) is None, "a second holder got the same pair"
    [record] = read_pools(tmp_path)["k1"]
    assert record.in_use and record.clean and record.name == "p1"
    assert _forget_unlocked(path.parent) == 0 and path.exists()
    held.close()
    assert not read_pools(tmp_path)["k1"][0].in_use
    assert _forget_unlocked(path.parent) == 1 and not path.exists()


class FakeClient:
    """The calls stop_pools makes, recorded."""

    def __init__(self, keepers: dict[str, list[str]]) -> None:
        self.removed: list[str] = []
        self.keepers = keepers
        self.api = SimpleNamespace(
            remove_container=lambda ref, **_: self.removed.append(ref),
            remove_network=self.removed.append,
        )
        self.containers = SimpleNamespace(list=self._list)

    def _list(self, *, all: bool = False, filters: dict[str, str]) -> list[Any]:
        key = filters["label"].removeprefix(f"{LABEL_KEEPER}=")
        return [
            SimpleNamespace(remove=lambda name=name, **_: self.removed.append(name))
            for name in self.keepers.get(key, [])
        ]


def test_stop_removes_idle_pairs_and_their_keeper_but_leaves_a_pair_in_use(
    tmp_path: Path,
) -> None:
    _record(tmp_path, "old", "o1", network="o1-net")
    busy = _record(tmp_path, "new", "n1")
    _record(tmp_path, "new", "n2")
    held = _lock(busy.with_suffix(".lock"))
    client = FakeClient({"old": ["keeper-old"], "new": ["keeper-new"]})
    assert stop_pools(client, tmp_path) == (2, 1)
    assert set(client.removed) == {"o1-app", "o1-db", "o1-net", "keeper-old", "n2-app", "n2-db"}
    assert [r.name for r in read_pools(tmp_path)["new"]] == ["n1"]
    assert "old" not in read_pools(tmp_path)
    assert held is not None
    held.close()


# ---------------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("10m", 600.0), ("90s", 90.0), ("1.5h", 5400.0), (30, 30.0), (True, 600.0), (False, 0.0)],
)
def test_keep_pool_takes_an_idle_time(tmp_path: Path, written: object, seconds: float) -> None:
    path = tmp_path / "nocrud.yaml"
    (tmp_path / "flows").mkdir()
    data = {"project": "shop", "app": {"image": "shop:1"}, "run": {"keep_pool": written}}
    path.write_text(yaml.safe_dump(data))
    assert load_config(path, env={}).run.keep_pool == seconds
    assert load_config(path, env={"NOCRUD_KEEP_POOL": "0"}).run.keep_pool == 0


def test_a_bad_idle_time_names_the_key_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "nocrud.yaml"
    (tmp_path / "flows").mkdir()
    path.write_text(yaml.safe_dump({"project": "shop", "app": {"image": "shop:1"}}))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"NOCRUD_KEEP_POOL": "soon"})
    assert "run.keep_pool: 'soon' is not an idle time: use e.g. 10m, 90s or 1h" in str(info.value)


def test_records_of_a_pool_whose_keeper_expired_are_forgotten_others_kept(
    tmp_path: Path,
) -> None:
    _record(tmp_path, "gone", "g1")
    _record(tmp_path, "live", "l1")
    held = _record(tmp_path, "gone", "g2")
    lock = _lock(held.with_suffix(".lock"))  # a run still holds it: not forgotten
    assert expire(FakeClient({"live": ["keeper-live"]}), tmp_path) == 1
    pools = read_pools(tmp_path)
    assert [r.name for r in pools["live"]] == ["l1"]
    assert [r.name for r in pools["gone"]] == ["g2"]
    assert lock is not None
    lock.close()
    assert expire(FakeClient({"live": ["keeper-live"]}), tmp_path) == 1
    assert "gone" not in read_pools(tmp_path)


def test_kill_all_reaches_a_pair_being_rebuilt_so_an_interrupt_waits_for_no_boot() -> None:
    """A rebuild's new pair is in its slot while it boots: Ctrl-C kills it, close() is quick."""
    booting = threading.Event()
    started: list[FakeEnv] = []

    class SlowEnv(FakeEnv):
        def __init__(self) -> None:
            super().__init__()
            self.killed = threading.Event()

        def start(self) -> None:
            self.events.append("start")
            started.append(self)
            if len(started) > 1:  # the rebuild's pair boots until killed
                booting.set()
                if not self.killed.wait(10):
                    raise AssertionError("the booting pair was never killed")
                raise ProvisionError("killed while starting")

        def kill(self) -> None:
            super().kill()
            self.killed.set()

    pool = Pool(SlowEnv, capacity=1)  # background work on threads, as in a run
    slot = pool.acquire()
    slot.env.spoiled = True
    pool.release(slot)  # rebuilt in the background
    assert booting.wait(10)
    assert pool.kill_all() == 1
    started = time.monotonic()
    pool.close(timeout=30)
    assert time.monotonic() - started < 5, "close() waited for the boot"
