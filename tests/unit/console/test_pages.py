"""The console's pages and the pure view helpers behind them."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from nocrud.console.views import ansi_to_html, compare, is_flaky, parse_failure
from nocrud.results import FlowResult, Status, Timings
from nocrud.store import RunStatus, RunStore

MESSAGE = """POST http://127.0.0.1:49153/api/sites?api_key=abcdef123 -> 400 BAD REQUEST \
(expected 201)
request headers:
  Authorization: ********
  Content-Type: application/json
request body:
  {"name": "site-1", "password": "hunter22"}
response body (application/json):
  {"error": "name taken"}"""


def _record(store: RunStore, commit: str, statuses: dict[str, Status], run: float = 1.0) -> str:
    run_id, _ = store.create_run(project="demo", trigger="cli")
    store.start_run(run_id, flow_names=list(statuses), commit=commit, branch="main")
    for name, status in statuses.items():
        store.flow_started(run_id, name, 0)
        message = MESSAGE if status is Status.FAILED else ""
        store.flow_finished(
            run_id,
            FlowResult(
                name,
                status,
                message=message,
                timings=Timings(1.0, run, 0.2),
                app_logs="app started\nDATABASE_URL=postgresql://u:pw1234@db/x\n",
            ),
        )
    final = RunStatus.FAILED if Status.FAILED in statuses.values() else RunStatus.PASSED
    store.finish_run(run_id, status=final, exit_code=1 if final is RunStatus.FAILED else 0)
    time.sleep(0.01)
    return run_id


def test_run_page_shows_failures_first_with_request_response_and_curl(
    client: TestClient, store: RunStore
) -> None:
    _record(store, "c1", {"alpha": Status.PASSED, "beta": Status.PASSED}, run=0.5)
    run_id = _record(store, "c1", {"alpha": Status.PASSED, "beta": Status.FAILED}, run=3.0)
    page = client.get(f"/runs/{run_id}").text
    assert page.index('id="failure-beta"') < page.index('data-flow="alpha"')
    assert "POST http://127.0.0.1:49153/api/sites?api_key=********" in page
    assert "name taken" in page and "curl -i -X POST" in page
    assert "hunter22" not in page and "abcdef123" not in page and "pw1234" not in page
    assert 'new failures: <a class="bad" href="/flows/beta">beta</a>' in page
    assert 'slower: <a href="/flows/alpha">alpha</a>' in page
    runs_page = client.get("/").text
    assert run_id in runs_page and "<svg" in runs_page
    assert client.get("/?status=failed").text.count('class="status-failed"') == 1
    fragment = client.get(f"/fragments/runs/{run_id}/flows").text
    assert 'data-status="failed"' in fragment and "waterfall" in fragment


def test_flow_page_marks_a_flow_flaky_when_one_commit_saw_both(
    client: TestClient, store: RunStore
) -> None:
    _record(store, "c1", {"beta": Status.PASSED})
    _record(store, "c1", {"beta": Status.FAILED})
    page = client.get("/flows/beta").text
    assert "flaky" in page and page.count('class="cell ') == 2
    steady = client.get("/flows/nothing").text
    assert "No recorded results" in steady


def test_start_page_offers_the_strategies_and_names_the_active_run(
    client: TestClient, store: RunStore
) -> None:
    page = client.get("/new").text
    assert "<option>image</option><option>template</option>" in page
    active, _ = store.create_run(project="demo", trigger="console", lock=True)
    assert f'href="/runs/{active}"' in client.get("/new").text


def test_parse_failure_and_curl() -> None:
    failure = parse_failure(MESSAGE)
    assert failure is not None
    assert (failure.method, failure.path, failure.status) == (
        "POST",
        "/api/sites?api_key=abcdef123",
        "400 BAD REQUEST (expected 201)",
    )
    assert failure.response_body == '{"error": "name taken"}'
    curl = failure.curl()
    assert curl.startswith("curl -i -X POST \"$APP\"'/api/sites?api_key=abcdef123'")
    assert '--data \'{"name": "site-1", "password": "********"}\'' in curl
    assert parse_failure("AssertionError: 2 != 3") is None


def test_compare_flaky_and_ansi() -> None:
    def flow(name: str, status: str, run: float = 1.0) -> dict[str, object]:
        return {"name": name, "status": status, "provision": 1.0, "run": run, "teardown": 0.0}

    result = compare(
        "prev",
        [flow("a", "failed"), flow("b", "passed"), flow("c", "passed", 5.0), flow("d", "passed")],
        [
            flow("a", "passed"),
            flow("b", "error"),
            flow("c", "passed", 1.0),
            flow("d", "passed", 0.9),
        ],
    )
    assert (result.new_failures, result.fixed, [s[0] for s in result.slower]) == (
        ["a"],
        ["b"],
        ["c"],
    )
    assert is_flaky([{"commit": "x", "status": "passed"}, {"commit": "x", "status": "failed"}])
    assert not is_flaky([{"commit": "x", "status": "passed"}, {"commit": "y", "status": "failed"}])
    assert ansi_to_html("\x1b[1;31m<b>\x1b[0m ok") == (
        '<span class="bold"><span class="fg1">&lt;b&gt;</span></span> ok'
    )


def test_a_pytest_tests_flow_page_answers_though_its_name_is_a_path(
    client: TestClient, store: RunStore
) -> None:
    # The pytest plugin records each test under its node id: slashes and colons.
    name = "tests/api/test_items.py::test_create[json]"
    _record(store, "c1", {name: Status.FAILED})
    page = client.get(f"/flows/{name}")
    assert page.status_code == 200 and "No recorded results" not in page.text
    assert client.get(f"/api/flows/{name}").json()["results"]
