"""The run store on SQLite: recording a run, the one-active-run rule, retention, paged logs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from nocrud.results import FlowResult, RunResult, Status, StepResult, Timings
from nocrud.store import (
    ActiveRunError,
    Recording,
    RemoteRecorder,
    RunFilter,
    RunStart,
    RunStatus,
    RunStore,
    StoreError,
    StoreRecorder,
)
from nocrud.store.schema import CHUNK_LINES, HEAD


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(f"sqlite:///{tmp_path / 'history.db'}")


def _result(name: str, status: Status = Status.PASSED, **kw: object) -> FlowResult:
    return FlowResult(name=name, status=status, timings=Timings(1.0, 2.0, 0.5), **kw)  # type: ignore[arg-type]


def test_a_run_is_recorded_flow_by_flow_with_counts_and_masked_texts(store: RunStore) -> None:
    run_id, _ = store.create_run(project="demo", trigger="cli", status=RunStatus.RUNNING)
    store.start_run(run_id, flow_names=["a", "b", "c"], commit="abc123", branch="main")
    assert [f["status"] for f in store.run_flows(run_id)] == ["queued"] * 3
    store.flow_started(run_id, "a", 1)
    assert store.run_flows(run_id)[0]["status"] == "running"
    store.flow_finished(
        run_id,
        _result(
            "a",
            Status.FAILED,
            message="POST /login password=hunter22 -> 403",
            app_logs="line\n" * 3 + "DATABASE_URL=postgresql://app:s3cret@db/app\n",
            steps=(StepResult("create", Status.FAILED, "token=abcdefgh"),),
        ),
    )
    store.flow_finished(run_id, _result("b"))
    store.append_log(run_id, ["one", "Authorization: Bearer abc.def.ghi"])
    store.finish_run(run_id, status=RunStatus.FAILED, exit_code=1)

    run = store.get_run(run_id)
    assert run is not None
    assert (run["status"], run["passed"], run["failed"], run["skipped"], run["total"]) == (
        "failed",
        1,
        1,
        1,  # c never ran: the run ended first
        3,
    )
    assert (run["commit"], run["branch"], run["exit_code"]) == ("abc123", "main", 1)
    assert "token_hash" not in run
    flow = store.run_flows(run_id)[0]
    assert "hunter22" not in flow["message"] and "********" in flow["message"]
    assert "abcdefgh" not in json.dumps(flow["steps"])
    logs = store.blob_tail(flow["app_logs"])
    assert "s3cret" not in logs and logs.endswith("@db/app\n")
    assert [line for _, line in store.log_lines(run_id)] == ["one", "Authorization: ********"]


def test_one_active_console_run_per_project_even_when_requests_race(store: RunStore) -> None:
    winners: list[str] = []
    losers: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        try:
            winners.append(store.create_run(project="demo", trigger="console", lock=True)[0])
        except ActiveRunError as exc:
            losers.append(exc.run_id)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert losers == winners * 7  # every loser is pointed at the active run
    # Another project, and CLI runs, are not held up; a finished run frees the slot.
    store.create_run(project="other", trigger="console", lock=True)
    store.create_run(project="demo", trigger="cli")
    store.finish_run(winners[0], status=RunStatus.CANCELLED)
    store.create_run(project="demo", trigger="console", lock=True)


def test_run_tokens_are_checked_and_never_stored_in_clear(store: RunStore, tmp_path: Path) -> None:
    run_id, token = store.create_run(project="demo", trigger="remote")
    assert store.check_token(run_id, token)
    assert not store.check_token(run_id, token + "x")
    assert not store.check_token("nope", token)
    assert token.encode() not in (tmp_path / "history.db").read_bytes()


def test_large_logs_are_stored_once_and_read_a_page_at_a_time(store: RunStore) -> None:
    text = "".join(f"line {i}\n" for i in range(CHUNK_LINES * 2 + 50))
    for name in ("a", "b"):
        run_id, _ = store.create_run(project="demo", trigger="cli")
        store.flow_finished(run_id, _result(name, app_logs=text))
    digests = {f["app_logs"] for r in store.list_runs()[0] for f in store.run_flows(r["id"])}
    assert len(digests) == 1
    digest = digests.pop()
    first, pages = store.blob_page(digest, 0)
    last, _ = store.blob_page(digest, 2)
    assert pages == 3
    assert first.startswith("line 0\n") and first.count("\n") == CHUNK_LINES
    assert last.count("\n") == 50
    assert store.blob_tail(digest, 60).splitlines()[0] == f"line {CHUNK_LINES * 2 - 10}"


def test_retention_keeps_the_newest_runs_and_recent_days_never_active_ones(
    store: RunStore,
) -> None:
    ids = []
    for i in range(6):
        run_id, _ = store.create_run(project="demo", trigger="cli")
        store.flow_finished(run_id, _result(f"f{i}", app_logs=f"log of {i}\n"))
        store.finish_run(run_id, status=RunStatus.PASSED, exit_code=0)
        ids.append(run_id)
        time.sleep(0.01)
    active, _ = store.create_run(project="demo", trigger="console", lock=True)
    assert store.retain(keep_runs=3, keep_days=30) == 3
    left = {r["id"] for r in store.list_runs()[0]}
    assert left == {*ids[3:], active}
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == 3
        assert conn.exec_driver_sql("SELECT count(*) FROM blob_chunks").scalar() == 3
    assert store.retain(keep_runs=100, keep_days=1, now=time.time() + 2 * 86400) == 3
    assert [r["id"] for r in store.list_runs()[0]] == [active]


def test_runs_page_filters_and_paginates(store: RunStore) -> None:
    for i in range(5):
        run_id, _ = store.create_run(project="demo", trigger="cli")
        store.start_run(run_id, flow_names=["x" if i % 2 else "y"], branch=f"b{i % 2}")
        store.finish_run(run_id, status=RunStatus.PASSED if i % 2 else RunStatus.FAILED)
        time.sleep(0.01)
    page, total = store.list_runs(RunFilter(status="passed"), page=1, per_page=1)
    assert (len(page), total) == (1, 2)
    assert store.list_runs(RunFilter(flow="y"))[1] == 3
    assert store.list_runs(RunFilter(branch="b1"))[1] == 2
    assert store.list_runs(RunFilter(since=time.time() + 10))[1] == 0
    newest = store.list_runs()[0][0]
    previous = store.previous_run(newest)
    assert previous is not None and previous["created_at"] < newest["created_at"]
    assert [h["status"] for h in store.flow_history("x")] == ["skipped", "skipped"]


def test_reopening_keeps_history_and_the_schema_is_alembics_head(tmp_path: Path) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "nocrud.store:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD

    url = f"sqlite:///{tmp_path / 'h.db'}"
    run_id, _ = RunStore(url).create_run(project="demo", trigger="cli")
    again = RunStore(url)
    assert again.schema_version() == HEAD
    assert again.get_run(run_id) is not None


def test_a_history_of_the_first_schema_opens_and_upgrades_with_its_runs(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", "nocrud.store:migrations")
    with engine.begin() as conn:  # what an older nocrud left: schema 0001 and a run
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, project, status, trigger, selection, created_at, "
                "updated_at) VALUES ('old1', 'demo', 'running', 'cli', '{}', 1.0, 1.0)"
            )
        )
    engine.dispose()
    store = RunStore(url)
    assert store.schema_version() == HEAD
    assert store.get_run("old1") is not None
    assert not store.cancel_requested("old1")
    assert store.request_cancel("old1") and store.cancel_requested("old1")
    store.close()


def test_a_store_that_cannot_be_opened_says_which_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"not a database URL.*sqlite:///"):
        RunStore("not a url")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match=r"cannot open the run store.*--no-record"):
        RunStore(f"sqlite:///{blocker / 'sub' / 'h.db'}")


def _start(names: tuple[str, ...] = ("a", "b")) -> RunStart:
    return RunStart(
        project="demo",
        flow_names=names,
        parallel=2,
        strategy="image",
        nocrud_run_id="r1",
        nocrud_version="0.1.0",
        selection={"keyword": "a or b"},
    )


def test_recording_brackets_a_run_and_reads_its_results_file(
    store: RunStore, tmp_path: Path
) -> None:
    said: list[str] = []
    recorder = StoreRecorder(store, say=said.append)
    results = tmp_path / "results.json"
    with Recording(recorder, _start(), results) as bracket:
        recorder.flow_started("a", 0)
        flows = (_result("a"), _result("b", Status.ERROR, message="db never ready"))
        results.write_text(
            json.dumps(
                RunResult(
                    "r1", "demo", flows, time.time(), 3.5, 2, nocrud_version="0.1.0"
                ).to_dict()
            )
        )
        bracket.exit_code = 1
    run = store.get_run("r1")
    assert run is not None
    assert (run["status"], run["passed"], run["errors"], run["wall_time"]) == ("failed", 1, 1, 3.5)
    assert said == []


def test_recording_an_interrupted_or_broken_run_keeps_its_code_and_message(
    store: RunStore, tmp_path: Path
) -> None:
    with (
        pytest.raises(KeyboardInterrupt),
        Recording(StoreRecorder(store, say=print), _start(), tmp_path / "none.json"),
    ):
        raise KeyboardInterrupt
    assert store.get_run("r1")["status"] == "interrupted"  # type: ignore[index]

    class BuildFailedError(Exception):
        exit_code = 3

    with (
        pytest.raises(BuildFailedError),
        Recording(
            StoreRecorder(store, say=print),
            RunStart("demo", ("a",), 1, "image", "r2", "", {}),
            tmp_path / "none.json",
        ),
    ):
        raise BuildFailedError("the migrate command failed")
    run = store.get_run("r2")
    assert run is not None
    assert (run["status"], run["exit_code"], run["message"]) == (
        "error",
        3,
        "the migrate command failed",
    )


def test_a_broken_store_warns_once_and_never_fails_the_run(store: RunStore) -> None:
    said: list[str] = []
    recorder = StoreRecorder(store, say=said.append)
    recorder.run_started(_start())
    store.engine.dispose()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE flows")
    for name in ("a", "b"):
        recorder.flow_started(name, 0)
        recorder.flow_finished(_result(name))
    recorder.run_finished(None, 0)
    assert len(said) == 1 and "the run goes on" in said[0]


def test_an_unreachable_console_drops_events_with_one_warning() -> None:
    said: list[str] = []
    recorder = RemoteRecorder("http://127.0.0.1:9", say=said.append, timeout=0.5)
    recorder.run_started(_start())
    recorder.flow_finished(_result("a"))
    recorder.run_finished(None, 0)
    recorder.close()
    assert len(said) == 1
    assert "console at http://127.0.0.1:9" in said[0] and "dropped" in said[0]


def test_recorder_for_gives_what_no_record_and_report_to_ask_for(tmp_path: Path) -> None:
    from nocrud.store import Fanout, StoreSettings, recorder_for

    said: list[str] = []
    settings = StoreSettings(url=f"sqlite:///{tmp_path / '.nocrud' / 'history.db'}")
    assert recorder_for(None, report_to=None, say=said.append, env={}) is None
    local = recorder_for(settings, report_to=None, say=said.append, env={})
    assert isinstance(local, StoreRecorder)
    assert (tmp_path / ".nocrud" / "history.db").is_file()
    both = recorder_for(
        settings,
        report_to="http://127.0.0.1:9",
        say=said.append,
        env={"NOCRUD_REPORT_RUN": "abc", "NOCRUD_REPORT_TOKEN": "t"},
    )
    assert isinstance(both, Fanout)
    assert [type(r).__name__ for r in both.recorders] == ["StoreRecorder", "RemoteRecorder"]
    both.close()
    local.close()
    broken = recorder_for(StoreSettings(url="nope"), report_to=None, say=said.append, env={})
    assert broken is None
    assert said == [
        "warning: this run is not recorded: run store URL 'nope' is not a database URL: set "
        "store.url in nocrud.yaml (or NOCRUD_STORE_URL, or serve --store) to "
        "sqlite:///path/history.db or postgresql://user:password@host:5432/db"
    ]
