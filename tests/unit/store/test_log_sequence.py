"""The run log's line numbers under concurrent writers: every line kept, numbered 1..N once.

A run's log is written by several threads of one ``nocrud up`` (workers finishing flows,
the runner's own lines) and, for a console run, by two processes at once (``nocrud serve``
relaying output, the run's recorder). Two writers that read the same last number used to
insert the same ``(run_id, seq)`` and one of them failed with ``IntegrityError``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from nocrud.store import RunStatus, RunStore

WRITERS = 8
BATCHES = 25


def _hammer(stores: list[RunStore], run_id: str) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def write(n: int) -> None:
        store = stores[n % len(stores)]
        start.wait()
        try:
            for b in range(BATCHES):
                store.append_log(run_id, [f"w{n} b{b} l0", f"w{n} b{b} l1"])
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _check(store: RunStore, run_id: str) -> None:
    lines = store.log_lines(run_id, limit=10 * WRITERS * BATCHES)
    total = WRITERS * BATCHES * 2
    assert [seq for seq, _ in lines] == list(range(1, total + 1))
    assert len({line for _, line in lines}) == total
    # a batch's lines stay together and in order
    text = [line for _, line in lines]
    for i, line in enumerate(text):
        if line.endswith(" l0"):
            assert text[i + 1] == line[:-1] + "1"


def test_concurrent_writers_in_one_process_never_collide(tmp_path: Path) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'history.db'}")
    run_id, _ = store.create_run(project="demo", trigger="cli", status=RunStatus.RUNNING)
    errors = _hammer([store], run_id)
    assert errors == []
    _check(store, run_id)
    store.close()


def test_writers_through_separate_stores_never_collide(tmp_path: Path) -> None:
    """Two store objects on one file stand for two processes (serve and up) sharing a run."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    first = RunStore(url)
    second = RunStore(url, migrate=False)
    run_id, _ = first.create_run(project="demo", trigger="console", status=RunStatus.RUNNING)
    errors = _hammer([first, second], run_id)
    assert errors == []
    _check(first, run_id)
    first.close()
    second.close()
