"""`nocrud up --report-to`: the RemoteRecorder against a real console served by uvicorn."""

from __future__ import annotations

import time
from pathlib import Path

from nocrud.results import FlowResult, RunResult, Status
from nocrud.store import RemoteRecorder, RunStart, RunStore


def test_a_cli_run_registers_and_streams_its_events(served: str, store: RunStore) -> None:
    said: list[str] = []
    recorder = RemoteRecorder(served, say=said.append)
    start = RunStart("demo", ("alpha", "beta"), 2, "image", "r-cli", "0.1.0", {"keyword": "a"})
    recorder.run_started(start)
    recorder.flow_started("alpha", 0)
    deadline = time.monotonic() + 10
    while not recorder.run_id or (store.get_run(recorder.run_id) or {}).get("status") != "running":
        assert time.monotonic() < deadline, said
        time.sleep(0.05)
    run_id = recorder.run_id
    live = store.get_run(run_id)
    assert live is not None and (live["trigger"], live["status"]) == ("remote", "running")
    flows = (FlowResult("alpha", Status.PASSED), FlowResult("beta", Status.FAILED, message="no"))
    for flow in flows:
        recorder.flow_finished(flow)
    recorder.run_finished(RunResult("r-cli", "demo", flows, time.time(), 4.0, 2), 1)
    recorder.close()
    run = store.get_run(run_id)
    assert run is not None
    assert (run["status"], run["passed"], run["failed"], run["nocrud_run_id"]) == (
        "failed",
        1,
        1,
        "r-cli",
    )
    assert said == []


def test_a_cli_run_is_recorded_under_its_own_id_when_the_console_has_none_such(
    served: str, store: RunStore
) -> None:
    said: list[str] = []
    recorder = RemoteRecorder(served, say=said.append)
    recorder.run_started(RunStart("demo", ("alpha",), 1, "image", "a11a210f18", "0.1.0", {}))
    recorder.flow_started("alpha", 0)
    recorder.close()
    assert recorder.run_id == "a11a210f18", said
    run = store.get_run("a11a210f18")
    assert run is not None and run["nocrud_run_id"] == "a11a210f18"
    # The same id again (another store's run that reports here) gets a new one, not the first.
    second = RemoteRecorder(served, say=said.append)
    second.run_started(RunStart("demo", ("alpha",), 1, "image", "a11a210f18", "0.1.0", {}))
    second.flow_started("alpha", 0)
    second.close()
    assert second.run_id not in ("", "a11a210f18")
    assert said == []


def test_a_pytest_run_with_nocrud_report_to_streams_its_tests(
    served: str, store: RunStore, tmp_path: Path
) -> None:
    # The plugin's unit project: a fake provisioner at the seam, a real pytest process.
    from tests.unit.testing.test_plugin import CONFTEST, NOCRUD_YAML, RECORDED_SUITE, run_pytest

    project = tmp_path / "pytest-project"
    (project / "flows").mkdir(parents=True)
    (project / "conftest.py").write_text(CONFTEST)
    (project / "nocrud.yaml").write_text(NOCRUD_YAML)
    (project / "test_rec.py").write_text(RECORDED_SUITE)

    proc = run_pytest(project, "--nocrud-report-to", served, "--nocrud-no-record")

    assert proc.returncode == 1, proc.stdout + proc.stderr
    runs, _ = store.list_runs()
    [run] = [r for r in runs if r["project"] == "shop"]
    assert (run["status"], run["passed"], run["failed"]) == ("failed", 1, 1)
    names = sorted(f["name"] for f in store.run_flows(str(run["id"])))
    assert names == ["test_rec.py::test_missing", "test_rec.py::test_ok"]
    assert not (project / ".nocrud" / "history.db").exists()  # --nocrud-no-record
