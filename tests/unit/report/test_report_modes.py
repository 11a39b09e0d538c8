"""Report files follow the umask like any file the user's tools write (issue 14 item 6).

``results.json`` is written through a temporary file (atomic replace); mkstemp makes
that 0600, which a CI artifact upload or a dashboard running as another user cannot
read. Both report files must get the mode a plain ``open()`` would give.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from nocrud.report import write_json, write_junit
from nocrud.results import FlowResult, RunResult, Status


@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _run() -> RunResult:
    return RunResult(
        run_id="r1",
        project="p",
        flows=(FlowResult(name="one", status=Status.PASSED),),
        started_at=0.0,
        wall_time=1.0,
        parallel=1,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_json_and_junit_reports_get_the_mode_of_the_umask(tmp_path: Path, umask: int) -> None:
    write_json(_run(), tmp_path / "results.json")
    write_junit(_run(), tmp_path / "report.xml")
    expected = 0o666 & ~umask
    assert oct(_mode(tmp_path / "results.json")) == oct(expected)
    assert oct(_mode(tmp_path / "report.xml")) == oct(expected)
    # The temporary file of the atomic replace is gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.xml", "results.json"]
