"""Runs started outside the console: shown once, and cancelled from it.

A ``nocrud up`` that records into the console's own store and also reports to it
(``--report-to``) is one run, not two. Cancel reaches a run the console did not start:
through the store it records into (the run polls it), or through the answers of the
console it reports to; and a run whose process is gone is over at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nocrud.cli._record import ConsoleCancel
from nocrud.console.settings import ConsoleSettings
from nocrud.results import FlowResult, RunResult, Status
from nocrud.store import (
    Fanout,
    RemoteRecorder,
    RunStart,
    RunStatus,
    RunStore,
    StoreRecorder,
    StoreSettings,
    recorder_for,
)


def _start() -> RunStart:
    return RunStart("demo", ("alpha", "beta"), 2, "image", "", "0.1.0", {"keyword": "a"})


def _until(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def _play(recorder: Any) -> None:
    """A whole run, as ``nocrud up`` feeds its recorders."""
    recorder.run_started(_start())
    recorder.flow_started("alpha", 1)
    recorder.flow_started("beta", 2)
    flows = (FlowResult("alpha", Status.PASSED), FlowResult("beta", Status.FAILED, message="no"))
    for flow in flows:
        recorder.flow_finished(flow)
    recorder.log(["a line of the run's own"])
    recorder.run_finished(RunResult("", "demo", flows, time.time(), 3.0, 2), 1)
    recorder.close()


def test_a_cli_run_recording_into_the_consoles_store_and_reporting_to_it_shows_once(
    served: str, settings: ConsoleSettings, store: RunStore
) -> None:
    said: list[str] = []
    recorder = recorder_for(
        StoreSettings(settings.store_url), report_to=served, say=said.append, env={}
    )
    assert isinstance(recorder, Fanout)
    local, remote = recorder.recorders
    assert isinstance(local, StoreRecorder) and isinstance(remote, RemoteRecorder)
    recorder.run_started(_start())
    # The console knows the run from the store it shares: one run, the CLI's.
    _until(lambda: remote.run_id, "the run to register")
    assert remote.run_id == local.run_id and remote.shared_store
    recorder.flow_started("alpha", 1)
    recorder.flow_started("beta", 2)
    flows = (FlowResult("alpha", Status.PASSED), FlowResult("beta", Status.FAILED, message="no"))
    for flow in flows:
        recorder.flow_finished(flow)
    recorder.run_finished(RunResult("", "demo", flows, time.time(), 3.0, 2), 1)
    recorder.close()

    runs, total = store.list_runs()
    assert total == 1, runs
    assert (runs[0]["trigger"], runs[0]["status"], runs[0]["passed"], runs[0]["failed"]) == (
        "cli",
        "failed",
        1,
        1,
    )
    log = [line for _, line in store.log_lines(local.run_id)]
    assert len(log) == len(set(log)) == 4, log  # every line once: no event applied twice
    assert said == []


def test_a_cli_run_recording_elsewhere_shows_in_each_store_once(
    served: str, store: RunStore, tmp_path: Path
) -> None:
    own = StoreSettings(f"sqlite:///{tmp_path / 'laptop' / 'history.db'}")
    recorder = recorder_for(own, report_to=served, say=print, env={})
    _play(recorder)
    laptop = RunStore(own.url)
    (mine,), _ = laptop.list_runs()
    (reported,), _ = store.list_runs()
    assert (mine["trigger"], reported["trigger"]) == ("cli", "remote")
    assert mine["status"] == reported["status"] == "failed"
    # Two stores, two rows, one id: the run is found under the same id in both.
    assert reported["id"] == mine["id"]
    laptop.close()


def test_naming_a_run_without_its_token_gets_a_run_of_its_own(
    client: TestClient, store: RunStore
) -> None:
    theirs, token = store.create_run(project="demo", trigger="cli", status=RunStatus.RUNNING)
    bare = TestClient(client.app)
    claim = bare.post("/api/reports", json={"project": "demo", "run_id": theirs, "token": "guess"})
    assert claim.status_code == 201, claim.text
    assert claim.json()["run_id"] != theirs and claim.json()["recorded"] is False
    same = bare.post("/api/reports", json={"project": "demo", "run_id": theirs, "token": token})
    assert same.json()["run_id"] == theirs and same.json()["recorded"] is True
    assert store.list_runs()[1] == 2  # the guess got a new run; the owner got its own back


def test_cancel_reaches_a_cli_run_through_the_store_it_records_into(
    client: TestClient, store: RunStore
) -> None:
    heard: list[str] = []
    recorder = StoreRecorder(store, say=print, on_cancel=heard.append, poll=0.1)
    recorder.run_started(_start())
    run_id = recorder.run_id
    state = client.get(f"/api/runs/{run_id}").json()
    assert state["cancellable"] and state["run"]["trigger"] == "cli"
    asked = client.post(f"/api/runs/{run_id}/cancel")
    assert asked.status_code == 202, asked.text
    assert "asked to stop" in asked.json()["detail"]
    assert not client.get(f"/api/runs/{run_id}").json()["cancellable"]  # asked once
    page = client.get(f"/runs/{run_id}").text
    assert "cancel requested" in page and '<button id="cancel" class="danger" hidden>' in page
    _until(lambda: heard, "the run to hear the cancel", timeout=5)
    assert heard == [f"the console (run {run_id})"]
    # It stops like Ctrl-C (exit 130) and says it was cancelled.
    recorder.run_finished(None, 130, "cancelled from the console", cancelled=True)
    recorder.close()
    run = store.get_run(run_id)
    assert run is not None and (run["status"], run["exit_code"]) == ("cancelled", 130)
    log = [line for _, line in store.log_lines(run_id)]
    assert any("cancel requested" in line for line in log), log
    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 409  # over


def test_cancel_reaches_a_run_reporting_from_elsewhere(served: str, store: RunStore) -> None:
    import requests

    heard: list[str] = []
    recorder = RemoteRecorder(served, say=print, on_cancel=heard.append)
    recorder.heartbeat = 0.2
    recorder.run_started(_start())
    run_id = _until(lambda: recorder.run_id, "the run to register")
    session = requests.Session()
    csrf = session.get(f"{served}/api/csrf").json()["token"]
    asked = session.post(f"{served}/api/runs/{run_id}/cancel", headers={"X-CSRF-Token": csrf})
    assert asked.status_code == 202, asked.text
    _until(lambda: heard, "the run to hear the cancel from its console's answers", timeout=5)
    assert heard == [f"the console at {served}"]
    recorder.run_finished(None, 130, "cancelled from the console", cancelled=True)
    recorder.close()
    run = store.get_run(run_id)
    assert run is not None and (run["status"], run["trigger"]) == ("cancelled", "remote")


def test_a_run_that_ended_before_it_heard_keeps_its_verdict(
    client: TestClient, store: RunStore
) -> None:
    recorder = StoreRecorder(store, say=print)
    recorder.run_started(_start())
    store.request_cancel(recorder.run_id)
    recorder.run_finished(None, 0, cancelled=False)
    recorder.close()
    run = store.get_run(recorder.run_id)
    assert run is not None and run["status"] == "passed"


def test_cancelling_a_cli_run_whose_process_is_gone_ends_it_at_once(
    client: TestClient, store: RunStore
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run_id, _ = store.create_run(
        project="demo",
        trigger="cli",
        status=RunStatus.RUNNING,
        owner=f"{socket.gethostname()}:{gone.pid}",
    )
    asked = client.post(f"/api/runs/{run_id}/cancel")
    assert asked.status_code == 202 and "its process was gone" in asked.json()["detail"]
    run = store.get_run(run_id)
    assert run is not None and run["status"] == "cancelled"


@pytest.fixture
def sigint_heard() -> Iterator[threading.Event]:
    heard = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: heard.set())
    yield heard
    signal.signal(signal.SIGINT, previous)


def test_console_cancel_stops_this_process_like_ctrl_c(sigint_heard: threading.Event) -> None:
    said: list[str] = []
    cancel = ConsoleCancel(said.append, poll=0.05)
    cancel("the console (run r1)")
    cancel("the console at http://x")  # heard twice (store and console): one stop
    _until(sigint_heard.is_set, "SIGINT", timeout=5)
    assert cancel.requested.is_set()
    assert said == ["\ncancelled by the console (run r1): stopping like Ctrl-C"]


def test_console_cancel_waits_for_a_handler_when_sigint_is_ignored() -> None:
    # A background job of a shell script starts with SIGINT ignored; the workflow installs
    # its own handler when flows start, and only then is the signal sent.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    heard = threading.Event()
    try:
        cancel = ConsoleCancel(lambda _line: None, poll=0.05)
        cancel("the console")
        time.sleep(0.3)
        assert not heard.is_set()
        signal.signal(signal.SIGINT, lambda *_: heard.set())
        _until(heard.is_set, "SIGINT once a handler is in place", timeout=5)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_after_the_run_a_late_cancel_sends_nothing() -> None:
    cancel = ConsoleCancel(lambda _line: None, poll=0.05)
    cancel.over.set()
    cancel("the console")
    assert not cancel.requested.is_set()
    assert os.getpid() > 0  # still here


def test_a_ci_shard_records_only_its_own_flows(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nocrud.cli._record import recording
    from nocrud.config import load_config
    from nocrud.sharding import Shard, select_shard
    from nocrud.workflow import UpOptions, collect

    monkeypatch.delenv("NOCRUD_REPORT_RUN", raising=False)
    config = load_config(project_dir / "nocrud.yaml", env={})
    options = UpOptions(shard=Shard(2, 2), durations=(project_dir / "none.json",))
    mine = [f.name for f in select_shard(collect(config, options), Shard(2, 2), {})]
    assert len(mine) == 1  # of the two flows
    with recording(
        config,
        options,
        record=True,
        report_to=None,
        results=project_dir / "results.json",
        selection={"shard": "2/2"},
        say=print,
    ) as (bracket, _listener):
        bracket.exit_code = 0
    store = RunStore(config.store_url)
    (run,), _ = store.list_runs()
    assert [f["name"] for f in store.run_flows(run["id"])] == mine
    assert run["selection"] == {"shard": "2/2"} and run["total"] == 1
    store.close()
