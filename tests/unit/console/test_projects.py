"""Two projects sharing one store (two configs in one directory): each console sees its own."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from nocrud.console.app import create_app
from nocrud.console.settings import ConsoleSettings
from nocrud.results import FlowResult, RunResult, Status
from nocrud.store import RunStatus, RunStore


def _record(store: RunStore, project: str, status: Status) -> str:
    run_id, _ = store.create_run(project=project, trigger="cli", status=RunStatus.RUNNING)
    store.start_run(run_id, flow_names=["alpha"])
    flow = FlowResult("alpha", status)
    store.flow_finished(run_id, flow)
    result = RunResult(run_id, project, (flow,), 0.0, 1.0, 1)
    code = 0 if status is Status.PASSED else 1
    done = RunStatus.PASSED if code == 0 else RunStatus.FAILED
    store.finish_run(run_id, status=done, result=result, exit_code=code)
    return run_id


def test_a_console_shows_its_projects_runs_and_history_only(
    make_settings: Callable[..., ConsoleSettings], store: RunStore
) -> None:
    mine = _record(store, "demo", Status.PASSED)
    theirs = _record(store, "shop", Status.FAILED)
    latest = _record(store, "demo", Status.FAILED)
    with TestClient(create_app(make_settings(), store=store)) as client:
        listed = client.get("/api/runs").json()
        assert [r["id"] for r in listed["runs"]] == [latest, mine] and listed["total"] == 2
        assert {r["status"] for r in client.get("/api/flows/alpha").json()["results"]} == {
            "passed",
            "failed",
        }
        assert len(client.get("/api/flows/alpha").json()["results"]) == 2
        other = client.get(f"/api/runs/{theirs}")
        assert other.status_code == 404
        assert "project 'shop'" in other.text and "--all-projects" in other.text
        assert client.get(f"/runs/{theirs}").status_code == 404
        page = client.get("/").text
        assert mine in page and theirs not in page
        # "Compared with" names the same project's previous run, never the other's.
        compared = client.get(f"/runs/{latest}").text
        assert f'Compared with <a href="/runs/{mine}">' in compared
    everything = make_settings(all_projects=True)
    with TestClient(create_app(everything, store=store)) as client:
        assert client.get("/api/runs").json()["total"] == 3
        assert client.get(f"/api/runs/{theirs}").status_code == 200
        assert len(client.get("/api/flows/alpha").json()["results"]) == 3
