"""A pid is judged only in the pid namespace that wrote it (issue 14, shared CI runners).

A job container on the host's network (GitLab ``network_mode = "host"``) has the host's
hostname but pids of its own: its start-up sweep judged a developer's live run on the
host, labelled ``<host>:<pid>:<start>``, by its own pids, found the pid missing and
removed the run's containers (seen in the CI-shape tests on the shared machine). Now a
host label outside the initial pid namespace carries the namespace, and a process that
owns its objects as its container judges no host label at all.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from nocrud.docker import cleanup


def _dead_pid() -> int:
    code = "import os; print(os.getpid())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(child.stdout)


@pytest.fixture
def fresh_host() -> Iterator[None]:
    cleanup._host.cache_clear()
    yield
    cleanup._host.cache_clear()


def test_on_the_host_a_dead_pid_of_this_host_is_gone(fresh_host: None) -> None:
    host = cleanup._host()
    assert cleanup.owner_is_gone(f"{host}:{_dead_pid()}:1")


def test_in_another_pid_namespace_the_hosts_pids_are_not_judged(
    fresh_host: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostname = cleanup._host().partition("/")[0]
    cleanup._host.cache_clear()
    # As if this process ran in a container's pid namespace with the host's hostname.
    monkeypatch.setattr(cleanup, "_INIT_PID_NAMESPACE", -1)
    assert cleanup._host().startswith(f"{hostname}/")
    assert cleanup.owner().startswith(f"{hostname}/")
    assert not cleanup.owner_is_gone(f"{hostname}:{_dead_pid()}:1")  # the host's: not ours
    assert cleanup.owner_is_gone(f"{cleanup._host()}:{_dead_pid()}:1")  # our namespace's


def test_a_process_owning_its_objects_as_its_container_judges_no_host_label(
    fresh_host: None,
) -> None:
    label = f"{cleanup._host()}:{_dead_pid()}:1"
    assert cleanup.owner_is_gone(label)
    cleanup.claim_container("a" * 64)
    try:
        assert not cleanup.owner_is_gone(label)
    finally:
        cleanup.claim_container(None)
