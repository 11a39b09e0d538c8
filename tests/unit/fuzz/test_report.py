"""Report shaping (nocrud.fuzz.report): blocks, curl scripts, JUnit and JSON from values."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from nocrud.fuzz.model import Exchange, Finding, Verdict
from nocrud.fuzz.report import (
    FuzzReport,
    curl_script,
    failure_block,
    summary_lines,
    write_json,
    write_junit,
    write_scripts,
)

TOKEN = "s3cr3t-token-value"
RED = Exchange(
    method="POST",
    path="/tags",
    headers=(("Authorization", f"Bearer {TOKEN}"), ("Content-Type", "application/json")),
    body=b'{"name": "red"}',
    status=201,
    operation="POST /tags",
)
AGAIN = Exchange(
    method="POST",
    path="/tags",
    headers=RED.headers,
    body=b'{"name": "red"}',
    status=500,
    response_body='{"detail": "internal error"}',
    operation="POST /tags",
)


def order_dependent() -> Finding:
    return Finding(
        operation="POST /tags",
        check="not_a_server_error",
        message="Server error",
        unit="POST /tags [positive] #0",
        history=(RED, AGAIN),
        verdict=Verdict.ORDER_DEPENDENT,
        minimal=(RED, AGAIN),
        attempts=3,
        app_logs="line 1\nIntegrityError: duplicate key\n",
    )


def report(*findings: Finding) -> FuzzReport:
    return FuzzReport(
        run_id="r1",
        project="shop",
        seed=42,
        operations=("POST /tags", "GET /stats"),
        checks=("not_a_server_error", "status_code_conformance"),
        findings=findings,
        examples=20,
        units=2,
        wall_time=2.0,
    )


def test_block_names_check_verdict_sequence_response_and_logs_and_masks() -> None:
    text = failure_block(order_dependent(), index=1, seed=42)
    assert text.startswith("FAIL 1: POST /tags: not_a_server_error (order-dependent)")
    assert "passes alone in a brand-new environment" in text
    assert '1. POST /tags {"name": "red"} -> 201' in text
    assert '2. POST /tags {"name": "red"} -> 500' in text
    assert "response: " in text and "internal error" in text
    assert "IntegrityError: duplicate key" in text
    assert TOKEN not in text


def test_curl_script_replays_the_sequence_and_reads_secrets_from_the_environment(
    tmp_path: Path,
) -> None:
    script = curl_script(order_dependent())
    assert TOKEN not in script
    assert "${AUTHORIZATION:?set AUTHORIZATION}" in script
    assert script.count("curl ") == 2
    path = tmp_path / "fail.sh"
    path.write_text(script)
    # It is valid shell and refuses to run without a base URL.
    checked = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    missing = subprocess.run(["sh", str(path)], capture_output=True, text=True, check=False)
    assert missing.returncode != 0
    assert "base URL" in missing.stderr


def test_junit_has_one_case_per_operation_and_check(tmp_path: Path) -> None:
    path = tmp_path / "fuzz.xml"
    write_junit(report(order_dependent()), path)
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == 4
    assert suite.get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [
        ("shop.fuzz.POST /tags", "not_a_server_error")
    ]
    assert TOKEN not in path.read_text()
    seed = suite.find("properties/property")
    assert seed is not None and seed.get("value") == "42"


def test_not_reproduced_is_flaky_and_does_not_fail(tmp_path: Path) -> None:
    flaky = Finding(
        operation="GET /stats",
        check="not_a_server_error",
        message="Server error",
        unit="u",
        history=(AGAIN,),
        verdict=Verdict.NOT_REPRODUCED,
        minimal=(AGAIN,),
    )
    result = report(flaky)
    assert result.ok
    path = tmp_path / "fuzz.json"
    write_json(result, path)
    data = json.loads(path.read_text())
    statuses = {(c["operation"], c["check"]): c["status"] for c in data["test_cases"]}
    assert statuses[("GET /stats", "not_a_server_error")] == "flaky"
    assert statuses[("POST /tags", "not_a_server_error")] == "passed"
    assert data["seed"] == 42 and data["ok"] is True


def test_json_carries_the_finding_masked(tmp_path: Path) -> None:
    path = tmp_path / "fuzz.json"
    write_json(report(order_dependent()), path)
    text = path.read_text()
    assert TOKEN not in text
    data = json.loads(text)
    failed = [c for c in data["test_cases"] if c["status"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["finding"]["verdict"] == "order-dependent"
    assert len(failed[0]["finding"]["minimal"]) == 2
    assert data["ok"] is False


def test_summary_says_counts_and_the_seed_and_scripts_are_written(tmp_path: Path) -> None:
    result = report(order_dependent())
    lines = summary_lines(result)
    assert "1 failure(s): 0 reproducible, 1 order-dependent" in lines[1]
    assert lines[-1] == "seed: 42 (run again with --seed 42)"
    (tmp_path / "fail-9.sh").write_text("old")
    written = write_scripts(result, tmp_path)
    assert [p.name for p in written] == ["fail-1.sh"]
    assert not (tmp_path / "fail-9.sh").exists()
