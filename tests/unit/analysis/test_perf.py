"""Request timings: percentiles, endpoint names, the files, the comparison and `nocrud perf`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nocrud.analysis import perf
from nocrud.cli import authoring as cli_flows
from nocrud.results import FlowResult, RequestRecord, RunResult, Status


def run_of(*flows: tuple[str, list[tuple[str, str, float]]]) -> RunResult:
    """A run whose flows made these requests: (method, path, milliseconds)."""
    return RunResult(
        run_id="r1",
        project="demo",
        started_at=0.0,
        wall_time=1.0,
        parallel=1,
        flows=tuple(
            FlowResult(
                name=name,
                status=Status.PASSED,
                requests=tuple(RequestRecord(m, p, 200, ms / 1000) for m, p, ms in requests),
            )
            for name, requests in flows
        ),
    )


DOCUMENT = {
    "openapi": "3.0.3",
    "paths": {
        "/api/sites": {"get": {}, "post": {}},
        "/api/sites/{site_id}": {"get": {}, "delete": {}},
        "/api/sites/search": {"get": {}},
    },
}


def test_percentile_interpolates_like_numpy() -> None:
    assert perf.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert perf.percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert perf.percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError, match="no values"):
        perf.percentile([], 50)


def test_requests_are_grouped_per_endpoint_template_and_per_flow() -> None:
    run = run_of(
        (
            "a",
            [
                ("GET", "/api/sites/1", 10),
                ("GET", "/api/sites/22", 30),
                ("GET", "/api/sites/search", 5),
                ("POST", "/api/sites", 40),
            ],
        ),
        ("b", [("GET", "/api/sites/{id}", 20), ("GET", "/api/other/7", 1)]),
    )
    data = perf.collect_timings(run, DOCUMENT)
    endpoints = data["endpoints"]
    assert endpoints["GET /api/sites/{site_id}"]["count"] == 3
    assert endpoints["GET /api/sites/{site_id}"]["p50_ms"] == 20.0
    assert endpoints["GET /api/sites/{site_id}"]["samples_ms"] == [10.0, 30.0, 20.0]
    assert endpoints["GET /api/sites/search"]["count"] == 1  # literal beats {site_id}
    assert "GET /api/other/{id}" in endpoints  # not in the document: guessed
    assert data["flows"]["a"]["POST /api/sites"]["count"] == 1
    assert data["flows"]["b"]["GET /api/sites/{site_id}"]["count"] == 1


def test_without_a_document_ids_and_uuids_become_id() -> None:
    run = run_of(
        ("a", [("GET", "/api/x/12/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301", 1)]),
        ("b", [("GET", "/api/x/{x_id}/items/{item}", 3)]),
    )
    endpoints = perf.collect_timings(run)["endpoints"]
    assert set(endpoints) == {"GET /api/x/{id}/items/{id}", "GET /api/x/{x_id}/items/{item}"}


def test_files_round_trip_and_the_baseline_is_a_copy(tmp_path: Path) -> None:
    run = run_of(("a", [("GET", "/api/sites", 10), ("GET", "/api/sites", 20)]))
    last = perf.write_timings(run, tmp_path / "perf")
    timings = perf.read_timings(last)
    assert timings["GET /api/sites"].count == 2
    assert timings["GET /api/sites"].p50 == 15.0
    baseline = perf.save_baseline(tmp_path / "perf")
    assert baseline.read_text() == last.read_text()


def test_missing_or_foreign_files_say_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(perf.PerfError, match="run `nocrud up --perf` first"):
        perf.read_timings(tmp_path / "last.json")
    with pytest.raises(perf.PerfError, match="run `nocrud up --perf` first"):
        perf.save_baseline(tmp_path)
    (tmp_path / "last.json").write_text('{"flows": []}')
    with pytest.raises(perf.PerfError, match="not a nocrud-perf/1 timings file"):
        perf.read_timings(tmp_path / "last.json")


def timing(endpoint: str, p50: float, p95: float) -> perf.EndpointTiming:
    return perf.EndpointTiming(endpoint, 10, p50, p95, p50, p95)


@pytest.mark.parametrize(
    ("now", "regressed"),
    [
        ((10.0, 20.0), False),  # unchanged
        ((12.4, 20.0), False),  # p50 +24%
        ((13.0, 20.0), True),  # p50 +30%
        ((10.0, 26.0), True),  # p95 +30%
        ((8.0, 14.0), False),  # faster
    ],
)
def test_regression_is_p50_or_p95_beyond_the_threshold(
    now: tuple[float, float], regressed: bool
) -> None:
    rows = perf.compare(
        {"GET /a": timing("GET /a", *now)}, {"GET /a": timing("GET /a", 10.0, 20.0)}
    )
    assert [row.regressed for row in rows] == [regressed]


def test_small_absolute_growth_is_jitter_and_new_or_gone_endpoints_do_not_fail() -> None:
    current = {"GET /fast": timing("GET /fast", 0.9, 1.2), "GET /new": timing("GET /new", 5, 9)}
    baseline = {"GET /fast": timing("GET /fast", 0.5, 0.6), "GET /gone": timing("GET /gone", 1, 2)}
    rows = perf.compare(current, baseline, threshold=25, min_delta_ms=1.0)
    assert [(r.endpoint, r.regressed) for r in rows] == [
        ("GET /fast", False),
        ("GET /gone", False),
        ("GET /new", False),
    ]
    assert rows[0].p50_change == pytest.approx(80.0)
    assert rows[1].current is None and rows[1].p95_change is None
    strict = perf.compare(current, baseline, threshold=25, min_delta_ms=0)
    assert [r.endpoint for r in perf.regressions(strict)] == ["GET /fast"]


# -- the command ------------------------------------------------------------------------


def write_run(project: Path, milliseconds: float) -> None:
    run = run_of(("a", [("GET", "/api/sites", milliseconds)] * 3))
    results = project / "results.json"
    results.write_text(json.dumps(run.to_dict()))
    cli_flows.record_run(project, results, perf=True, say=lambda line: None)


def test_perf_command_stores_a_baseline_then_flags_a_regression(
    cli_project: Path, run_cli: Callable[..., Any]
) -> None:
    missing = run_cli("perf")
    assert missing.exit_code == 2
    assert "run `nocrud up --perf` first" in missing.output

    write_run(cli_project, 10)
    first = run_cli("perf")
    assert first.exit_code == 0, first.output
    assert "no baseline yet: store this run as one with `nocrud perf --baseline`" in first.output
    stored = run_cli("perf", "--baseline")
    assert stored.exit_code == 0 and "baseline stored" in stored.output

    write_run(cli_project, 11)
    same = run_cli("perf")
    assert same.exit_code == 0, same.output
    assert "no endpoint regressed by more than 25%" in same.output

    write_run(cli_project, 20)
    slower = run_cli("perf")
    assert slower.exit_code == 1, slower.output
    assert "GET /api/sites" in slower.output and "REGRESSED" in slower.output
    assert "+100%" in slower.output
    assert "1 of 1 endpoint(s) regressed by more than 25% (and 1 ms): GET /api/sites" in (
        " ".join(slower.output.split())
    )
    assert run_cli("perf", "--threshold", "150").exit_code == 0
    as_json = json.loads(run_cli("perf", "--json").output)
    assert as_json[0]["regressed"] is True and as_json[0]["baseline"]["p50_ms"] == 10.0


def test_two_projects_in_one_directory_keep_their_own_timings_and_baselines(
    cli_project: Path, run_cli: Callable[..., Any]
) -> None:
    write_run(cli_project, 10)
    assert run_cli("perf", "--baseline").exit_code == 0
    # Another config in the same directory (project "shop") runs slower, and stores its own.
    slow = dataclasses.replace(
        run_of(("a", [("GET", "/api/sites", 90.0)] * 3)), project="shop", run_id="r2"
    )
    results = cli_project / "shop.json"
    results.write_text(json.dumps(slow.to_dict()))
    cli_flows.record_run(cli_project, results, perf=True, say=lambda line: None)
    assert (cli_project / ".nocrud" / "perf" / "shop" / "last.json").is_file()
    ours = run_cli("perf")
    assert ours.exit_code == 0, ours.output  # demo's last run against demo's baseline
    assert "no endpoint regressed" in ours.output
    # The directory's last run is shop's: coverage of demo says so rather than read it.
    covered = run_cli("coverage")
    assert covered.exit_code == 2, covered.output
    assert "holds a run of project 'shop'" in covered.output
    assert "--results FILE" in covered.output
