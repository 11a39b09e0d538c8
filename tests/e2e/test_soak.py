"""The soak (benchmarks/soak.py) at reduced size, and a check that its detectors detect.

The soak drives the real ``nocrud up`` with flows that each write rows and must see
only their own; here 24 of them at ``-j 8`` under the session's project, asserting
zero leaked objects, zero cross-flow data, zero port collisions and every flow
passed. The full size (200 flows, and the memory comparison) is run by hand:
``v/bin/python benchmarks/soak.py``. Under fire (``--faults``), 16 flows on a DinD daemon
whose app and database containers are killed mid-flow and which is restarted once; the
full size is ``v/bin/python benchmarks/soak.py --faults`` (300 flows).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.e2e.test_ci_shapes import dind_image

# The DinD image fixture is session-scoped in test_ci_shapes: shared, built once.
__all__ = ["dind_image"]

REPO = Path(__file__).resolve().parents[2]
SOAK = REPO / "benchmarks" / "soak.py"


def _soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nocrud_soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.docker
def test_soak_at_reduced_size_leaks_nothing_and_isolates_every_flow(
    harness: Any, tmp_path: Path
) -> None:
    figures = tmp_path / "soak.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--flows",
            "24",
            "--parallel",
            "8",
            "--baseline",
            "0",
            "--project",
            harness.project,
            "--workdir",
            str(tmp_path / "work"),
            "--deadline",
            "600",
            "--json",
            str(figures),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert figures.exists(), out
    (run,) = json.loads(figures.read_text())["runs"]
    assert run["passed"] == 24, out
    assert run["unreported_flows"] == []
    assert run["leaked"] == []
    assert run["cross_flow_rows"] == 0
    assert run["cross_flow_flows"] == []
    assert run["port_collisions"] == []
    assert run["live_port_collisions"] == []
    assert run["peak_rss_bytes"] > 0
    assert run["peak_live_containers"] > 2, "flows never overlapped: no parallelism was tested"
    assert proc.returncode == 0, out
    assert "soak: OK" in out
    assert harness.leftovers() == []


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.docker
def test_soak_under_fire_counts_every_flow_once_everywhere(
    harness: Any, tmp_path: Path, dind_image: str
) -> None:
    """``--faults`` at reduced size: kills mid-flow, a DinD restart (exit 3), a second run."""
    figures = tmp_path / "faults.json"
    proc = subprocess.run(
        [
            sys.executable, str(SOAK), "--faults",
            "--flows", "16", "--parallel", "8",
            "--project", harness.project,
            "--workdir", str(tmp_path / "work"),
            "--deadline", "420",
            "--dind-image", dind_image,
            "--json", str(figures),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert figures.exists(), out
    first, second = json.loads(figures.read_text())["runs"]
    assert first["exit_code"] == 3, out
    assert first["statuses"].get("error", 0) >= 1, out  # flows in flight at the restart
    assert sum(first["statuses"].values()) == 16 and sum(second["statuses"].values()) == 16
    assert second["exit_code"] in (0, 1) and second["kills"], out
    assert first["problems"] == [] and second["problems"] == [], out
    assert proc.returncode == 0 and "soak --faults: OK" in out, out
    assert harness.leftovers() == []


def _flow(name: str, app: str, db: str, t0: float, t1: float, foreign: int = 0) -> dict[str, Any]:
    line = f"soak app={app} db={db} t0={t0:.3f} t1={t1:.3f} foreign={foreign}"
    message = "another flow's rows are visible: ['soak-0002-x-0']" if foreign else ""
    return {
        "name": name,
        "status": "failed" if foreign else "passed",
        "message": message,
        "output": line,
        "timings": {"provision": 1.0, "run": 0.5, "teardown": 0.3},
    }


def test_the_soaks_detectors_catch_collisions_cross_flow_data_and_missing_flows(
    tmp_path: Path,
) -> None:
    soak = _soak_module()
    results = tmp_path / "results.json"
    results.write_text(
        json.dumps(
            {
                "flows": [
                    _flow("soak_0001", "127.0.0.1:40001", "127.0.0.1:40002", 10.0, 12.0),
                    # Running at the same time as soak_0001 on its app's address: a collision.
                    _flow("soak_0002", "127.0.0.1:40001", "127.0.0.1:40004", 11.0, 13.0, 2),
                    # The same address after soak_0001 ended: a port reused, not a collision.
                    _flow("soak_0003", "127.0.0.1:40002", "127.0.0.1:40005", 12.5, 14.0),
                ]
            }
        )
    )
    figures = soak.RunFigures(flows=4, parallel=2, exit_code=1, wall_time=5.0)

    soak._read_results(figures, results, 4)
    soak._judge(figures, tmp_path / "output.txt")

    assert figures.port_collisions == ["soak_0001 and soak_0002 both reached 127.0.0.1:40001"]
    assert figures.cross_flow_rows == 2
    assert figures.cross_flow_flows == ["soak_0002"]
    assert figures.unreported_flows == ["soak_0004"]
    assert (figures.passed, figures.failed) == (2, 1)
    assert not figures.ok
    assert len(figures.problems) == 5, figures.problems


def test_memory_is_judged_flat_or_growing() -> None:
    soak = _soak_module()
    small = soak.RunFigures(flows=50, parallel=8, exit_code=0, wall_time=1, peak_rss_bytes=80 << 20)
    flat = soak.RunFigures(flows=200, parallel=8, exit_code=0, wall_time=1, peak_rss_bytes=84 << 20)
    grows = soak.RunFigures(
        flows=200, parallel=8, exit_code=0, wall_time=1, peak_rss_bytes=200 << 20
    )

    assert soak.memory_verdict(small, flat)[0]
    ok, text = soak.memory_verdict(small, grows)
    assert not ok
    assert "GROWS" in text


def test_the_fault_soaks_accounting_catches_reports_that_disagree(tmp_path: Path) -> None:
    """Four reports of one run; the store says another status for one flow, the terminal
    lists one twice and JUnit's counts are off: each is named."""
    from nocrud.report import format_totals, write_json, write_junit
    from nocrud.results import FlowResult, RunResult, Status
    from nocrud.store import RunStatus, RunStore

    path = REPO / "benchmarks" / "soak_faults.py"
    faults = importlib.util.spec_from_file_location("soak_faults_t", path)
    assert faults is not None and faults.loader is not None
    module = importlib.util.module_from_spec(faults)
    sys.modules[faults.name] = module
    faults.loader.exec_module(module)

    flows = (
        FlowResult("soak_0001", Status.PASSED, output="soak app=a db=b t0=1 t1=2 foreign=0"),
        FlowResult("soak_0002", Status.ERROR, message="not finished: lost its daemon"),
        FlowResult("soak_0003", Status.SKIPPED, message="not run"),
    )
    run = RunResult("abcdef1234", "demo", flows, 0.0, 1.0, 2)
    write_json(run, tmp_path / "run-1.json")
    write_junit(run, tmp_path / "run-1.xml")
    junit = (tmp_path / "run-1.xml").read_text().replace('errors="1"', 'errors="0"')
    (tmp_path / "run-1.xml").write_text(junit)
    store = RunStore(f"sqlite:///{tmp_path / '.nocrud' / 'history.db'}")
    store.create_run(project="demo", trigger="cli", run_id="abcdef1234", status=RunStatus.RUNNING)
    store.start_run("abcdef1234", flow_names=[f.name for f in flows], nocrud_run_id="abcdef1234")
    recorded = (flows[0], FlowResult("soak_0002", Status.PASSED), flows[2])
    stored = RunResult("abcdef1234", "demo", recorded, 0.0, 1.0, 2)
    store.finish_run("abcdef1234", status=RunStatus.ERROR, result=stored, exit_code=3)
    store.close()
    terminal = "\n".join(
        [
            "soak_0001   passed       1.00 s",
            "soak_0002   error        1.00 s",
            "soak_0002   error        1.00 s",
            "soak_0003   skipped           -",
            format_totals(run),
        ]
    )
    checked = module.FaultRun("run-1", 3, exit_code=3, wall_time=1.0)
    module.account(checked, tmp_path, terminal)

    said = " | ".join(checked.problems)
    assert checked.run_id == "abcdef1234"
    assert checked.statuses == {"passed": 1, "error": 1, "skipped": 1}
    assert "store and JSON disagree on 1 flow(s), e.g. soak_0002: passed vs error" in said
    assert "terminal: soak_0002 twice in the summary" in said
    assert "JUnit: errors=0" in said
    assert "cross-flow" not in said
