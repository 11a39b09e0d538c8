"""A project's pool kept between runs (``run.keep_pool``): pairs that outlive the run.

With ``run.keep_pool`` set, the ``pool`` strategy does not remove its pairs at the end of
a run: it leaves them reset (or dirty, for the settler of :mod:`nocrud.environment.settle`
to reset after the run) for the next run on the same machine and Docker host (``nocrud
up``, the pytest plugin, ``nocrud watch``), which takes them over instead of booting new
ones. What makes that safe:

- **Keyed by build.** A pool's key hashes the app and database image ids, the app and
  database settings and the Docker host. A rebuild gives a new key, so a run never gets
  a pair of another build; the old key's idle pairs are retired by the next run.
- **One run per pair.** Each pair has a record (its containers, network and passwords,
  ``.nocrud/pool/<key>/<pair>.json``, readable by its owner only) and a lock file. A run
  holds the pair's ``flock`` from taking it to leaving it, so two runs at once never
  share one; a run that dies, however, releases its locks with its process.
- **An owner that outlives the run, and a deadline.** Each pool has a *keeper*: a
  reaper container (the same Ryuk-protocol image as the run's reaper) started with an
  idle time as its reconnection timeout. Every run using the pool holds a connection to
  it. When the last one drops (the run ended, or was SIGKILLed), the keeper waits the
  idle time, then removes every object labelled with the pool's key, and itself. The
  pairs name the keeper as their owner, so the startup sweep and ``nocrud clean`` spare
  them while it runs and remove them once it is gone. So a SIGKILLed run's pairs are
  removed at the idle deadline (or taken, dirty, by the next run, which resets them).
- **Bounded.** At most ``run.keep_pool_max`` pairs are kept; ``nocrud pool status`` shows
  each one's memory, ``nocrud pool stop`` and ``nocrud clean`` remove the pool now.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nocrud.docker import cleanup
from nocrud.docker.reaper import LABEL_RYUK, RYUK_PORT, ReaperError, find_reaper_image, register
from nocrud.docker.resources import Container, DaemonGate, image_id
from nocrud.environment import ProvisionError, Run, preload
from nocrud.environment.pair import Pair
from nocrud.errors import one_line

__all__ = [
    "LABEL_KEEPER",
    "LABEL_POOL",
    "SETTLE_LOCK",
    "SETTLE_LOG",
    "KeptPair",
    "KeptPool",
    "PairRecord",
    "expire",
    "hold_settle_lock",
    "pool_dir",
    "pool_key",
    "read_pools",
    "settler_running",
    "stop_pools",
]

#: The pool's key, on every kept pair's containers and network.
LABEL_POOL = "nocrud.pool"
#: The pool's key, on its keeper (which must not match its own filter).
LABEL_KEEPER = "nocrud.pool-keeper"
#: How long a run waits for a keeper that is removing an expired pool to go.
KEEPER_GONE_TIMEOUT = 30.0
#: How long ``nocrud pool stop`` and ``clean`` wait for a pair being settled (about a boot).
SETTLING_WAIT = 30.0
#: What the settler of a pool says, in its directory (see :mod:`nocrud.environment.settle`).
SETTLE_LOG = "settle.log"
#: Held by a pool's settler while it runs (one at a time per pool).
SETTLE_LOCK = "settle.lock"


def pool_dir(root: Path) -> Path:
    """Where a project's kept pools keep their records (``.nocrud/pool``)."""
    return root / ".nocrud" / "pool"


def pool_key(run: Run) -> str:
    """The key of the pool this run's pairs belong to: its project, builds, settings, the
    preloading launcher its pairs run, and the Docker host."""
    client = run.engine.client
    config = run.config
    parts = [
        config.project,
        str(config.root),
        image_id(client, run.images.app) or run.images.app,
        image_id(client, run.images.db) or run.images.db,
        config.app.model_dump_json(),
        config.database.model_dump_json(),
        config.timeouts.model_dump_json(),
        config.run.pool_app_reload,
        preload.digest(),
        str(getattr(client.api, "base_url", "")),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------- records and locks


@dataclass
class PairRecord:
    """One kept pair as its record file says, and whether a run holds it now."""

    path: Path
    data: dict[str, Any]
    in_use: bool

    @property
    def name(self) -> str:
        return str(self.data.get("name", self.path.stem))

    @property
    def clean(self) -> bool:
        return bool(self.data.get("clean"))

    @property
    def state(self) -> str:
        """``ready``, ``dirty``, ``settling`` (its settler resets it) or ``in use`` (a run)."""
        if self.in_use:
            return "settling" if self.data.get("settling") else "in use"
        return "ready" if self.clean else "dirty"


def _lock(path: Path) -> IO[str] | None:
    """The pair's lock, held by this process; None when another process holds it."""
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out)
    tmp.replace(path)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def settler_running(key_dir: Path) -> bool:
    """A settler works on the pool in ``key_dir`` now (it holds the pool's settle lock)."""
    if not (key_dir / SETTLE_LOCK).exists():
        return False
    lock = _lock(key_dir / SETTLE_LOCK)
    if lock is not None:
        lock.close()
    return lock is None


def hold_settle_lock(key_dir: Path, *, wait: bool = True) -> IO[str] | None:
    """The pool's settle lock; without ``wait``, None when another settler holds it."""
    if not wait:
        return _lock(key_dir / SETTLE_LOCK)
    handle = (key_dir / SETTLE_LOCK).open("a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def read_pools(root: Path) -> dict[str, list[PairRecord]]:
    """Every kept pool of a project on this machine: key -> its pairs' records."""
    pools: dict[str, list[PairRecord]] = {}
    base = pool_dir(root)
    if not base.is_dir():
        return pools
    for key_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        records = []
        for path in sorted(key_dir.glob("*.json")):
            if path.name == "pool.json":
                continue
            data = _read(path)
            if data is None:
                continue
            lock = _lock(path.with_suffix(".lock"))
            if lock is not None:
                lock.close()
            records.append(PairRecord(path, data, in_use=lock is None))
        pools[key_dir.name] = records
    return pools


# ---------------------------------------------------------------------- the pairs


class KeptPair(Pair):
    """A pool pair with a record: written when it starts, removed when it is torn down."""

    keeper: KeptPool | None = None
    _lock_handle: IO[str] | None = None

    def start(self) -> None:
        super().start()
        if self.keeper is not None:
            self.keeper.claim(self)

    def teardown(self) -> None:
        super().teardown()
        if self.keeper is not None:
            self.keeper.forget(self)


class KeptPool:
    """The kept pool this run uses: its keeper connection, and the records of its pairs.

    Args:
        run: The run.
        gate: The run's bound on concurrent daemon operations.
        say: Prints one line for the user.
    """

    def __init__(self, run: Run, gate: DaemonGate, say: Callable[[str], None]) -> None:
        self.run = run
        self.gate = gate
        self.say = say
        self.key = pool_key(run)
        self.idle = run.config.run.keep_pool
        self.cap = run.config.run.keep_pool_max
        self.dir = pool_dir(run.config.root) / self.key
        self.labels: dict[str, str] = {}
        self._socket: socket.socket | None = None
        self._keeper_id = ""

    # ------------------------------------------------------------------ opening and closing

    def open(self) -> bool:
        """Connect to the pool's keeper, starting one if there is none. False: cannot keep."""
        client = self.run.engine.client
        image = find_reaper_image(client, self.say, None)
        if image is None:
            self.say("pool: run.keep_pool needs a reaper image to bound a kept pool: not kept")
            return False
        try:
            self._keeper_id, self._socket, new = self._connect(image)
        except Exception as exc:  # noqa: BLE001 - a pool that cannot be kept is an ordinary one
            self.say(f"pool: could not start the kept pool's keeper ({one_line(exc)}): not kept")
            return False
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if new:  # an expired keeper took its pairs with it: their records are stale
            _forget_unlocked(self.dir)
        _write(
            self.dir / "pool.json",
            {
                "key": self.key,
                "idle": self.idle,
                "app_image": self.run.images.app,
                "db_image": self.run.images.db,
                "keeper": self._keeper_id,
            },
        )
        self._label()
        return True

    def attach(self) -> bool:
        """Use the pool another process opened, as long as its keeper runs (the settler)."""
        keepers = self.run.engine.client.containers.list(
            filters={"label": f"{LABEL_KEEPER}={self.key}"}
        )
        meta = _read(self.dir / "pool.json") or {}
        if not keepers or keepers[0].id != meta.get("keeper"):
            return False
        self._keeper_id = keepers[0].id
        self._label()
        return True

    def _label(self) -> None:
        self.labels = {
            cleanup.LABEL_RUN: f"pool-{self.key}",
            cleanup.LABEL_OWNER: f"{cleanup.CONTAINER_OWNER}{self._keeper_id}:",
            cleanup.LABEL_PROJECT: self.run.config.project,
            cleanup.LABEL_ROLE: "pool",
            LABEL_POOL: self.key,
        }

    @property
    def connection(self) -> socket.socket | None:
        """This run's connection to the keeper (the settler inherits it), or None."""
        return self._socket

    def close(self) -> None:
        """Drop the keeper connection: its idle time starts when the last run has done so."""
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _connect(self, image: str) -> tuple[str, socket.socket, bool]:
        """The keeper's container id, this run's connection to it, and whether it is new."""
        import docker.errors

        client = self.run.engine.client
        link = self.run.engine.connection
        line = {LABEL_POOL: self.key}
        for _ in range(3):
            found = client.containers.list(filters={"label": f"{LABEL_KEEPER}={self.key}"})
            new = not found
            if not found:
                keeper = Container(
                    client,
                    image,
                    what="pool keeper",
                    name=f"nocrud-pool-{self.key}",
                    labels={
                        LABEL_RYUK: "true",
                        LABEL_KEEPER: self.key,
                        cleanup.LABEL_PROJECT: self.run.config.project,
                    },
                    network="bridge" if link.uses_published_ports else None,
                    ports=link.ports(RYUK_PORT),
                    volumes={_socket_path(): {"bind": "/var/run/docker.sock", "mode": "rw"}},
                    environment={"RYUK_RECONNECTION_TIMEOUT": f"{self.idle:g}s"},
                    auto_remove=True,
                )
                try:
                    keeper.start()
                except docker.errors.APIError as exc:
                    if exc.status_code == 409:  # another run started it a moment ago
                        continue
                    raise
                found = [keeper.obj]
            container = found[0]
            try:
                container.reload()
                networks = container.attrs["NetworkSettings"].get("Networks") or {"bridge": {}}
                host, port = link.address(container, RYUK_PORT, next(iter(networks)))
                return container.id, register(host, port, line), new
            except (ReaperError, OSError, LookupError, docker.errors.NotFound):
                # An expired keeper stops listening while it removes the old pool: wait for
                # it to go, then start a new one.
                _wait_gone(container, KEEPER_GONE_TIMEOUT)
        raise ProvisionError("the kept pool's keeper answered neither as running nor as gone")

    # ------------------------------------------------------------------ pairs

    def make(self, name: str) -> KeptPair:
        """A new pair of this pool (started by the pool; recorded once it runs)."""
        pair = KeptPair(self.run, name, self.labels, gate=self.gate, bridge=None, resettable=True)
        pair.keeper = self
        return pair

    def claim(self, pair: KeptPair) -> None:
        """Record a pair this run started, and hold its lock while the run uses it."""
        lock = _lock(self.dir / f"{pair.name}.lock")
        if lock is None:  # a name is never reused: nobody else can hold it
            raise ProvisionError(f"kept pair {pair.name} is locked by another process")
        pair._lock_handle = lock
        _write(self.dir / f"{pair.name}.json", {**pair.export(), "clean": False, "uses": 0})

    def forget(self, pair: KeptPair) -> None:
        """A torn-down pair's record goes, and its lock with it."""
        with contextlib.suppress(OSError):
            (self.dir / f"{pair.name}.json").unlink()
        with contextlib.suppress(OSError):
            (self.dir / f"{pair.name}.lock").unlink()
        self._unlock(pair)

    def leave(self, pair: Pair, *, clean: bool, uses: int, hold: bool = False) -> None:
        """Hand a pair over to the next run: record its state, then release its lock.

        With ``hold`` the lock stays while this process still resets the pair: the record
        says it is being settled, which the next run waits for.
        """
        settling = os.getpid() if hold else 0
        _write(
            self.dir / f"{pair.name}.json",
            {
                **pair.export(),
                "clean": clean,
                "uses": uses,
                "left_at": time.time(),
                "settling": settling,
            },
        )
        if not hold:
            self._unlock(pair)

    def adopt(self, limit: int) -> Iterator[tuple[KeptPair, bool, int]]:
        """Take over up to ``limit`` pairs other runs left: (pair, clean, uses) each."""
        taken = 0
        for path in self.records():
            if taken >= limit:
                return
            got = self.take(path)
            if got is not None:
                taken += 1
                yield got

    def records(self) -> list[Path]:
        """The record files of this pool's pairs."""
        return sorted(p for p in self.dir.glob("*.json") if p.name != "pool.json")

    def take(self, path: Path, *, dirty_only: bool = False) -> tuple[KeptPair, bool, int] | None:
        """Take over one kept pair, its lock held from now on: (pair, clean, uses).

        None when another process holds it, when its record is gone (``nocrud pool
        stop``), or clean under ``dirty_only`` (the settler's case). A pair whose
        containers are gone loses its record (what is left of it goes with the keeper,
        or the next sweep). Until it is left again the record says dirty, so a crash
        leaves it for the next run to reset.
        """
        lock = _lock(path.with_suffix(".lock"))
        if lock is None:
            return None
        data = _read(path) or {}
        if not path.exists() or (dirty_only and data.get("clean")):
            lock.close()
            return None
        try:
            pair = KeptPair.adopt(self.run, self.labels, self.gate, data)
        except (ProvisionError, KeyError) as exc:
            why = one_line(exc) if data else "its record is unreadable"
            self.say(f"pool: kept pair {path.stem} dropped ({why})")
            with contextlib.suppress(OSError):
                path.unlink()
            lock.close()
            return None
        pair.keeper = self
        pair._lock_handle = lock
        # Whoever holds it now says so: a settler (see nocrud.environment.settle), or a run.
        _write(path, {**data, "clean": False, "settling": os.getpid() if dirty_only else 0})
        return pair, bool(data.get("clean")), int(data.get("uses", 0))

    def retire_stale(self) -> int:
        """Remove the idle pairs of this project's other keys (older builds or settings)."""
        retired = 0
        client = self.run.engine.client
        for key, records in read_pools(self.run.config.root).items():
            if key == self.key:
                continue
            retired += _remove_idle(client, key, records)[0]
        return retired

    @staticmethod
    def _unlock(pair: Pair) -> None:
        if isinstance(pair, KeptPair):
            handle, pair._lock_handle = pair._lock_handle, None
            if handle is not None:
                handle.close()


# ---------------------------------------------------------------------- stopping pools


def stop_pools(client: Any, root: Path, *, wait: float = SETTLING_WAIT) -> tuple[int, int]:
    """Remove a project's kept pools now (``nocrud pool stop``, ``nocrud clean``).

    Pairs a run holds are left to it; a pool's settler (it resets and starts pairs after
    a run) is waited for, up to ``wait`` seconds. Returns (pairs removed, pairs left in use).
    """
    removed = in_use = 0
    deadline = time.monotonic() + wait
    for key in read_pools(root):
        while settler_running(pool_dir(root) / key) and time.monotonic() < deadline:
            time.sleep(0.1)
        records = read_pools(root).get(key, [])
        gone, held = _remove_idle(client, key, records, wait=max(0.0, deadline - time.monotonic()))
        removed += gone
        in_use += held
    return removed, in_use


def _remove_idle(
    client: Any, key: str, records: list[PairRecord], *, wait: float = 0.0
) -> tuple[int, int]:
    """Remove a pool's pairs no run holds, its keeper too once none is: (removed, held)."""
    removed = held = 0
    deadline = time.monotonic() + wait
    for record in records:
        lock = _lock(record.path.with_suffix(".lock"))
        while lock is None and record.state == "settling" and time.monotonic() < deadline:
            time.sleep(0.1)
            lock = _lock(record.path.with_suffix(".lock"))
        if lock is None:
            held += 1
            continue
        try:
            _remove_objects(client, record.data)
            with contextlib.suppress(OSError):
                record.path.unlink()
            with contextlib.suppress(OSError):
                record.path.with_suffix(".lock").unlink()
            removed += 1
        finally:
            lock.close()
    key_dir = records[0].path.parent if records else None
    if not held:
        for keeper in client.containers.list(all=True, filters={"label": f"{LABEL_KEEPER}={key}"}):
            cleanup.ignore_gone(keeper.remove, force=True)
        if key_dir is not None:
            _remove_dir(key_dir)
    return removed, held


def expire(client: Any, root: Path) -> int:
    """Forget the records of pools whose keeper is gone (it removed their pairs); how many."""
    forgotten = 0
    for key in read_pools(root):
        if client.containers.list(filters={"label": f"{LABEL_KEEPER}={key}"}):
            continue
        key_dir = pool_dir(root) / key
        forgotten += _forget_unlocked(key_dir)
        if not any(p.name != "pool.json" for p in key_dir.glob("*.json")):
            _remove_dir(key_dir)
    return forgotten


def _remove_dir(key_dir: Path) -> None:
    """A pool's directory, once its records are gone (not while a run's lock file is there)."""
    for name in ("pool.json", SETTLE_LOG, SETTLE_LOCK):
        (key_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        key_dir.rmdir()


def _forget_unlocked(key_dir: Path) -> int:
    """Remove the records (and lock files) no process holds in ``key_dir``; how many."""
    forgotten = 0
    for path in key_dir.glob("*.json"):
        if path.name == "pool.json":
            continue
        lock = _lock(path.with_suffix(".lock"))
        if lock is None:
            continue
        try:
            path.unlink(missing_ok=True)
            path.with_suffix(".lock").unlink(missing_ok=True)
            forgotten += 1
        finally:
            lock.close()
    return forgotten


def _remove_objects(client: Any, data: dict[str, Any]) -> None:
    for ref in (data.get("app"), data.get("db")):
        if ref:
            with contextlib.suppress(Exception):
                cleanup.ignore_gone(client.api.remove_container, ref, force=True, v=True)
    if data.get("network"):
        with contextlib.suppress(Exception):
            cleanup.ignore_gone(client.api.remove_network, data["network"])


def _wait_gone(container: Any, timeout: float) -> None:
    with contextlib.suppress(Exception):
        container.wait(timeout=timeout, condition="removed")


def _socket_path() -> str:
    from testcontainers.core.config import testcontainers_config as tc

    return str(tc.ryuk_docker_socket)
