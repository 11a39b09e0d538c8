"""The soak (benchmarks/soak.py) at reduced size, and a check that its detectors detect.

The soak drives the real ``nocrud up`` with flows that each write rows and must see
only their own; here 24 of them at ``-j 8`` under the session's project, asserting
zero leaked objects, zero cross-flow data, zero port collisions and every flow
passed. The full size (200 flows, and the memory comparison) is run by hand:
``v/bin/python benchmarks/soak.py``.
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
