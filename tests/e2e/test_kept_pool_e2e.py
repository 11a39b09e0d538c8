"""Pairs kept between runs (``run.keep_pool``) through the real CLI.

A second run takes the first run's pairs, which the first run's settler reset after it
exited; a rebuild retires them; two runs at once never share one; a SIGKILLed owner
leaves nothing once the idle time is over; ``nocrud pool status``, ``pool stop`` and
``clean`` show and remove them.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from typing import Any

import pytest

from tests.conftest import write_flows

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

TWO = ("-j", "2", "-k", "isolation_01 or isolation_02")

#: Each flow writes a row, waits while the other run's flows do the same, and must still
#: see only its own: two runs sharing a pair at once could not both pass.
HOLDING_FLOWS = """
import time
from nocrud.flows import flow

for _i in range(2):
    def _make(i):
        @flow(name=f"holds_{i}")
        def holds(ctx):
            with ctx.db.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS mark (n int)")
                cur.execute("INSERT INTO mark VALUES (%s)", (i,))
            ctx.db.commit()
            time.sleep(4)
            with ctx.db.cursor() as cur:
                cur.execute("SELECT count(*) FROM mark")
                assert cur.fetchone() == (1,), "another flow's row is in this database"
        globals()[f"holds_{i}"] = holds
    _make(_i)
"""


def pool_containers(harness: Any) -> set[str]:
    labels = [f"nocrud.project={harness.project}", "nocrud.pool"]
    return {c["Id"] for c in harness.client.api.containers(all=True, filters={"label": labels})}


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return out


def took(out: str) -> int:
    found = re.search(r"pool: took (\d+) kept pair", out)
    return int(found.group(1)) if found else 0


def settled(harness: Any, timeout: float = 90) -> str:
    """``nocrud pool status`` once no kept pair is dirty or being settled."""
    deadline = time.monotonic() + timeout
    while True:
        status = ok(harness.run("pool", "status"))
        if not re.search(r"-pool\s+(dirty|settling)\s", status):
            return status
        assert time.monotonic() < deadline, f"the settler did not finish:\n{status}"
        time.sleep(0.5)


def test_a_second_run_takes_the_first_runs_pairs_and_pool_status_and_stop_show_them(
    harness: Any,
) -> None:
    # Every reset restarts the app (a boot): the last flow's pair is still being reset when
    # the run ends, so the run leaves it dirty to a settler instead of waiting.
    harness.config(run__strategy="pool", run__keep_pool="2m", run__pool_app_reload="restart")
    first = ok(harness.run("up", *TWO))
    left = re.search(r"pool: kept 2 pair\(s\) for the next run \((\d) being reset in the "
                     r"background\), removed after 2 min", first)  # fmt: skip
    assert left and int(left.group(1)) >= 1, first
    kept = pool_containers(harness)
    assert len(kept) == 4, kept  # two pairs of two containers, still running

    status = settled(harness)  # without another run
    assert "2 pair(s), idle, removed in" in status, status
    rows = [line for line in status.splitlines() if "-pool " in line]
    assert len(rows) == 2, status
    assert all(re.search(r"ready\s+1\s+\d+ MiB\s+\d+ MiB", row) for row in rows), status

    second = ok(harness.run("up", *TWO))
    assert "pool: took 2 kept pair(s) from earlier runs\n" in second, "some were not clean"
    assert "waiting up to" not in second, second
    assert pool_containers(harness) == kept, "the second run booted pairs of its own"

    stopped = ok(harness.run("pool", "stop"))
    assert "removed 2 kept pair(s)" in stopped
    assert harness.leftovers() == []
    assert "no kept pairs" in ok(harness.run("pool", "status"))


def test_a_rebuild_retires_the_old_pairs_and_clean_removes_the_new_ones(harness: Any) -> None:
    app = harness.copy_example_app()
    harness.config(run__strategy="pool", run__keep_pool="2m", app__build=str(app))
    ok(harness.run("up", *TWO))
    old = pool_containers(harness)
    assert len(old) == 4

    changed = app / "inventory" / "__init__.py"
    changed.write_text(changed.read_text() + "\n# a change\n")
    second = ok(harness.run("up", *TWO))
    assert "building app image" in second, second
    assert "pool: retired 2 kept pair(s) of an earlier build or settings" in second, second
    assert took(second) == 0, second
    new = pool_containers(harness)
    assert len(new) == 4 and not new & old, "a pair of the old build survived the rebuild"

    cleaned = ok(harness.run("clean"))
    assert "kept pool: removed 2 pair(s)" in cleaned, cleaned
    assert harness.leftovers() == []


def test_two_runs_at_once_never_share_a_pair(harness: Any) -> None:
    harness.config(
        run__strategy="pool",
        run__keep_pool="2m",
        flows__path=str(write_flows(harness.dir, HOLDING_FLOWS)),
    )
    ok(harness.run("up", "-j", "2"))  # two pairs kept for the runs below
    runs = [
        subprocess.Popen(
            [*harness.command, "up", "-j", "2"],
            cwd=harness.dir,
            env={**os.environ, "NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [run.communicate(timeout=300)[0] for run in runs]
    for run, out in zip(runs, outs, strict=True):
        assert run.returncode == 0, out
    # The two kept pairs went to one run, or were split; never to both.
    assert sum(took(out) for out in outs) <= 2, outs
    ok(harness.run("pool", "stop"))  # it waits for pairs being settled
    assert harness.leftovers() == []


def test_sigkill_of_the_pools_owner_leaves_nothing_after_its_idle_time(harness: Any) -> None:
    harness.config(run__strategy="pool", run__keep_pool="3s")
    # The killed run's own objects go with its reaper; the kept pairs with the pool's
    # keeper, 3 s after the run's connection to it dropped: all within 15 s.
    harness.sigkill_leaves_nothing(
        "-j", "2", role="db", count=2, timeout=300, waiting_for="the pool's pairs"
    )
