"""The console's JSON API with the framework's test client: start, 409, cancel, rerun, report-in."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nocrud.console.app import create_app
from nocrud.console.settings import ConsoleSettings
from nocrud.results import FlowResult, RunResult, Status
from nocrud.store import RunStatus, RunStore

from .conftest import csrf_client


def _wait_final(store: RunStore, run_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get_run(run_id)
        if run and run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still active: {store.get_run(run_id)}")


def test_a_started_run_is_a_nocrud_up_process_whose_output_is_its_log(
    client: TestClient, store: RunStore
) -> None:
    answer = client.post("/api/runs", json={"keyword": "alpha", "parallel": 3})
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["run_id"]
    assert answer.json()["url"] == f"/runs/{run_id}"
    run = _wait_final(store, run_id)
    assert (run["status"], run["trigger"], run["exit_code"]) == ("passed", "console", 0)
    lines = client.get(f"/api/runs/{run_id}/log").json()["lines"]
    texts = [line["text"] for line in lines]
    assert texts[0] == "$ nocrud up -j 3 -k alpha"
    assert any("up --no-record --report-to http://127.0.0.1:1 -j 3 -k alpha" in t for t in texts)
    coloured = next(line for line in lines if "PASSED" in line["text"])
    assert '<span class="fg2">PASSED</span>' in coloured["html"]
    assert "hunter22" not in str(lines)  # the run's output is masked like every report
    listed = client.get("/api/runs").json()
    assert listed["total"] == 1 and listed["runs"][0]["id"] == run_id


def test_two_racing_starts_give_one_run_and_one_409_with_a_link(
    make_settings: Callable[..., ConsoleSettings], store: RunStore
) -> None:
    app = create_app(make_settings(extra_env={"FAKE_MODE": "sleep"}), store=store)
    with TestClient(app) as raw:
        client = csrf_client(raw)
        answers: list[Any] = []
        barrier = threading.Barrier(2)

        def start() -> None:
            barrier.wait()
            answers.append(client.post("/api/runs", json={"flows": ["alpha"]}))

        threads = [threading.Thread(target=start) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(a.status_code for a in answers)
        assert codes == [201, 409], [a.text for a in answers]
        won = next(a for a in answers if a.status_code == 201).json()["run_id"]
        lost = next(a for a in answers if a.status_code == 409).json()
        assert lost["active_run"] == won and lost["url"] == f"/runs/{won}"
        assert "already has an active run" in lost["detail"]

        deadline = time.monotonic() + 20
        while not any("fake nocrud" in t for _, t in store.log_lines(won)):
            assert time.monotonic() < deadline, store.log_lines(won)
            time.sleep(0.05)
        cancel = client.post(f"/api/runs/{won}/cancel")
        assert cancel.status_code == 202
        run = _wait_final(store, won)
        assert (run["status"], run["exit_code"], run["active_lock"]) == ("cancelled", 130, None)
        log = [t for _, t in store.log_lines(won)]
        assert "nocrud serve: cancelled; tearing down environments" in log
        assert any("SIGTERM" in t for t in log)
        again = client.post(f"/api/runs/{won}/cancel")
        assert again.status_code == 409 and "already over" in again.json()["detail"]


def test_rerun_starts_the_failed_flows_only(client: TestClient, store: RunStore) -> None:
    run_id, _ = store.create_run(project="demo", trigger="cli", parallel=2, strategy="image")
    store.start_run(run_id, flow_names=["alpha", "beta"])
    store.flow_finished(run_id, FlowResult("alpha", Status.PASSED))
    store.flow_finished(run_id, FlowResult("beta", Status.FAILED, message="boom"))
    store.finish_run(run_id, status=RunStatus.FAILED, exit_code=1)
    answer = client.post(f"/api/runs/{run_id}/rerun")
    assert answer.status_code == 201, answer.text
    again = store.get_run(answer.json()["run_id"])
    assert again is not None and again["selection"]["flows"] == ["beta"]
    _wait_final(store, again["id"])
    passed = again["id"]
    assert client.post(f"/api/runs/{passed}/rerun").json()["errors"] == {
        "failed_only": f"run {passed} has no failed flows to run again"
    }


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"parallel": 0}, "parallel", "greater than or equal to 1"),
        ({"parallel": "many"}, "parallel", "valid integer"),
        ({"strategy": "teleport"}, "strategy", "choose one of image, template"),
        ({"keyword": "alpha and ("}, "keyword", "not a valid expression"),
        ({"tags": "or"}, "tags", "not a valid expression"),
        ({"flows": ["gamma"]}, "flows", "gamma"),
        ({"keyword": "nothing_matches"}, "flows", "no flows selected"),
        ({"flows": "alpha"}, "flows", "valid list"),
        ({"colour": "red"}, "colour", "unknown field 'colour'"),
    ],
)
def test_bad_start_requests_get_a_message_for_the_field(
    client: TestClient, body: dict[str, Any], field: str, words: str
) -> None:
    answer = client.post("/api/runs", json=body)
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert field in errors and words in errors[field], errors


def test_no_bad_input_reaches_a_500(client: TestClient, store: RunStore) -> None:
    run_id, _ = store.create_run(project="demo", trigger="cli")
    store.finish_run(run_id, status=RunStatus.PASSED, exit_code=0)  # over: cancel is a 409
    probes = [
        ("get", "/api/runs?page=0", 422),
        ("get", "/api/runs?page=abc", 422),
        ("get", "/api/runs?per_page=100000", 422),
        ("get", "/api/runs?status=weird", 422),
        ("get", "/api/runs?since=yesterday", 422),
        ("get", "/api/runs/nope", 404),
        ("get", "/api/runs/nope/log", 404),
        ("get", f"/api/runs/{run_id}/log?after=-1", 422),
        ("get", "/api/blobs/nope", 404),
        ("get", "/api/flows/nope", 404),
        ("post", "/api/runs/nope/cancel", 404),
        ("post", f"/api/runs/{run_id}/cancel", 409),
        ("post", "/api/runs/nope/rerun", 404),
        ("get", "/runs/nope", 404),
        ("get", "/?status=weird", 422),
        ("get", "/fragments/runs/nope/flows", 404),
        ("get", "/blobs/nope", 404),
    ]
    for method, url, expected in probes:
        answer = getattr(client, method)(url)
        assert answer.status_code == expected, (url, answer.status_code, answer.text)
        assert answer.json()["detail"], url
    for raw, expected in ((b"{", 422), (b"[]", 422), (b'{"flows": [1, 2]}', 422), (b"\xff", 400)):
        answer = client.post("/api/runs", content=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code == expected, (raw, answer.text)
        assert answer.json()["detail"]


def test_csrf_and_token_rules(
    make_settings: Callable[..., ConsoleSettings], store: RunStore, client: TestClient
) -> None:
    bare = TestClient(client.app)
    refused = bare.post("/api/runs", json={})
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    wrong = bare.post("/api/runs", json={}, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403

    app = create_app(make_settings(token="s3cret-token"), store=store)
    with TestClient(app) as locked:
        assert locked.get("/").status_code == 401
        assert "NOCRUD_SERVE_TOKEN" in locked.get("/api/runs").json()["detail"]
        login = locked.get("/?token=s3cret-token", follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/"
        assert locked.get("/").status_code == 200  # the cookie from the login
    with TestClient(app) as script:
        auth = {"Authorization": "Bearer s3cret-token"}
        assert script.get("/api/runs", headers=auth).status_code == 200
        # A script with the token is not a browser riding on cookies: no CSRF header needed.
        assert script.post("/api/runs", json={"parallel": 0}, headers=auth).status_code == 422
        assert script.get("/api/runs", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_run_elsewhere_reports_in_with_its_own_token(client: TestClient, store: RunStore) -> None:
    bare = TestClient(client.app)  # no cookies, no CSRF header: what `nocrud up` sends
    registered = bare.post("/api/reports", json={"project": "demo", "parallel": 2})
    assert registered.status_code == 201, registered.text
    run_id, token = registered.json()["run_id"], registered.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    failed = FlowResult("beta", Status.FAILED, message="POST /x token=abcdefgh -> 500")
    events = [
        {"type": "run_started", "flows": ["alpha", "beta"], "commit": "c0ffee", "branch": "main"},
        {"type": "flow_started", "name": "alpha", "worker": 0},
        {"type": "flow_finished", "result": FlowResult("alpha", Status.PASSED).to_dict()},
        {"type": "flow_finished", "result": failed.to_dict()},
        {"type": "log", "lines": ["hello"]},
    ]
    assert bare.post(f"/api/runs/{run_id}/events", json={"events": events}).status_code == 401
    assert (
        bare.post(
            f"/api/runs/{run_id}/events",
            json={"events": events},
            headers={"Authorization": "Bearer wrong"},
        ).status_code
        == 401
    )
    taken = bare.post(f"/api/runs/{run_id}/events", json={"events": events}, headers=auth)
    assert (taken.status_code, taken.json()) == (200, {"cancel": False})
    state = client.get(f"/api/runs/{run_id}").json()
    assert state["run"]["status"] == "running" and state["run"]["branch"] == "main"
    assert [f["status"] for f in state["flows"]] == ["passed", "failed"]
    assert "abcdefgh" not in str(state)
    result = RunResult(
        run_id, "demo", (FlowResult("alpha", Status.PASSED), failed), time.time(), 2.0, 2
    )
    finish = [{"type": "run_finished", "result": result.to_dict(), "exit_code": 1}]
    taken = bare.post(f"/api/runs/{run_id}/events", json={"events": finish}, headers=auth)
    assert taken.status_code == 200
    run = store.get_run(run_id)
    assert run is not None and (run["status"], run["trigger"], run["wall_time"]) == (
        "failed",
        "remote",
        2.0,
    )
    bad = bare.post(
        f"/api/runs/{run_id}/events",
        json={"events": [{"type": "flow_finished", "result": {"name": "x"}}]},
        headers=auth,
    )
    assert bad.status_code == 422 and "events.0" in bad.json()["errors"]
    unknown = bare.post(
        f"/api/runs/{run_id}/events", json={"events": [{"type": "explode"}]}, headers=auth
    )
    assert unknown.status_code == 422
    assert bare.post("/api/reports", content=b"project=demo").status_code == 415


def test_restart_marks_dead_runs_interrupted_and_sweeps(
    settings: ConsoleSettings, store: RunStore
) -> None:
    import socket

    dead, _ = store.create_run(project="demo", trigger="console", lock=True)
    store.set_owner(dead, f"{socket.gethostname()}:999999")
    alive, _ = store.create_run(project="demo", trigger="cli", status=RunStatus.RUNNING)
    store.set_owner(alive, f"{socket.gethostname()}:1")  # init never dies
    app = create_app(settings, store=store)
    with TestClient(app):
        app.state.console.launcher.wait()
    assert store.get_run(dead)["status"] == "interrupted"  # type: ignore[index]
    assert store.get_run(alive)["status"] == "running"  # type: ignore[index]
    log = [t for _, t in store.log_lines(dead)]
    assert any("interrupted" in t for t in log)
    assert "nocrud serve: swept its environments: removed 2 container(s), 1 network(s)" in log
    assert store.active_run("demo") is None  # the slot is free again


def test_live_stream_sends_state_log_and_end(client: TestClient, store: RunStore) -> None:
    run_id, _ = store.create_run(project="demo", trigger="cli")
    store.start_run(run_id, flow_names=["alpha"])
    store.append_log(run_id, ["\x1b[31mred\x1b[0m line"])
    store.flow_finished(run_id, FlowResult("alpha", Status.PASSED))
    store.finish_run(run_id, status=RunStatus.PASSED, exit_code=0)
    with client.stream("GET", f"/api/runs/{run_id}/stream") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        body = "".join(answer.iter_text())
    assert "event: log" in body and '<span class=\\"fg1\\">red</span>' in body
    assert "event: state" in body and '"status": "passed"' in body
    assert body.rstrip().endswith('data: {"status": "passed"}')


def test_openapi_document_describes_the_api(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert {"/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/cancel", "/api/reports"} <= set(
        document["paths"]
    )
    assert "/runs/{run_id}" not in document["paths"]  # pages are not API
